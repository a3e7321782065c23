import { inRequestOrder } from '../db/batch.ts';
import type { Pool } from '../db/client.ts';
import { run } from '../db/sql.ts';
import type { CommitRequest, CommitResult } from '../store/execution-store.ts';
import { type ContactJson, contactOf } from './load-executions.ts';

/** One call commits a step: see prisma/functions/flowmachine_commit.sql. */
const COMMIT = {
  name: 'commit-step',
  text: 'SELECT * FROM flowmachine_commit($1::uuid, $2::integer, $3::jsonb, $4::jsonb, $5::text, $6::text, $7::text)',
};
/**
 * Several executions' steps committed in one statement (see db/batch.ts), in one order for every batch:
 * the commits that give a slot back last, by shard, so that two batches lock the account's shards in
 * the same order. The shard is a subquery by primary key, not a join: a join's plan cached while the
 * table was small hashes the whole table for every batch once it is large.
 */
const COMMIT_BATCH = {
  name: 'commit-steps',
  text: `SELECT b.i::integer AS i, c.* FROM (
    SELECT a.x, a.i FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS a(x, i)
    ORDER BY a.x->>'slot' = 'release', (SELECT e.slot_shard FROM executions e WHERE e.id = (a.x->>'id')::uuid), a.i) AS b
  CROSS JOIN LATERAL flowmachine_commit((b.x->>'id')::uuid, (b.x->>'version')::integer, b.x->'set', b.x->'logs', b.x->>'tagOp', b.x->>'tag', b.x->>'slot') AS c`,
};

type Raw = Omit<CommitResult, 'contact'> & { committed: boolean; contact: ContactJson | null };

const resultOf = (raw: Raw | undefined): CommitResult | null =>
  raw?.committed
    ? {
        new_status: raw.new_status,
        new_waiting: raw.new_waiting,
        admitted: raw.admitted,
        contact: raw.contact ? contactOf(raw.contact) : null,
        enrolled: raw.enrolled,
      }
    : null;

/** Commits steps of several executions in one statement (one transaction), answered in request order. */
export async function commitSteps(pool: Pool, requests: CommitRequest[]): Promise<(CommitResult | null)[]> {
  // Attributes travel in the set, so the function's signature (and every batch) is unchanged without them.
  const calls = requests.map(({ tagChange, attributes, ...request }) => ({
    ...request,
    set: attributes ? { ...request.set, contactAttributes: attributes } : request.set,
    tagOp: tagChange?.op ?? null,
    tag: tagChange?.tag ?? null,
  }));
  if (calls.length === 1) {
    const { id, version, set, logs, tagOp, tag, slot } = calls[0]!;
    const rows = await run<Raw>(pool, COMMIT, [
      id,
      version,
      JSON.stringify(set),
      JSON.stringify(logs),
      tagOp,
      tag,
      slot,
    ]);
    return [resultOf(rows[0])];
  }
  const rows = await run<Raw & { i: number }>(pool, COMMIT_BATCH, [JSON.stringify(calls)]);
  return inRequestOrder(rows, calls.length).map(resultOf);
}
