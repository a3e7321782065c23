import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { startProcess, type EngineProcess } from '../helpers/processes.ts';

const CAP = 3;
const WINDOW_MS = 2_000;
const EXECUTIONS = 15;

// Issue #19, Build 3: a frequency cap is exact under any number of workers. Two worker processes race
// through many executions of as many workflows (one each: a trigger of one workflow
// for the same contact within its deduplication window is a duplicate), all for ONE contact, under a cap of 3 emails per 2 seconds
// (the real clock). Postgres holds the truth (message_sends, counted and written under the contact's row
// lock): no window of 2 seconds ever holds more than 3 sends, the first holds exactly 3, every other
// message was PAUSED (frequency_capped) and sent later, and none was lost or sent twice.
describe('frequency caps under two worker processes', () => {
  let h: Harness;
  const workers: EngineProcess[] = [];

  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(async () => {
    for (const worker of workers) worker.kill();
    await Promise.all(workers.map((w) => w.exited));
    await h?.stop();
  });

  it(`lets exactly ${CAP} emails per window through to one contact, and sends every other one later`, async () => {
    const patched = await h.api.patch('/account/settings', {
      frequency_caps: [{ channel: 'email', max: CAP, per: `${WINDOW_MS / 1000} seconds` }],
    });
    expect(patched.status).toBe(200);
    const contact = (await h.createContact()).id;
    const ids: string[] = [];
    for (let w = 0; w < EXECUTIONS; w += 1) {
      const workflow = await h.createWorkflow({
        reentry: 'always',
        steps: [{ id: `promo_${w}`, type: 'send_email', config: { subject: 'Hi', body: 'Hello' } }],
      });
      ids.push(await h.trigger(workflow.id, contact));
    }

    const env = {
      DATABASE_URL: h.config.DATABASE_URL,
      QUEUE_PREFIX: h.config.QUEUE_PREFIX,
      EMAIL_HTTP_URL: h.provider.emailUrl,
      SMS_HTTP_URL: h.provider.smsUrl,
      WORKER_CONCURRENCY: '20',
      LOG_LEVEL: 'info',
    };
    workers.push(await startProcess('worker', env), await startProcess('worker', env));
    for (const id of ids) await h.waitForExecution(id, (e) => e.status === 'COMPLETED', 60_000);

    // Every message sent exactly once (one provider request per execution, none beyond).
    const emails = h.provider.received.filter((r) => r.path === '/email');
    expect(emails.map((r) => r.body.execution_id).sort()).toEqual([...ids].sort());

    // No window of WINDOW_MS holds more than CAP sends; the first holds exactly CAP.
    const sends = (await h.db.messageSend.findMany({ where: { contactId: contact }, orderBy: { sentAt: 'asc' } })).map(
      (s) => s.sentAt.getTime(),
    );
    expect(sends).toHaveLength(EXECUTIONS);
    for (const at of sends) {
      const inWindow = sends.filter((t) => t <= at && t > at - WINDOW_MS).length;
      expect(inWindow, `sends in the ${WINDOW_MS} ms up to ${new Date(at).toISOString()}`).toBeLessThanOrEqual(CAP);
    }
    expect(sends.filter((t) => t < sends[0]! + WINDOW_MS)).toHaveLength(CAP);

    // Every execution past the first CAP was held back at least once, then completed.
    const logs = await h.db.executionLog.findMany({ where: { executionId: { in: ids } } });
    const capped = new Set(logs.filter((l) => l.eventType === 'frequency_capped').map((l) => l.executionId));
    expect(capped.size).toBeGreaterThanOrEqual(EXECUTIONS - CAP);
    for (const entry of logs.filter((l) => l.eventType === 'frequency_capped'))
      expect((entry.details as { resume_at?: string }).resume_at).toEqual(expect.any(String));
    expect(logs.filter((l) => l.eventType === 'action_completed')).toHaveLength(EXECUTIONS);
    expect(await h.activeSlots()).toBe(0);
  }, 120_000);
});
