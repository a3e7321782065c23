import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capsOf, channelOf, publicCaps, storedCaps } from '../../src/definition/frequency-caps.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// flowmachine_cap_send against real Postgres: the count and the record in one call, once per step.
describe('flowmachine_cap_send', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h?.stop());

  const HOUR = 3_600_000;
  const T0 = new Date('2026-06-01T10:00:00.000Z');
  const at = (ms: number) => new Date(T0.getTime() + ms);
  /** A contact with `n` executions (one per workflow), for their ids. */
  const executions = async (n: number) => {
    const contact = (await h.createContact()).id;
    const ids: string[] = [];
    for (let i = 0; i < n; i += 1) {
      const workflow = await h.createWorkflow({
        steps: [{ id: 'promo', type: 'send_email', config: { subject: 'Hi', body: 'Hello' } }],
      });
      ids.push(await h.trigger(workflow.id, contact));
    }
    return { contact, ids };
  };
  const call = (contactId: string, executionId: string, now: Date, caps = [{ max: 2, per_ms: HOUR }]) =>
    h.deps.store.capSend({
      accountId: h.account.account_id,
      contactId,
      channel: 'email',
      executionId,
      stepId: 'promo',
      caps,
      now,
    });

  it('counts a step once however often it asks (a retried or recovered step)', async () => {
    const { contact, ids } = await executions(2);
    expect(await call(contact, ids[0]!, T0)).toBeNull();
    expect(await call(contact, ids[0]!, at(1000))).toBeNull();
    expect(await call(contact, ids[0]!, at(2000))).toBeNull();
    expect(await h.db.messageSend.count({ where: { contactId: contact } })).toBe(1);
    expect(await call(contact, ids[1]!, at(3000))).toBeNull();
    expect(await h.db.messageSend.count({ where: { contactId: contact } })).toBe(2);
  });

  it('answers when the oldest counted send leaves the window, and records nothing then', async () => {
    const { contact, ids } = await executions(3);
    await call(contact, ids[0]!, T0);
    await call(contact, ids[1]!, at(10 * 60_000));
    expect(await call(contact, ids[2]!, at(20 * 60_000))).toEqual(at(HOUR));
    expect(await h.db.messageSend.count({ where: { contactId: contact } })).toBe(2);
    expect(await call(contact, ids[2]!, at(HOUR))).toBeNull();
  });

  it('counts a send recorded with a later clock (another worker a little ahead)', async () => {
    const { contact, ids } = await executions(3);
    await call(contact, ids[0]!, at(5000));
    await call(contact, ids[1]!, at(6000));
    expect(await call(contact, ids[2]!, T0)).toEqual(at(HOUR + 5000));
  });

  it('holds back until every cap of the channel allows it', async () => {
    const { contact, ids } = await executions(3);
    const caps = [
      { max: 1, per_ms: 60_000 },
      { max: 2, per_ms: 24 * HOUR },
    ];
    await call(contact, ids[0]!, T0, caps);
    expect(await call(contact, ids[1]!, at(30_000), caps)).toEqual(at(60_000));
    expect(await call(contact, ids[1]!, at(60_000), caps)).toBeNull();
    expect(await call(contact, ids[2]!, at(2 * 60_000), caps)).toEqual(at(24 * HOUR));
  });
});

describe('frequency caps setting', () => {
  it('stores each cap with its window in ms, and answers it without', () => {
    const stored = storedCaps([{ channel: 'sms', max: 2, per: '12 hours' }]);
    expect(stored).toEqual([{ channel: 'sms', max: 2, per: '12 hours', per_ms: 43_200_000 }]);
    expect(publicCaps(stored)).toEqual([{ channel: 'sms', max: 2, per: '12 hours' }]);
    expect(publicCaps(null)).toEqual([]);
  });

  it('picks the caps of one channel, and the channel of message steps only', () => {
    const stored = storedCaps([
      { channel: 'sms', max: 2, per: '1 hour' },
      { channel: 'email', max: 1, per: '1 day' },
    ]);
    expect(capsOf(stored, 'email')).toEqual([{ max: 1, per_ms: 86_400_000 }]);
    expect(capsOf('garbage', 'email')).toEqual([]);
    expect([channelOf('send_email'), channelOf('send_sms'), channelOf('webhook')]).toEqual(['email', 'sms', undefined]);
  });
});
