-- Journeys: the account's default time zone, the contacts' events, and the stored first answers of
-- requests sent with an Idempotency-Key.

-- The zone of `wait_until` and send windows for contacts without a valid zone of their own.
ALTER TABLE "accounts" ADD COLUMN "default_timezone" TEXT NOT NULL DEFAULT 'UTC';

-- Every event posted for a contact (POST /contacts/{id}/events), kept so "has this contact ever had this
-- event" and replays are answerable.
CREATE TABLE "contact_events" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "contact_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "properties" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "contact_events_pkey" PRIMARY KEY ("id")
);

-- A contact's events by name, in time order (waits for an event, "has had it since").
CREATE INDEX "contact_events_contact_id_name_created_at_idx" ON "contact_events"("contact_id", "name", "created_at");

-- An account's events by name (which events a workflow's wait can expect).
CREATE INDEX "contact_events_account_id_name_idx" ON "contact_events"("account_id", "name");

ALTER TABLE "contact_events" ADD CONSTRAINT "contact_events_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

ALTER TABLE "contact_events" ADD CONSTRAINT "contact_events_contact_id_fkey" FOREIGN KEY ("contact_id") REFERENCES "contacts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- One row per Idempotency-Key of an account and route: the request's hash and, once answered, the first
-- answer (status_code NULL while the first request is in progress). Rows older than 24 hours are expired.
CREATE TABLE "idempotency_keys" (
    "account_id" UUID NOT NULL,
    "route" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "request_hash" TEXT NOT NULL,
    "status_code" INTEGER,
    "body" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("account_id", "route", "key")
);

-- Expired rows are removed oldest first.
CREATE INDEX "idempotency_keys_created_at_idx" ON "idempotency_keys"("created_at");

ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;
