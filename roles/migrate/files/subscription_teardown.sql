-- The replication's part in the stack's PostgreSQL, gone (psql variable: name). Idempotent.
-- The subscription is looked up in every database (one row whatever is found), then, connected to
-- its database, disabled, detached from its slot (dropping it then needs no connection to the bare
-- metal) and dropped.
SELECT count(*) > 0 AS has_sub, coalesce(min(d.datname), 'postgres') AS sub_db
  FROM pg_catalog.pg_subscription s JOIN pg_catalog.pg_database d ON d.oid = s.subdbid
 WHERE s.subname = :'name' \gset
\if :has_sub
\connect :sub_db
ALTER SUBSCRIPTION :"name" DISABLE;
ALTER SUBSCRIPTION :"name" SET (slot_name = NONE);
DROP SUBSCRIPTION :"name";
\echo subscription dropped
\endif
