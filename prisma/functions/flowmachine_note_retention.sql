-- flowmachine_note_retention(p_table, p_before, p_partitions, p_kept) -> void
--
-- Records in log_retention (migration partitioned_logs) that retention removed rows of p_table older
-- than p_before: pruned_before only moves forward; partitions_dropped and rows_kept add up.
--
-- Input: p_table (execution_logs or contact_events); p_before, the retention's bound; p_partitions,
--   partitions dropped; p_kept, rows of running executions kept in the default partition.
-- Callers: flowmachine_drop_log_partitions.
CREATE OR REPLACE FUNCTION flowmachine_note_retention(p_table text, p_before timestamptz, p_partitions integer, p_kept integer)
RETURNS void
LANGUAGE sql AS $$
  INSERT INTO log_retention AS r (table_name, pruned_before, partitions_dropped, rows_kept, updated_at)
    VALUES (p_table, p_before, p_partitions, p_kept, now())
  ON CONFLICT (table_name) DO UPDATE SET pruned_before = greatest(r.pruned_before, excluded.pruned_before),
    partitions_dropped = r.partitions_dropped + excluded.partitions_dropped,
    rows_kept = r.rows_kept + excluded.rows_kept, updated_at = excluded.updated_at;
$$;
