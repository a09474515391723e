-- The Inventory database of the seed design: deterministic test data, generated in SQL.
-- Run by psql as postgres in inventory_db with -v owner=<role> -v items=<n> -v images_tsv=<file>.
\set ON_ERROR_STOP on
BEGIN;
CREATE EXTENSION IF NOT EXISTS vector;
SET ROLE :"owner";

CREATE TABLE categories (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    parent_id integer REFERENCES categories (id)
);

CREATE TABLE items (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    category_id integer NOT NULL REFERENCES categories (id),
    quantity integer NOT NULL CHECK (quantity >= 0),
    price numeric(10, 2),
    attributes jsonb NOT NULL DEFAULT '{}',
    embedding vector(384) NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX items_category_idx ON items (category_id);

CREATE TABLE images (
    id bigserial PRIMARY KEY,
    item_id bigint NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    path text NOT NULL UNIQUE,
    sha256 char(64) NOT NULL,
    bytes integer NOT NULL
);

INSERT INTO categories (name, parent_id)
SELECT format('Kategorie %s – %s', g, (ARRAY['Küche', 'Garage', 'Büro', '倉庫', 'Keller'])[g % 5 + 1]),
       CASE WHEN g > 10 THEN (g % 10) + 1 END
FROM generate_series(1, 50) AS g;

-- Unit-length embeddings from a fixed formula: the same on every run and every host.
INSERT INTO items (name, category_id, quantity, price, attributes, embedding, created_at)
SELECT format('Item %s, Größe %s', g, g % 7),
       g % 50 + 1,
       g % 97,
       round(((g * 1.37) % 1000)::numeric, 2),
       jsonb_build_object('sku', 'SKU-' || lpad(g::text, 6, '0'), 'tags', jsonb_build_array('t' || g % 5)),
       e.v,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '17 minutes'
FROM generate_series(1, :items) AS g
CROSS JOIN LATERAL (
    SELECT array_agg(sin(g * 0.0137 * d + d) ORDER BY d)::vector(384) AS v
    FROM generate_series(1, 384) AS d
) AS e;

-- Server-side COPY (psql does not interpolate variables in \copy): read as the superuser.
RESET ROLE;
COPY images (item_id, path, sha256, bytes) FROM :'images_tsv';
SET ROLE :"owner";

-- Gaps and advanced sequences, as a database in use has: deleted rows, ids handed out and lost.
DELETE FROM items WHERE id % 1000 = 0 AND NOT EXISTS (SELECT 1 FROM images WHERE item_id = items.id);
SELECT setval('items_id_seq', (SELECT max(id) FROM items) + 250);
SELECT setval('images_id_seq', (SELECT max(id) FROM images) + 17);

CREATE INDEX items_embedding_hnsw ON items USING hnsw (embedding vector_cosine_ops);
RESET ROLE;

-- Settings of the database and of the app role in it: pg_dump keeps them only for --create.
ALTER DATABASE :"DBNAME" SET default_text_search_config = 'pg_catalog.german';
ALTER ROLE :"owner" IN DATABASE :"DBNAME" SET work_mem = '12MB';
COMMIT;
ANALYZE;
