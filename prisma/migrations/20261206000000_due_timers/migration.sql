-- The timer release walks due timers in (next_run_at, id) order across PAUSED and ACTIVE executions.
-- The (status, next_run_at) index cannot return that order for two statuses: once most rows were due,
-- every release became a sequential scan of executions with a top-N sort (150,000 executions: 80 ms and
-- 17,000 blocks a release, against 1 ms and 422 blocks with this index). This one returns the walk's next
-- LIMIT rows in order, and holds no finished execution.
DROP INDEX "executions_status_next_run_at_idx";
CREATE INDEX "executions_due_idx" ON "executions"("next_run_at", "id") WHERE "status" IN ('PAUSED', 'ACTIVE');

-- Work due but untouched, for the sweeper: a step (ACTIVE without a timer) or an admission (QUEUED out of
-- the waiting line). In id order, the order the sweeper goes round them in, so a large backlog is read a
-- LIMIT at a time and a small one without walking the table.
CREATE INDEX "executions_unstarted_idx" ON "executions"("id")
  WHERE ("status" = 'ACTIVE' AND "next_run_at" IS NULL) OR ("status" = 'QUEUED' AND NOT "waiting");
