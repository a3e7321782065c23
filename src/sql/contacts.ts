import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';

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
  text: 'UPDATE contacts SET tags = flowmachine_with_tag(tags, $2, $3), updated_at = now() WHERE id = $1',
};

/** Adds or removes one of a contact's tags, keeping the others as they are now (prisma/functions/flowmachine_with_tag.sql). */
export async function tagContact(pool: Pool, contactId: string, op: 'add' | 'remove', tag: string): Promise<void> {
  await run(pool, TAG_CONTACT, [contactId, op, tag]);
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
