-- The replication's part on the bare metal, gone (psql variable: name). Idempotent.
-- pg_hba.conf read again first: its lines for the role are gone from the file by now, so a
-- subscriber that still runs (a target host the rollback could not reach) cannot connect again.
-- Its walsenders next (a disabled subscription's may linger), then its slots: the subscription's
-- own and the table-sync slots of an interrupted initial copy (pg_<subid>_sync_<relid>_<sysid>).
-- A slot still held by a walsender that has not exited yet fails the drop: the task tries again.
SELECT pg_catalog.pg_reload_conf();
SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = :'name';
SELECT pg_catalog.pg_drop_replication_slot(slot_name)
  FROM pg_catalog.pg_replication_slots
 WHERE database = current_database() AND slot_type = 'logical'
   AND (slot_name = :'name' OR slot_name ~ '^pg_[0-9]+_sync_[0-9]+_[0-9]+$');
DROP PUBLICATION IF EXISTS :"name";
SELECT format('DROP OWNED BY %I', :'name') WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = :'name') \gexec
DROP ROLE IF EXISTS :"name";
