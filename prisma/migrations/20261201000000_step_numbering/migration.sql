-- Steps are numbered from 1, as the SPEC's tables number them (CONTRACT.md): a log entry's step_index is
-- the 1-based position of its step on the path taken, and current_step_index the position of the step
-- being run or waited on: 0 before the first step starts, total_steps once COMPLETED (src/engine/snapshot.ts).
-- Admission moves an execution to at least its first step (prisma/functions/flowmachine_commit.sql and
-- flowmachine_admit_waiting.sql); this migration renumbers the rows written before.

-- Rows written with 0-based numbering. Step entries move up one; executions at a step (or stopped at one)
-- move to that step's position, those never started stay at 0, completed ones keep their count.
UPDATE execution_logs SET step_index = step_index + 1 WHERE step_id IS NOT NULL AND step_index IS NOT NULL;
UPDATE executions e SET current_step_index = current_step_index + 1
  WHERE NOT (e.status = 'COMPLETED' AND e.completion_reason = 'completed')
    AND (e.status IN ('ACTIVE', 'PAUSED') OR EXISTS (SELECT 1 FROM execution_logs l WHERE l.execution_id = e.id AND l.step_id IS NOT NULL));
