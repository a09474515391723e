-- The replication role and the publication on the bare metal (psql variables: name, pw).
-- Idempotent: a resumed phase runs it again.
SELECT format('CREATE ROLE %I LOGIN REPLICATION', :'name')
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = :'name') \gexec
ALTER ROLE :"name" PASSWORD :'pw';
SELECT format('GRANT USAGE ON SCHEMA %I TO %I; GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I;',
              n.nspname, :'name', n.nspname, :'name')
  FROM pg_catalog.pg_namespace n
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%' \gexec
SELECT format('CREATE PUBLICATION %I FOR ALL TABLES', :'name')
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = :'name') \gexec
