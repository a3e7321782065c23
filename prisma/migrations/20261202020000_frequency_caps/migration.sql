-- Frequency caps (CONTRACT.md "Journeys", Limits on messages): the account's caps, and the messages of
-- capped channels each contact was sent, which the caps are counted from (flowmachine_cap_send).

-- [{"channel": "email" | "sms", "max": 3, "per": "1 day", "per_ms": 86400000}]; empty: no caps.
ALTER TABLE "accounts" ADD COLUMN "frequency_caps" JSONB NOT NULL DEFAULT '[]';

-- One row per message of a capped channel sent to a contact, written (in the same transaction as the
-- count it was checked against) before the provider is called; keyed by the execution's step, so a
-- retried or recovered step is counted once.
CREATE TABLE "message_sends" (
    "execution_id" UUID NOT NULL,
    "step_id" TEXT NOT NULL,
    "account_id" UUID NOT NULL,
    "contact_id" UUID NOT NULL,
    "channel" TEXT NOT NULL,
    "sent_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "message_sends_pkey" PRIMARY KEY ("execution_id", "step_id")
);

-- A cap's count: the contact's sends of one channel inside the window, newest first.
CREATE INDEX "message_sends_contact_id_channel_sent_at_idx" ON "message_sends"("contact_id", "channel", "sent_at");

ALTER TABLE "message_sends" ADD CONSTRAINT "message_sends_execution_id_fkey" FOREIGN KEY ("execution_id") REFERENCES "executions"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "message_sends" ADD CONSTRAINT "message_sends_contact_id_fkey" FOREIGN KEY ("contact_id") REFERENCES "contacts"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "message_sends" ADD CONSTRAINT "message_sends_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;
