import type { Pool, Tx } from '../db/client.ts';
import { run } from '../db/sql.ts';
import { RUNNING_STATUSES } from '../vocabulary.ts';

// Running executions of a workflow on versions other than `$2` (the new one), by the index on
// (workflow_id, status); pages are keyset by id, so executions that move meanwhile never shift a page.
const OTHER_VERSIONS = `workflow_id = $1::uuid AND status = ANY($3::text[]) AND workflow_version_id <> $2::uuid`;

const RUNNING_ON_OTHER_VERSIONS = {
  name: 'running-on-other-versions',
  text: `SELECT id FROM executions WHERE ${OTHER_VERSIONS} AND id > $4::uuid ORDER BY id LIMIT $5`,
};

const COUNT_MOVABLE = {
  name: 'count-movable',
  text: `SELECT count(*) FILTER (WHERE snapshot->>'value' = ANY($4::text[]))::integer AS would_move,
                count(*) FILTER (WHERE NOT (snapshot->>'value' = ANY($4::text[])))::integer AS would_stay
           FROM executions WHERE ${OTHER_VERSIONS}`,
};

/** Ids of the workflow's running executions not on `versionId`, after `after` by id, at most `limit`. */
export async function runningOnOtherVersions(
  pool: Pool,
  workflowId: string,
  versionId: string,
  after: string,
  limit: number,
): Promise<string[]> {
  const rows = await run<{ id: string }>(pool, RUNNING_ON_OTHER_VERSIONS, [
    workflowId,
    versionId,
    RUNNING_STATUSES,
    after,
    limit,
  ]);
  return rows.map((row) => row.id);
}

/**
 * How many of the workflow's running executions not on `versionId` are at one of `stepIds` (would move
 * to it) and how many are not (would stay). `versionId` may name no version yet (a dry run).
 */
export async function countMovable(
  pool: Pool,
  workflowId: string,
  versionId: string,
  stepIds: string[],
): Promise<{ wouldMove: number; wouldStay: number }> {
  const [row] = await run<{ would_move: number; would_stay: number }>(pool, COUNT_MOVABLE, [
    workflowId,
    versionId,
    RUNNING_STATUSES,
    stepIds,
  ]);
  return { wouldMove: row?.would_move ?? 0, wouldStay: row?.would_stay ?? 0 };
}

/**
 * Takes the workflow's current-version lock exclusive in a publish's transaction `tx`
 * (prisma/functions/flowmachine_current_version_lock.sql): waits until every creation of an execution of
 * the workflow in progress has ended, and makes every later one wait until `tx` has ended, then read the
 * version `tx` made current. Must come before `tx` changes the current version.
 */
export async function lockCurrentVersionForPublish(tx: Tx, workflowId: string): Promise<void> {
  await tx.$executeRaw`SELECT flowmachine_current_version_lock(${workflowId}::uuid, true)`;
}
