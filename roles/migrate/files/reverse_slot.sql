-- The way back's slot in the stack's PostgreSQL (psql variable: name), taken while the bare metal
-- and the stack are frozen and equal. Taken afresh each time: a catch-up that runs again (after the
-- bare metal served again) must not hand the bare metal its own writes back.
SELECT pg_catalog.pg_drop_replication_slot(slot_name)
  FROM pg_catalog.pg_replication_slots WHERE slot_name = :'name';
SELECT slot_name, lsn FROM pg_catalog.pg_create_logical_replication_slot(:'name', 'pgoutput');
