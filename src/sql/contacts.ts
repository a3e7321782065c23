import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';
import type { TagContactChange, TaggedContact } from '../store/execution-store.ts';

/** Running executions of a contact; with a goal, only those of the account whose workflow has it. */
const RUNNING_OF_CONTACT = {
  name: 'contact-running-executions',
  text: `SELECT id FROM executions WHERE contact_id = $1 AND status IN ('QUEUED', 'ACTIVE', 'PAUSED')
    AND ($2::uuid IS NULL OR (account_id = $2 AND goal_event = $3))`,
};
const DELETE_CONTACT = {
  name: 'contact-delete',
  text: 'UPDATE contacts SET deleted_at = $3, updated_at = $3 WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL',
};

/** Ids of the contact's running executions (all, or those of `goal`'s account with its goal event). */
export async function runningOfContact(pool: Pool, contactId: string, goal?: { accountId: string; goalEvent: string }) {
  const rows = await run<{ id: string }>(pool, RUNNING_OF_CONTACT, [
    contactId,
    goal?.accountId ?? null,
    goal?.goalEvent ?? null,
  ]);
  return rows.map((row) => row.id);
}

const TAG_CONTACT = {
  name: 'contact-tag',
  text: 'SELECT flowmachine_tag_contact($1::uuid, $2::uuid, $3, $4, $5::timestamptz) AS tagged',
};
const WAITING_FOR = {
  name: 'contact-waiting-for',
  text: 'SELECT id FROM executions WHERE contact_id = $1 AND waiting_event = $2',
};
const EXITING_ON = {
  name: 'contact-exiting-on',
  text: `SELECT e.id FROM executions e JOIN workflow_versions v ON v.id = e.workflow_version_id
    WHERE e.contact_id = $1 AND e.account_id = $2 AND e.status IN ('QUEUED', 'ACTIVE', 'PAUSED') AND v.definition->'exit'->>'event' = $3`,
};
const ENTERED_BY = {
  name: 'workflows-entered-by',
  text: `SELECT w.id AS "workflowId", v.id AS "versionId" FROM workflows w
    JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.current_version
    WHERE w.account_id = $1 AND w.status = 'active' AND v.entry_event = $2 ORDER BY w.created_at`,
};

/** A tag change and the enrollments it makes, in one transaction (prisma/functions/flowmachine_tag_contact.sql). */
export async function tagContact(pool: Pool, change: TagContactChange): Promise<TaggedContact | null> {
  const [row] = await run<{ tagged: TaggedContact | null }>(pool, TAG_CONTACT, [
    change.accountId,
    change.contactId,
    change.op,
    change.tag,
    change.now,
  ]);
  return row?.tagged ?? null;
}

/** Ids of the contact's executions waiting for the event `name`. */
export async function waitingFor(pool: Pool, contactId: string, name: string): Promise<string[]> {
  return (await run<{ id: string }>(pool, WAITING_FOR, [contactId, name])).map((row) => row.id);
}

/** Ids of the contact's running executions whose version exits on the event `name`. */
export async function exitingOn(pool: Pool, contactId: string, accountId: string, name: string): Promise<string[]> {
  return (await run<{ id: string }>(pool, EXITING_ON, [contactId, accountId, name])).map((row) => row.id);
}

/** The account's active workflows entered by the event `name`, with their current version. */
export function enteredBy(pool: Pool, accountId: string, name: string) {
  return run<{ workflowId: string; versionId: string }>(pool, ENTERED_BY, [accountId, name]);
}

/** Soft-deletes a contact; false when the account has no such contact not deleted yet. */
export async function deleteContact(pool: Pool, contactId: string, accountId: string, now: Date) {
  const result = await pool.query({
    name: DELETE_CONTACT.name,
    text: DELETE_CONTACT.text,
    values: [contactId, accountId, now],
  });
  return (result.rowCount ?? 0) > 0;
}
