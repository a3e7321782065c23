import type { Pool } from '../db/client.ts';

/** The executions of one workflow a bulk operation takes: in one of `statuses`, and every given filter. */
export interface Matching {
  workflowId: string;
  statuses: readonly string[];
  /** The step the execution is at now (its snapshot's state). */
  stepId?: string;
  versionId?: string;
  from?: Date;
  to?: Date;
}

/** `WHERE` of the executions a bulk operation takes, with its values from `$1`; `$1` is the workflow. */
function whereOf(filter: Matching) {
  const values: unknown[] = [filter.workflowId, filter.statuses];
  const clauses = ['workflow_id = $1', 'status = ANY($2::text[])'];
  const add = (clause: (n: number) => string, value: unknown) => {
    values.push(value);
    clauses.push(clause(values.length));
  };
  if (filter.stepId !== undefined) add((n) => `snapshot->>'value' = $${n}`, filter.stepId);
  if (filter.versionId !== undefined) add((n) => `workflow_version_id = $${n}::uuid`, filter.versionId);
  if (filter.from !== undefined) add((n) => `created_at >= $${n}`, filter.from);
  if (filter.to !== undefined) add((n) => `created_at <= $${n}`, filter.to);
  return { where: clauses.join(' AND '), values };
}

/** How many executions match. */
export async function countMatching(pool: Pool, matching: Matching): Promise<number> {
  const { where, values } = whereOf(matching);
  const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM executions WHERE ${where}`, values);
  return rows[0]?.n ?? 0;
}

/** The ids of up to `limit` matching executions after `after`, by id (a keyset page). */
export async function matchingPage(pool: Pool, matching: Matching, after: string, limit: number): Promise<string[]> {
  const { where, values } = whereOf(matching);
  const { rows } = await pool.query<{ id: string }>(
    `SELECT id FROM executions WHERE ${where} AND id > $${values.length + 1}::uuid ORDER BY id LIMIT $${values.length + 2}`,
    [...values, after, limit],
  );
  return rows.map((row) => row.id);
}
