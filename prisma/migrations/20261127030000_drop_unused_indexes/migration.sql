-- Indexes no query reads, each paid for on every insert and on every update that is not HOT:
-- executions (contact_id, status): the lookups by contact (goal events, contact deletion) use the
-- (contact_id, workflow_id, created_at) index, a contact having few executions;
-- execution_logs (account_id, event_type, timestamp): logs are read by execution only, and events are
-- counted by type in the flowmachine_execution_events_total metric.

-- DropIndex
DROP INDEX "executions_contact_id_status_idx";

-- DropIndex
DROP INDEX "execution_logs_account_id_event_type_timestamp_idx";
