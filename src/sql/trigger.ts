import { inRequestOrder } from '../db/batch.ts';
import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';
import type { TriggerAnswer, TriggerCall } from '../store/execution-store.ts';

/**
 * Workflow, contact and version checks, then lock, deduplication and reentry checks, execution and log
 * inserts: one call (prisma/functions/flowmachine_trigger.sql).
 */
const TRIGGER = {
  name: 'trigger',
  text: 'SELECT kind, execution, version_id AS "versionId" FROM flowmachine_trigger($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)',
};
/**
 * Several triggers in one statement (see db/batch.ts), by workflow and contact, as bulk enrollment takes
 * them, so that concurrent statements take the pairs' advisory locks in one order.
 */
const TRIGGER_BATCH = {
  name: 'triggers',
  text: `SELECT b.i::integer AS i, t.kind, t.execution, t.version_id AS "versionId" FROM (
      SELECT a.x, a.i FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(x, i)
      ORDER BY a.x->>'workflow' COLLATE "C", a.x->>'contact' COLLATE "C", a.i) AS b
    CROSS JOIN LATERAL flowmachine_trigger((b.x->>'account')::uuid, (b.x->>'workflow')::uuid, (b.x->>'contact')::uuid, (b.x->>'version')::uuid,
      b.x->>'reentry', (b.x->>'windowMs')::integer, nullif(b.x->'snapshot', 'null'), (b.x->>'totalSteps')::integer, b.x->>'goalEvent',
      b.x->'payload', b.x->'trace', (b.x->>'now')::timestamptz) AS t`,
};

/** Triggers in one statement; `flowmachine_trigger` answers every call with one row, in request order. */
export async function triggers(pool: Pool, calls: TriggerCall[]): Promise<(TriggerAnswer | undefined)[]> {
  if (calls.length === 1) {
    const c = calls[0]!;
    return run<TriggerAnswer>(pool, TRIGGER, [
      c.account,
      c.workflow,
      c.contact,
      c.version,
      c.reentry,
      c.windowMs,
      c.snapshot,
      c.totalSteps,
      c.goalEvent,
      c.payload,
      c.trace,
      c.now,
    ]);
  }
  // The JSON texts go in as they are, not parsed and serialised again.
  const batch = calls.map(
    ({ snapshot, payload, trace, ...rest }) =>
      `${JSON.stringify(rest).slice(0, -1)},"snapshot":${snapshot ?? 'null'},"payload":${payload},"trace":${trace}}`,
  );
  return inRequestOrder(
    await run<TriggerAnswer & { i: number }>(pool, TRIGGER_BATCH, [`[${batch.join(',')}]`]),
    calls.length,
  );
}
