import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';
import { createJourneyDriver, type JourneyDriver } from '../helpers/journeys.ts';

// Journeys II, point 3 of the Build list (CONTRACT.md "Journeys", Limits on messages): frequency caps per
// account and channel, counted per contact across all workflows. A worker-less harness with a manual clock
// that only moves forward, so every instant below is exact and written out in UTC. Every timer is kept in
// Redis (TIMER_HORIZON_MS of 30 days), so `h.step` finds each due job.

const HOUR_MS = 3_600_000;
const env = { TIMER_HORIZON_MS: String(30 * 24 * HOUR_MS) };

const email = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  type: 'send_email',
  config: { subject: id, body: 'Hello', ...extra },
});
const sms = (id: string) => ({ id, type: 'send_sms', config: { body: 'Hello' } });
const wait = (id: string, duration: string) => ({ id, type: 'wait', config: { duration } });

describe('Journeys II: frequency caps (issue #19, Build 3)', () => {
  const clock = createManualClock(new Date('2026-04-01T10:00:00.000Z'));
  const moveTo = (iso: string) => {
    const to = new Date(iso);
    if (to.getTime() < clock.now().getTime()) throw new Error(`the clock would go back to ${iso}`);
    clock.set(to);
  };
  let h: Harness;
  let d: JourneyDriver;
  beforeAll(async () => {
    h = await startHarness({ worker: false, clock, env });
    d = createJourneyDriver(h);
  });
  afterAll(() => h?.stop());

  const setCaps = async (caps: unknown) => {
    const response = await h.api.patch('/account/settings', { frequency_caps: caps });
    expect(response.status).toBe(200);
    return response.body;
  };
  const cappedAt = async (id: string) => {
    const [capped] = await d.logsOfType(id, 'frequency_capped');
    expect(capped).toBeDefined();
    return capped!.details as { resume_at: string; channel: string };
  };
  const single = async (steps: unknown[]) => (await h.createWorkflow({ reentry: 'always', steps })).id;

  describe('the frequency_caps setting', () => {
    it('is empty by default, and read and set through /account/settings', async () => {
      expect((await h.api.get('/account/settings')).body.frequency_caps).toEqual([]);
      const caps = [
        { channel: 'email', max: 3, per: '1 day' },
        { channel: 'sms', max: 1, per: '12 hours' },
      ];
      expect((await setCaps(caps)).frequency_caps).toEqual(caps);
      expect((await h.api.get('/account/settings')).body.frequency_caps).toEqual(caps);
      expect((await setCaps([])).frequency_caps).toEqual([]);
    });

    it.each([
      ['an unknown channel', [{ channel: 'push', max: 1, per: '1 day' }], 'body.frequency_caps.0.channel'],
      ['a max of 0', [{ channel: 'email', max: 0, per: '1 day' }], 'body.frequency_caps.0.max'],
      ['a fractional max', [{ channel: 'email', max: 1.5, per: '1 day' }], 'body.frequency_caps.0.max'],
      ['a per that is no duration', [{ channel: 'email', max: 1, per: 'forever' }], 'body.frequency_caps.0.per'],
      ['a zero per', [{ channel: 'email', max: 1, per: '0 days' }], 'body.frequency_caps.0.per'],
      ['a missing per', [{ channel: 'sms', max: 1 }], 'body.frequency_caps.0.per'],
      ['an unknown field', [{ channel: 'sms', max: 1, per: '1 day', burst: 2 }], 'body.frequency_caps.0.burst'],
      ['an object', { channel: 'email', max: 1, per: '1 day' }, 'body.frequency_caps'],
      [
        'too many caps',
        Array.from({ length: 11 }, () => ({ channel: 'sms', max: 1, per: '1 day' })),
        'body.frequency_caps',
      ],
    ])('refuses %s with 400 at its path and keeps the setting', async (_, caps, path) => {
      const response = await h.api.patch('/account/settings', { frequency_caps: caps });
      expect(response.status).toBe(400);
      expect(response.body.issues).toEqual([expect.objectContaining({ path, message: expect.any(String) })]);
      expect((await h.api.get('/account/settings')).body.frequency_caps).toEqual([]);
    });

    it('says what a per must be', async () => {
      const response = await h.api.patch('/account/settings', {
        frequency_caps: [{ channel: 'email', max: 1, per: 'a while' }],
      });
      expect(response.body.issues[0].message).toMatch(/must be a duration/);
    });
  });

  describe('in the engine', () => {
    it('sends 2 emails of 3 workflows under a cap of 2 a day, PAUSES the third until a day after the first', async () => {
      await setCaps([{ channel: 'email', max: 2, per: '1 day' }]);
      const contact = (await h.createContact()).id;
      const flows = [await single([email('a')]), await single([email('b')]), await single([email('c')])];
      moveTo('2026-04-01T10:00:00.000Z');
      const first = await h.trigger(flows[0]!, contact);
      expect((await d.finish(first)).status).toBe('COMPLETED');
      moveTo('2026-04-01T11:00:00.000Z');
      const second = await h.trigger(flows[1]!, contact);
      expect((await d.finish(second)).status).toBe('COMPLETED');
      moveTo('2026-04-01T12:00:00.000Z');
      const third = await h.trigger(flows[2]!, contact);
      expect((await d.settle(third)).status).toBe('PAUSED');
      expect(await cappedAt(third)).toEqual({ channel: 'email', resume_at: '2026-04-02T10:00:00.000Z' });
      expect((await h.api.get(`/executions/${third}`)).body).toMatchObject({
        status: 'PAUSED',
        next_run_at: '2026-04-02T10:00:00.000Z',
      });
      expect(d.messagesOf(third)).toEqual([]);
      // A capped execution gives its slot back while it waits.
      expect(await h.activeSlots()).toBe(0);

      moveTo('2026-04-02T10:00:00.000Z');
      expect((await d.finish(third)).status).toBe('COMPLETED');
      expect(d.messagesOf(third, 'c')).toHaveLength(1);
      expect(await d.eventTypes(third)).toEqual(expect.arrayContaining(['frequency_capped', 'action_completed']));
    });

    it("counts per contact: another contact is not held back by the first one's sends", async () => {
      await setCaps([{ channel: 'email', max: 1, per: '1 day' }]);
      const flow = await single([email('hello')]);
      const [one, two] = [(await h.createContact()).id, (await h.createContact()).id];
      const a = await h.trigger(flow, one);
      const b = await h.trigger(flow, two);
      expect((await d.finish(a)).status).toBe('COMPLETED');
      expect((await d.finish(b)).status).toBe('COMPLETED');
      expect(d.messagesOf(a)).toHaveLength(1);
      expect(d.messagesOf(b)).toHaveLength(1);
    });

    it('caps the steps of one workflow too, and each channel by its own caps', async () => {
      moveTo('2026-04-03T08:00:00.000Z');
      await setCaps([{ channel: 'email', max: 1, per: '2 hours' }]);
      const flow = await single([email('first'), sms('text'), email('second')]);
      const id = await h.trigger(flow, (await h.createContact()).id);
      expect((await d.settle(id)).status).toBe('PAUSED');
      expect(d.messagesOf(id, 'first')).toHaveLength(1);
      expect(d.messagesOf(id, 'text')).toHaveLength(1); // SMS has no cap here
      expect(await cappedAt(id)).toEqual({ channel: 'email', resume_at: '2026-04-03T10:00:00.000Z' });
      moveTo('2026-04-03T09:59:00.000Z');
      await h.step(id); // early: put back, nothing sent
      expect(d.messagesOf(id, 'second')).toEqual([]);
      moveTo('2026-04-03T10:00:00.000Z');
      expect((await d.finish(id)).status).toBe('COMPLETED');
      expect(d.messagesOf(id, 'second')).toHaveLength(1);
    });

    it('waits for the strictest of several caps of a channel', async () => {
      moveTo('2026-04-05T08:00:00.000Z');
      await setCaps([
        { channel: 'sms', max: 2, per: '1 hour' },
        { channel: 'sms', max: 3, per: '1 day' },
      ]);
      const contact = (await h.createContact()).id;
      const flow = await single([sms('s1'), wait('w1', '1 hour'), sms('s2'), sms('s3'), sms('s4')]);
      const id = await h.trigger(flow, contact);
      expect((await d.settle(id)).status).toBe('PAUSED'); // the wait, after s1 at 08:00
      moveTo('2026-04-05T09:00:00.000Z');
      expect((await d.settle(id)).status).toBe('PAUSED'); // s2 and s3 at 09:00, then s4 is capped
      expect(d.messagesOf(id).map((m) => m.body.step_id)).toEqual(['s1', 's2', 's3']);
      // The hourly cap frees at 10:00, the daily one (3 sent since 08:00) only at 08:00 the next day.
      expect(await cappedAt(id)).toEqual({ channel: 'sms', resume_at: '2026-04-06T08:00:00.000Z' });
      moveTo('2026-04-06T08:00:00.000Z');
      expect((await d.finish(id)).status).toBe('COMPLETED');
      expect(d.messagesOf(id, 's4')).toHaveLength(1);
    });

    it('lets a "transactional": true step through a full cap, without counting it', async () => {
      moveTo('2026-04-07T08:00:00.000Z');
      await setCaps([{ channel: 'email', max: 1, per: '1 day' }]);
      const contact = (await h.createContact()).id;
      const flow = await single([email('promo'), email('receipt', { transactional: true }), email('later')]);
      const id = await h.trigger(flow, contact);
      expect((await d.settle(id)).status).toBe('PAUSED');
      expect(d.messagesOf(id).map((m) => m.body.step_id)).toEqual(['promo', 'receipt']);
      expect(await cappedAt(id)).toEqual({ channel: 'email', resume_at: '2026-04-08T08:00:00.000Z' });
      const sends = await h.db.messageSend.findMany({ where: { contactId: contact } });
      expect(sends.map((s) => s.stepId)).toEqual(['promo']);
    });

    it('does not count a message the step does not send (an opted-out contact, no phone number)', async () => {
      await setCaps([
        { channel: 'email', max: 1, per: '1 day' },
        { channel: 'sms', max: 1, per: '1 day' },
      ]);
      const optedOut = (await h.createContact()).id;
      const a = await h.trigger(await single([email('promo')]), optedOut);
      // Opted out after the trigger, before the email's step runs.
      expect((await h.api.patch(`/contacts/${optedOut}`, { opted_in: false })).status).toBe(200);
      expect((await d.finish(a)).status).toBe('COMPLETED');
      expect(await d.eventTypes(a)).toContain('skipped_opted_out');
      const noPhone = (await h.createContact({ phone: null })).id;
      const b = await h.trigger(await single([sms('text')]), noPhone);
      expect((await d.finish(b)).status).toBe('COMPLETED');
      expect(await h.db.messageSend.count({ where: { contactId: { in: [optedOut, noPhone] } } })).toBe(0);
    });

    it('costs nothing without caps: no send is recorded', async () => {
      await setCaps([]);
      const contact = (await h.createContact()).id;
      const id = await h.trigger(await single([email('free'), email('again')]), contact);
      expect((await d.finish(id)).status).toBe('COMPLETED');
      expect(d.messagesOf(id)).toHaveLength(2);
      expect(await h.db.messageSend.count({ where: { contactId: contact } })).toBe(0);
    });
  });
});
