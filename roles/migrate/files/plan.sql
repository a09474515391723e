-- Read-only description of the source database for the plan phase: one JSON document.
SELECT json_build_object(
    'server_version', current_setting('server_version'),
    'server_version_num', current_setting('server_version_num')::int,
    'database', current_database(),
    'encoding', pg_encoding_to_char(d.encoding),
    'collate', d.datcollate,
    'ctype', d.datctype,
    'locale_provider', d.datlocprovider,
    'size_bytes', pg_database_size(current_database()),
    'extensions', (
        SELECT coalesce(json_agg(json_build_object('name', extname, 'version', extversion) ORDER BY extname), '[]')
        FROM pg_extension
    ),
    'roles', (
        SELECT coalesce(json_agg(json_build_object(
            'name', rolname,
            'login', rolcanlogin,
            'superuser', rolsuper,
            'password', CASE
                WHEN rolpassword IS NULL THEN 'none'
                WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram-sha-256'
                WHEN rolpassword ~ '^md5[0-9a-f]{32}$' THEN 'md5'
                ELSE 'other' END
        ) ORDER BY rolname), '[]')
        FROM pg_authid WHERE rolname !~ '^pg_'
    ),
    'tables', (
        SELECT coalesce(json_agg(json_build_object(
            'schema', n.nspname,
            'name', c.relname,
            'bytes', pg_total_relation_size(c.oid),
            'rows', (xpath('/row/c/text()', query_to_xml(
                format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint
        ) ORDER BY n.nspname, c.relname), '[]')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
    ),
    'sequences', (SELECT count(*) FROM pg_sequences),
    'connections', (
        SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
    ),
    'databases', (SELECT json_agg(datname ORDER BY datname) FROM pg_database WHERE NOT datistemplate)
)
FROM pg_database AS d
WHERE d.datname = current_database();
