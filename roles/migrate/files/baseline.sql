-- Baseline of a database for the dump and verify phases: one JSON document, read-only.
-- The same script runs on the source (psql as a superuser) and on the target (psql in the
-- restore container), so both sides are described by exactly the same queries:
--   settings   ALTER DATABASE ... SET and ALTER ROLE ... IN DATABASE ... SET of this database
--   tables     row count and an ordered checksum per table: sha256 over the md5 of each row, rows
--              in primary-key order (in row-text order without a primary key). A row is its columns,
--              each as its length (-1 for NULL) and its bytes: the type's binary send form where it
--              has one that holds no type OID (a base type, not an array or composite), otherwise
--              the column's text. Binary costs a fraction of the text for vectors (whose text
--              formats every float) and does not depend on the session (TimeZone, DateStyle, float
--              digits); the client encoding is fixed below, as textsend converts to it.
--   sequences  last value, is_called, and whether a column it feeds holds a value at or past the
--              next value the sequence would hand out ("behind")
--   probes     for each vector column of a table with a one-column primary key, the ids of the
--              10 exact nearest neighbours (L2) of the first and of the last row
SET client_encoding = 'UTF8';
SELECT json_build_object(
    'database', current_database(),
    'owner', (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()),
    'encoding', (SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()),
    'collate', (SELECT datcollate FROM pg_database WHERE datname = current_database()),
    'ctype', (SELECT datctype FROM pg_database WHERE datname = current_database()),
    'settings', (
        SELECT coalesce(json_agg(json_build_object(
            'role', CASE WHEN s.setrole = 0 THEN '' ELSE pg_get_userbyid(s.setrole) END,
            'config', s.setconfig
        ) ORDER BY CASE WHEN s.setrole = 0 THEN '' ELSE pg_get_userbyid(s.setrole) END), '[]')
        FROM pg_db_role_setting AS s
        WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
    ),
    'extensions', (
        SELECT coalesce(json_agg(json_build_object('name', extname, 'version', extversion) ORDER BY extname), '[]')
        FROM pg_extension WHERE extname <> 'plpgsql'
    ),
    'tables', (
        SELECT coalesce(json_agg(json_build_object(
            'table', format('%I.%I', x.nspname, x.relname),
            'rows', (xpath('/row/n/text()', x.res))[1]::text::bigint,
            'checksum', (xpath('/row/h/text()', x.res))[1]::text
        ) ORDER BY x.nspname, x.relname), '[]')
        FROM (
            SELECT n.nspname, c.relname, query_to_xml(format(
                'SELECT count(*) AS n, encode(sha256(convert_to(coalesce(string_agg(md5(%s), '''' ORDER BY %s), ''''), '
                '''UTF8'')), ''hex'') AS h FROM %I.%I AS t CROSS JOIN LATERAL (SELECT %s) AS b',
                coalesce(cols.row_bytes, '''\x''::bytea'),
                coalesce((
                    SELECT string_agg(format('t.%I', a.attname), ', ' ORDER BY k.ord)
                    FROM pg_index i
                    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k (attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                    WHERE i.indrelid = c.oid AND i.indisprimary
                ), 't::text'),
                n.nspname, c.relname, coalesce(cols.columns, '1')), false, true, '') AS res
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            -- Each column once as bytes in the lateral (b.cN), then length || bytes of every column.
            CROSS JOIN LATERAL (
                SELECT string_agg(format('int4send(coalesce(octet_length(b.c%s), -1)) || coalesce(b.c%s, ''\x''::bytea)',
                                         a.attnum, a.attnum), ' || ' ORDER BY a.attnum) AS row_bytes,
                       string_agg(CASE WHEN ty.typtype = 'b' AND ty.typelem = 0 AND ty.typsend <> 0
                                            AND ty.typcategory NOT IN ('A', 'C', 'P')
                                       THEN format('%s(t.%I) AS c%s', ty.typsend::regproc, a.attname, a.attnum)
                                       ELSE format('convert_to(t.%I::text, ''UTF8'') AS c%s', a.attname, a.attnum)
                                  END, ', ' ORDER BY a.attnum) AS columns
                FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            ) AS cols
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
        ) AS x
    ),
    'sequences', (
        SELECT coalesce(json_agg(json_build_object(
            'sequence', format('%I.%I', s.nspname, s.relname),
            'last_value', (xpath('/row/l/text()', s.res))[1]::text::bigint,
            'is_called', (xpath('/row/c/text()', s.res))[1]::text::boolean,
            'column', s.col,
            'column_max', (xpath('/row/m/text()', s.res))[1]::text::bigint,
            'behind', (xpath('/row/b/text()', s.res))[1]::text::boolean
        ) ORDER BY s.nspname, s.relname), '[]')
        FROM (
            SELECT sn.nspname, sc.relname,
                   format('%I.%I.%I', tn.nspname, tc.relname, a.attname) AS col,
                   query_to_xml(format(
                       'SELECT q.last_value AS l, q.is_called AS c, m.m, '
                       'coalesce(m.m >= q.last_value + CASE WHEN q.is_called THEN %s ELSE 0 END, false) AS b '
                       'FROM %I.%I AS q, (SELECT max(%I)::bigint AS m FROM %I.%I) AS m',
                       ps.seqincrement, sn.nspname, sc.relname, a.attname, tn.nspname, tc.relname),
                       false, true, '') AS res
            FROM pg_class sc
            JOIN pg_namespace sn ON sn.oid = sc.relnamespace
            JOIN pg_sequence ps ON ps.seqrelid = sc.oid
            JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = sc.oid
                             AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
            JOIN pg_class tc ON tc.oid = d.refobjid
            JOIN pg_namespace tn ON tn.oid = tc.relnamespace
            JOIN pg_attribute a ON a.attrelid = tc.oid AND a.attnum = d.refobjsubid
            WHERE sc.relkind = 'S'
        ) AS s
    ),
    'probes', (
        SELECT coalesce(json_agg(json_build_object(
            'column', format('%I.%I.%I', v.nspname, v.relname, v.col),
            'reference', v.dir,
            'ids', (xpath('/row/ids/text()', v.res))[1]::text
        ) ORDER BY v.nspname, v.relname, v.col, v.dir), '[]')
        FROM (
            SELECT n.nspname, c.relname, a.attname AS col, dir.dir, query_to_xml(format(
                'SELECT string_agg(id::text, '','' ORDER BY d, id) AS ids FROM ('
                'SELECT t.%1$I AS id, t.%2$I <-> r.v AS d FROM %3$I.%4$I AS t, '
                '(SELECT %2$I AS v FROM %3$I.%4$I ORDER BY %1$I %5$s LIMIT 1) AS r '
                'ORDER BY d, id LIMIT 10) AS s',
                pk.attname, a.attname, n.nspname, c.relname, dir.dir), false, true, '') AS res
            FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p')
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary AND i.indnatts = 1
            JOIN pg_attribute pk ON pk.attrelid = c.oid AND pk.attnum = i.indkey[0]
            CROSS JOIN (VALUES ('ASC'), ('DESC')) AS dir (dir)
            WHERE a.atttypid = to_regtype('vector') AND a.attnum > 0 AND NOT a.attisdropped
        ) AS v
    )
);
