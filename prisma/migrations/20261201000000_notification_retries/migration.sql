-- Admin notifications are retried. A notification that fails transiently (HTTP 5xx, 429, timeout,
-- connection trouble; SMTP 4xx) stays pending and is sent again by the sweeper once notify_after has
-- come, with the same idempotency key, until it is delivered, fails permanently, or has used its
-- attempts (NOTIFY_MAX_ATTEMPTS). notify_attempts counts the attempts logged for the failure now
-- pending; notify_after is when the next one is due (NULL before the first: the sweeper then waits
-- for the failure's worker, see src/engine/sweeper.ts).
ALTER TABLE "executions" ADD COLUMN "notify_attempts" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "executions" ADD COLUMN "notify_after" TIMESTAMPTZ(3);

-- The functions that keep them: prisma/functions/flowmachine_log_notification.sql and
-- flowmachine_reset_notification.sql (with its trigger executions_reset_notification).
