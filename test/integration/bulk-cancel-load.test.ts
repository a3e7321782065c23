import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BULK_PAGE_SIZE } from '../../src/api/bulk-control.ts';
import { MAX_BULK_ENROLL } from '../../src/engine/trigger.ts';
import type { StepWork } from '../../src/engine/work.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// Issue #19: a bulk cancel of 20,000 executions finishes without blocking the engine, in bounded batches,
// each cancellation logged with the caller. Workflow A waits 2 hours (within TIMER_HORIZON_MS, so each
// waiting execution has a delayed job in Redis the cancel must take out) before an email that must never
// go; workflow B is two quick actions against the fake provider, run before and while the cancel runs.

const SEEDED = 20_000;
/** Concurrent enrollment requests while seeding, and B clients while the cancel runs. */
const ENROLLERS = 4;
const B_CLIENTS = 2;

const waitThenMail = {
  steps: [
    { id: 'pause', type: 'wait', config: { duration: '2 hours' } },
    { id: 'later', type: 'send_email', config: { subject: 'Too late', body: 'This must never go' } },
  ],
};
const quick = {
  steps: [
    { id: 'mail', type: 'send_email', config: { subject: 'Quick', body: 'Hello' } },
    { id: 'text', type: 'send_sms', config: { body: 'Hello again' } },
  ],
};

/** Resolves once `condition` answers true, checking again every 50 ms (an awaited condition, not a sleep). */
async function until(label: string, condition: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${label}: not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A B execution run by a client: when it was triggered and when it finished. */
interface Run {
  id: string;
  triggeredAt: number;
  finishedAt: number;
  status: string;
}

/** The `q` quantile (nearest rank) of `values`. */
const quantile = (values: number[], q: number) =>
  [...values].sort((x, y) => x - y)[Math.max(0, Math.ceil(values.length * q) - 1)]!;

describe('bulk cancel of 20,000 executions under load', () => {
  let h: Harness;
  let a: string;
  let b: string;
  /** A's executions and the version each waits at, as seeded. */
  let waiting: StepWork[];

  const countA = async (status: string) =>
    (
      await h.deps.pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM executions WHERE workflow_id = $1 AND status = $2',
        [a, status],
      )
    ).rows[0]!.n;

  /** Triggers B for a new contact and awaits its end. */
  const runB = async (): Promise<Run> => {
    const contact = await h.createContact();
    const triggeredAt = Date.now();
    const id = await h.trigger(b, contact.id);
    let row = await h.db.execution.findUniqueOrThrow({ where: { id } });
    await until(
      `B execution ${id} finished`,
      async () => {
        row = await h.db.execution.findUniqueOrThrow({ where: { id } });
        return row.finishedAt !== null;
      },
      60_000,
    );
    return { id, triggeredAt, finishedAt: row.finishedAt!.getTime(), status: row.status };
  };

  beforeAll(async () => {
    h = await startHarness();
    // Seeding admits thousands at once; the default 100 slots would only make it slower.
    await h.api.patch('/account/settings', { concurrent_executions_per_account: 5_000 });
    a = (await h.createWorkflow(waitThenMail, 'A: waits')).id;
    b = (await h.createWorkflow(quick, 'B: quick')).id;
    let left = SEEDED;
    const enroller = async () => {
      while (left > 0) {
        const n = Math.min(MAX_BULK_ENROLL, left);
        left -= n;
        await h.enrollNew(a, n);
      }
    };
    await Promise.all(Array.from({ length: ENROLLERS }, enroller));
    await until('all of A waiting', async () => (await countA('PAUSED')) === SEEDED, 240_000);
    const { rows } = await h.deps.pool.query<{ executionId: string; version: number }>(
      'SELECT id AS "executionId", version FROM executions WHERE workflow_id = $1',
      [a],
    );
    waiting = rows;
  }, 300_000);
  afterAll(() => h?.stop());

  it('a dry run counts 20,000 and changes no row', async () => {
    // Every waiting execution has its timer as a delayed job in Redis: the real cancel must take them out.
    expect(await h.deps.queue.missing(waiting)).toEqual([]);
    const fingerprint = async () =>
      (
        await h.deps.pool.query(
          `SELECT (SELECT count(*)::int FROM executions WHERE workflow_id = $1 AND status = 'PAUSED') AS paused,
             (SELECT sum(version)::int FROM executions WHERE workflow_id = $1) AS versions,
             (SELECT max(updated_at) FROM executions WHERE workflow_id = $1) AS updated,
             (SELECT count(*)::int FROM execution_logs WHERE workflow_id = $1) AS logs`,
          [a],
        )
      ).rows[0];
    const before = await fingerprint();
    const dry = await h.api.post(`/workflows/${a}/executions/cancel`, { dry_run: true });
    expect(dry.status).toBe(200);
    expect(dry.body).toEqual({ matched: SEEDED, changed: 0 });
    expect(await fingerprint()).toEqual(before);
    expect(before.paused).toBe(SEEDED);
  });

  it('cancels all 20,000 in bounded batches while B executions keep finishing', async () => {
    // B runs before the cancel: the engine is warm and B's path works.
    const warm = await Promise.all(Array.from({ length: B_CLIENTS }, runB));
    expect(warm.map((r) => r.status)).toEqual(Array(B_CLIENTS).fill('COMPLETED'));

    const cancelStart = Date.now();
    let cancelEnd: number | null = null;
    const cancel = h.api.post(`/workflows/${a}/executions/cancel`, {}).then((response) => {
      cancelEnd = Date.now();
      return response;
    });
    const during: Run[] = [];
    const client = async () => {
      while (cancelEnd === null) during.push(await runB());
    };
    const [response] = await Promise.all([cancel, ...Array.from({ length: B_CLIENTS }, client)]);
    const elapsed = cancelEnd! - cancelStart;
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ matched: SEEDED, changed: SEEDED });

    // Not blocked: B executions triggered after the cancel began completed before it answered, and the
    // cancel's own log rows show it was still going on at the moment each of them finished.
    const inside = during.filter((r) => r.triggeredAt >= cancelStart && r.finishedAt <= cancelEnd!);
    expect(inside.length).toBeGreaterThanOrEqual(3);
    expect(inside.every((r) => r.status === 'COMPLETED')).toBe(true);
    const { rows: spread } = await h.deps.pool.query<{ first: Date; last: Date }>(
      `SELECT min(timestamp) AS first, max(timestamp) AS last FROM execution_logs
       WHERE workflow_id = $1 AND event_type = 'execution_cancelled'`,
      [a],
    );
    const midway = inside.filter(
      (r) => r.finishedAt > spread[0]!.first.getTime() && r.finishedAt < spread[0]!.last.getTime(),
    );
    expect(midway.length).toBeGreaterThanOrEqual(1);

    // Bounded: `xmin` is the id of the transaction that last wrote a row, here the one that cancelled it.
    // The 20,000 rows carry many different ones, none shared by more than a page: no transaction took
    // more than BULK_PAGE_SIZE executions. Each cancel log row was written in its execution's transaction.
    const { rows: transactions } = await h.deps.pool.query<{ rows: number; logs_elsewhere: number }>(
      `SELECT count(*)::int AS rows, count(*) FILTER (WHERE l.xmin <> e.xmin)::int AS logs_elsewhere
       FROM executions e JOIN execution_logs l ON l.execution_id = e.id AND l.event_type = 'execution_cancelled'
       WHERE e.workflow_id = $1 GROUP BY e.xmin::text`,
      [a],
    );
    expect(transactions.length).toBeGreaterThanOrEqual(Math.ceil(SEEDED / BULK_PAGE_SIZE));
    expect(Math.max(...transactions.map((t) => t.rows))).toBeLessThanOrEqual(BULK_PAGE_SIZE);
    expect(transactions.reduce((sum, t) => sum + t.logs_elsewhere, 0)).toBe(0);

    // Every one CANCELLED, with exactly one cancel entry carrying the caller's user_id.
    expect(await countA('CANCELLED')).toBe(SEEDED);
    const { rows: entries } = await h.deps.pool.query(
      `SELECT count(*)::int AS entries, count(DISTINCT execution_id)::int AS executions,
         count(*) FILTER (WHERE user_id = $2)::int AS by_caller
       FROM execution_logs WHERE workflow_id = $1 AND event_type = 'execution_cancelled'`,
      [a, h.account.user_id],
    );
    expect(entries[0]).toEqual({ entries: SEEDED, executions: SEEDED, by_caller: SEEDED });

    // Redis: the delayed job of every wait is gone, and the cancel left no job at the new versions.
    expect((await h.deps.queue.missing(waiting)).length).toBe(SEEDED);
    const { rows: now } = await h.deps.pool.query<{ executionId: string; version: number }>(
      'SELECT id AS "executionId", version FROM executions WHERE workflow_id = $1',
      [a],
    );
    expect((await h.deps.queue.missing(now)).length).toBe(SEEDED);
    expect(await h.deps.queue.queue.getDelayedCount()).toBe(0);

    // None of A's later steps ran: no entry past the wait, no email of A sent.
    const { rows: later } = await h.deps.pool.query(
      `SELECT count(*)::int AS n FROM execution_logs WHERE workflow_id = $1 AND (step_id = 'later' OR event_type LIKE 'action_%')`,
      [a],
    );
    expect(later[0]!.n).toBe(0);
    expect(h.provider.requestsTo('/email').filter((r) => r.body.subject === 'Too late')).toEqual([]);

    const latencies = inside.map((r) => r.finishedAt - r.triggeredAt);
    console.log(
      `bulk cancel of ${SEEDED}: ${elapsed} ms (${Math.round(SEEDED / (elapsed / 1000))}/s); ` +
        `${inside.length} B executions completed during it, trigger → completed p50 ${quantile(latencies, 0.5)} ms, p95 ${quantile(latencies, 0.95)} ms, max ${Math.max(...latencies)} ms; ` +
        `${transactions.length} transactions, at most ${Math.max(...transactions.map((t) => t.rows))} executions each`,
    );
  }, 300_000);
});
