import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.ts';

// A publish with `"in_flight": "move"` racing the entry points that create executions: a trigger, an
// event entry, a tag entry and a bulk enrollment that read the workflow's current version (1) just
// before the publish committed must not insert an execution on version 1 that the move never sees
// (found with a trigger: the publish answered {moved: 0, stayed: 0}, then the trigger answered 202 with
// an execution on version 1, which ran version 1 to its end).
// One more: an event entry whose `where` held on the version it read, when a publish (any) makes a
// version current that does not take the event before the enrollment reads it.
//
// Each test but one stalls the enrollment at its contact's advisory lock
// (prisma/functions/flowmachine_enroll.sql), taken after the version is read and before the execution is
// inserted, publishes meanwhile, and lets the enrollment go once the publish has answered or is seen
// waiting for a lock; the other one stalls the publish, after its lock, and triggers meanwhile. No worker
// runs.

const mail = (subject: string) => ({ id: 'mail', type: 'send_email', config: { subject, body: 'x' } });
/** Version 2 keeps `mail`, so every execution at it moves, and has one step more. */
const bye = { id: 'bye', type: 'send_email', config: { subject: 'Bye', body: 'x' } };
/** An event trigger whose `where` takes one plan (`payload.plan`), entered again by every event. */
const planEntry = (event: string, plan: string) => ({
  trigger: { type: 'event', event, where: { field: 'payload.plan', operator: 'equals', value: plan } },
  reentry: 'always',
});

describe('a move publish racing the creation of executions', () => {
  let h: Harness;
  let blocker: pg.Client;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
    blocker = new pg.Client({ connectionString: h.config.DATABASE_URL });
    await blocker.connect();
  });
  afterAll(async () => {
    await blocker?.end();
    await h?.stop();
  });

  /** Backends of this test's database, other than the blocker, waiting for a heavyweight lock. */
  const lockWaiters = async () =>
    (
      await blocker.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
      )
    ).rows[0]!.n;
  const until = async (condition: () => Promise<boolean> | boolean) => {
    const deadline = Date.now() + 10_000;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error('condition not met within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };

  /**
   * Starts `enter` with the enrollment of `stalled` in the workflow held at the pair's advisory lock,
   * publishes `definition` with `in_flight: "move"` once `enter` waits there, and releases the lock once
   * the publish has answered (nothing made it wait) or waits for a lock itself. Returns both answers.
   */
  const race = async <T>(workflowId: string, stalled: string, definition: unknown, enter: () => Promise<T>) => {
    await blocker.query(`SELECT pg_advisory_lock(hashtextextended($1 || ':' || $2, 0))`, [workflowId, stalled]);
    try {
      const entering = enter();
      await until(async () => (await lockWaiters()) >= 1);
      let answered = false;
      const publishing = h.api
        .put(`/workflows/${workflowId}/definition`, { definition, in_flight: 'move' })
        .finally(() => {
          answered = true;
        });
      await until(async () => answered || (await lockWaiters()) >= 2);
      await blocker.query('SELECT pg_advisory_unlock_all()');
      const [entered, published] = await Promise.all([entering, publishing]);
      expect(published.status).toBe(200);
      return { entered, moved: published.body.in_flight.moved as number };
    } finally {
      await blocker.query('SELECT pg_advisory_unlock_all()');
    }
  };

  /** The version each of the workflow's executions runs, by execution id. */
  const versionsOf = async (workflowId: string) =>
    new Map(
      (
        await h.db.execution.findMany({
          where: { workflowId },
          include: { workflowVersion: { select: { version: true } } },
        })
      ).map((e) => [e.id, e.workflowVersion.version]),
    );
  const migrated = async (executionId: string) =>
    (await h.logsOf(executionId)).filter((log) => log.eventType === 'version_migrated').length;

  it('a trigger that read version 1 commits before the publish, which moves its execution', async () => {
    const workflowId = (await h.createWorkflow({ steps: [mail('v1')] })).id;
    const contactId = (await h.createContact()).id;
    const { entered, moved } = await race(workflowId, contactId, { steps: [mail('v2'), bye] }, () =>
      h.api.post(`/workflows/${workflowId}/trigger`, { contact_id: contactId }),
    );
    expect(entered.status).toBe(202);
    expect(moved).toBe(1);
    expect(await versionsOf(workflowId)).toEqual(new Map([[entered.body.execution_id, 2]]));
    expect(await migrated(entered.body.execution_id)).toBe(1);
  });

  it('a trigger while a publish is in progress waits for it and starts on version 2', async () => {
    const workflowId = (await h.createWorkflow({ steps: [mail('v1')] })).id;
    const early = await h.trigger(workflowId, (await h.createContact()).id); // the API has compiled version 1
    const contactId = (await h.createContact()).id;
    // The publish holds its lock and waits at its update of the workflow row, which the blocker holds.
    await blocker.query('BEGIN');
    try {
      await blocker.query('SELECT 1 FROM workflows WHERE id = $1 FOR NO KEY UPDATE', [workflowId]);
      const publishing = h.api.put(`/workflows/${workflowId}/definition`, {
        definition: { steps: [mail('v2'), bye] },
        in_flight: 'move',
      });
      await until(async () => (await lockWaiters()) >= 1);
      let answered = false;
      const triggering = h.api.post(`/workflows/${workflowId}/trigger`, { contact_id: contactId }).finally(() => {
        answered = true;
      });
      await until(async () => answered || (await lockWaiters()) >= 2);
      await blocker.query('ROLLBACK');
      const [published, triggered] = await Promise.all([publishing, triggering]);
      expect(triggered.status).toBe(202);
      expect(published.body.in_flight).toEqual({ moved: 1, stayed: 0 });
      expect(await versionsOf(workflowId)).toEqual(
        new Map([
          [early, 2],
          [triggered.body.execution_id, 2],
        ]),
      );
      expect(await migrated(early)).toBe(1);
      expect(await migrated(triggered.body.execution_id)).toBe(0);
    } finally {
      await blocker.query('ROLLBACK');
    }
  });

  it('an event entry that read version 1 commits before the publish, which moves its execution', async () => {
    const entry = { trigger: { type: 'event', event: 'race_signed_up' }, reentry: 'always' };
    const workflowId = (await h.createWorkflow({ ...entry, steps: [mail('v1')] })).id;
    const contactId = (await h.createContact()).id;
    const { entered, moved } = await race(workflowId, contactId, { ...entry, steps: [mail('v2'), bye] }, () =>
      h.api.post(`/contacts/${contactId}/events`, { name: 'race_signed_up' }),
    );
    expect(entered.status).toBe(202);
    expect(entered.body.enrolled).toEqual([{ workflow_id: workflowId, execution_id: expect.any(String) }]);
    expect(moved).toBe(1);
    expect(await versionsOf(workflowId)).toEqual(new Map([[entered.body.enrolled[0].execution_id, 2]]));
  });

  it('an event entry that read version 1 starts nothing when the version current at its enrollment does not take the event', async () => {
    const entry = (plan: string) => planEntry('race_upgraded', plan);
    const workflowId = (await h.createWorkflow({ ...entry('pro'), steps: [mail('v1')] })).id;
    const contactId = (await h.createContact()).id;
    // The entry reads version 1 (its `where` holds), then waits at the lock before the enrollment reads
    // the current version; meanwhile a publish that keeps executions where they are makes version 2 current.
    await blocker.query('BEGIN');
    try {
      await blocker.query('SELECT flowmachine_current_version_lock($1::uuid, true)', [workflowId]);
      const entering = h.api.post(`/contacts/${contactId}/events`, {
        name: 'race_upgraded',
        properties: { plan: 'pro' },
      });
      await until(async () => (await lockWaiters()) >= 1);
      const published = await h.api.put(`/workflows/${workflowId}/definition`, {
        definition: { ...entry('team'), steps: [mail('v2')] },
      });
      expect(published.body.version).toBe(2);
      await blocker.query('COMMIT');
      const entered = await entering;
      expect(entered.status).toBe(202);
      expect(entered.body).toMatchObject({ enrolled: [], blocked: [] });
      expect(await versionsOf(workflowId)).toEqual(new Map());
    } finally {
      await blocker.query('ROLLBACK');
    }
  });

  it('an event entry enrolls on the current version when the version last seen did not take the event', async () => {
    const entry = (plan: string) => planEntry('plan_changed', plan);
    const workflowId = (await h.createWorkflow({ ...entry('team'), steps: [mail('v1')] })).id;
    const contactId = (await h.createContact()).id;
    const first = await h.api.post(`/contacts/${contactId}/events`, {
      name: 'plan_changed',
      properties: { plan: 'team' },
    });
    expect(first.body.enrolled).toHaveLength(1); // the engine has seen version 1 current
    await h.api.put(`/workflows/${workflowId}/definition`, { definition: { ...entry('pro'), steps: [mail('v2')] } });
    const other = (await h.createContact()).id; // a second trigger of the first contact within 5 s is a duplicate
    const second = await h.api.post(`/contacts/${other}/events`, {
      name: 'plan_changed',
      properties: { plan: 'pro' },
    });
    expect(second.body.enrolled).toEqual([{ workflow_id: workflowId, execution_id: expect.any(String) }]);
    expect((await versionsOf(workflowId)).get(second.body.enrolled[0].execution_id)).toBe(2);
  });

  it('a tag entry that read version 1 commits before the publish, which moves its execution', async () => {
    const entry = { trigger: { type: 'tag_added', tag: 'race_vip' }, reentry: 'always' };
    const workflowId = (await h.createWorkflow({ ...entry, steps: [mail('v1')] })).id;
    const contactId = (await h.createContact()).id;
    const { entered, moved } = await race(workflowId, contactId, { ...entry, steps: [mail('v2'), bye] }, () =>
      h.api.post(`/contacts/${contactId}/tags`, { tag: 'race_vip' }),
    );
    expect(entered.status).toBe(200);
    expect(moved).toBe(1);
    const versions = await versionsOf(workflowId);
    expect([...versions.values()]).toEqual([2]);
    expect(await migrated([...versions.keys()][0]!)).toBe(1);
  });

  it('a bulk enrollment: the chunk in progress commits before the publish, the next one enrolls on version 2', async () => {
    const workflowId = (await h.createWorkflow({ steps: [mail('v1')] })).id;
    // 101 contacts: a chunk of 100 (one of them stalled) and a chunk of 1, by id.
    const { rows } = await h.deps.pool.query<{ id: string }>(
      `INSERT INTO contacts (id, account_id, email, updated_at)
         SELECT gen_random_uuid(), $1, 'race-' || gen_random_uuid() || '@example.com', now() FROM generate_series(1, 101)
         RETURNING id`,
      [h.account.account_id],
    );
    const sorted = rows.map((r) => r.id).sort();
    const { entered, moved } = await race(workflowId, sorted[50]!, { steps: [mail('v2'), bye] }, () =>
      h.api.post(`/workflows/${workflowId}/enrollments`, { contact_ids: sorted }),
    );
    expect(entered.status).toBe(200);
    expect(entered.body.started).toBe(101);
    expect(moved).toBe(100);
    const versions = await versionsOf(workflowId);
    expect(versions.size).toBe(101);
    expect(new Set(versions.values())).toEqual(new Set([2]));
    // The second chunk started on version 2 (after the publish) with its initial values, as a trigger would.
    const last = entered.body.results.find((r: { contact_id: string }) => r.contact_id === sorted[100]).execution_id;
    expect(await migrated(last)).toBe(0);
    const started = (await h.logsOf(last)).find((log) => log.eventType === 'execution_started');
    expect(started?.details).toEqual({ workflow_version: 2 });
    const triggered = await h.trigger(workflowId, (await h.createContact()).id);
    const pick = ({ snapshot, totalSteps, goalEvent, status }: Record<string, unknown>) => ({
      snapshot,
      totalSteps,
      goalEvent,
      status,
    });
    expect(pick(await h.db.execution.findUniqueOrThrow({ where: { id: last } }))).toEqual(
      pick(await h.db.execution.findUniqueOrThrow({ where: { id: triggered } })),
    );
  });
});
