import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';
import type { CapSendCall } from '../store/execution-store.ts';

/** The count and the send decision of one capped message, in one call (prisma/functions/flowmachine_cap_send.sql). */
const CAP_SEND = {
  name: 'cap-send',
  text: 'SELECT flowmachine_cap_send($1::uuid, $2::uuid, $3::text, $4::uuid, $5::text, $6::jsonb, $7::timestamptz) AS resume_at',
};

/** Records the message as sent and answers null, or answers when the contact's caps allow it. */
export async function capSend(pool: Pool, call: CapSendCall): Promise<Date | null> {
  const [row] = await run<{ resume_at: Date | null }>(pool, CAP_SEND, [
    call.accountId,
    call.contactId,
    call.channel,
    call.executionId,
    call.stepId,
    JSON.stringify(call.caps),
    call.now,
  ]);
  return row?.resume_at ?? null;
}
