import { describe, expect, it } from 'vitest';
import type { CompiledWorkflow } from '../../src/compiler/compile.ts';
import type { Policy } from '../../src/engine/decide-step.ts';
import { type SimulatedContact, type SimulationInput, simulateExecution } from '../../src/engine/simulate.ts';
import { compileSteps, TEST_ACCOUNT, TEST_POLICY } from '../helpers/engine-rows.ts';

// The dry run (POST /workflows/{id}/test) runs the engine's own decisions on a simulated clock: these
// tests pin the path, the times and the result it answers, without a database.

const POLICY: Policy = TEST_POLICY;
const T0 = new Date('2026-03-02T10:00:00.000Z'); // a Monday
const HOUR = 3_600_000;

const compile = compileSteps;

const contact = (fields: Partial<SimulatedContact> = {}): SimulatedContact => ({
  id: '00000000-0000-4000-8000-0000000000d1',
  email: 'ada@example.com',
  phone: '+15550100',
  optedIn: true,
  timezone: null,
  tags: [],
  attributes: {},
  ...fields,
});

const run = (workflow: CompiledWorkflow, fields: Partial<SimulationInput> = {}) =>
  simulateExecution({
    workflow,
    contact: contact(),
    account: TEST_ACCOUNT,
    startAt: T0,
    events: [],
    policy: POLICY,
    ...fields,
  });

const brief = (result: ReturnType<typeof run>) =>
  result.path.map((entry) => [entry.stepId, entry.at.toISOString(), entry.outcome]);

const journey = compile([
  { id: 'welcome', type: 'send_email', config: { subject: 'Hi', body: 'Welcome' } },
  { id: 'tag', type: 'add_tag', config: { tag: 'welcomed' } },
  { id: 'pause', type: 'wait', config: { duration: '2 hours' } },
  {
    id: 'vip',
    type: 'condition',
    config: { has_tag: 'VIP' },
    branches: { true: [{ id: 'sms', type: 'send_sms', config: { body: 'VIP' } }], false: [] },
  },
  { id: 'check', type: 'condition', config: { has_tag: 'welcomed' }, branches: { true: [], false: [] } },
]);

describe('simulateExecution', () => {
  it('follows the path a contact takes, the wait advancing the simulated clock', () => {
    const result = run(journey);
    expect(brief(result)).toEqual([
      ['welcome', '2026-03-02T10:00:00.000Z', 'success'],
      ['tag', '2026-03-02T10:00:00.000Z', 'success'],
      ['pause', '2026-03-02T10:00:00.000Z', 'waited'],
      ['vip', '2026-03-02T12:00:00.000Z', 'false'],
      // The tag the workflow added is seen by a later condition, as the commit would apply it.
      ['check', '2026-03-02T12:00:00.000Z', 'true'],
    ]);
    expect(result).toMatchObject({ result: 'COMPLETED', completionReason: 'completed', events: [] });
    expect(result.endedAt).toEqual(new Date(T0.getTime() + 2 * HOUR));
  });

  it('takes the branch the contact qualifies for', () => {
    const result = run(journey, { contact: contact({ tags: ['VIP'] }) });
    expect(result.path.map((entry) => entry.stepId)).toEqual(['welcome', 'tag', 'pause', 'vip', 'sms', 'check']);
    expect(result.path[3]!.outcome).toBe('true');
  });

  it("skips an opted-out contact's messages and goes on, as the engine does", () => {
    const result = run(journey, { contact: contact({ optedIn: false, tags: ['VIP'] }) });
    expect(result.path.filter((entry) => entry.type.startsWith('send_')).map((entry) => entry.outcome)).toEqual([
      'skipped',
      'skipped',
    ]);
    expect(result.result).toBe('COMPLETED');
  });

  it('ends at the goal when its event is injected during a wait', () => {
    const workflow = compile(
      [
        { id: 'pause', type: 'wait', config: { duration: '1 day' } },
        { id: 'mail', type: 'send_email', config: { subject: 'Hi', body: 'x' } },
      ],
      { goal: { event: 'booked' } },
    );
    const result = run(workflow, { events: [{ name: 'booked', afterMs: HOUR, properties: {} }] });
    expect(brief(result)).toEqual([['pause', T0.toISOString(), 'goal_achieved']]);
    expect(result).toMatchObject({ result: 'COMPLETED', completionReason: 'goal_achieved' });
    expect(result.events).toEqual([{ name: 'booked', at: new Date(T0.getTime() + HOUR), outcome: 'goal' }]);
  });

  const waitForOrder = compile(
    [
      {
        id: 'order',
        type: 'wait_for_event',
        config: {
          event: 'order_placed',
          where: { field: 'payload.total', operator: 'greater_than', value: 10 },
          timeout: '3 days',
        },
        branches: {
          received: [{ id: 'thanks', type: 'send_email', config: { subject: 'Thanks', body: 'x' } }],
          timeout: [{ id: 'nudge', type: 'send_email', config: { subject: 'Still there?', body: 'x' } }],
        },
      },
    ],
    { exit: { event: 'unsubscribed' } },
  );

  it('resumes a wait_for_event with an injected event whose where holds, ignoring one whose does not', () => {
    const result = run(waitForOrder, {
      events: [
        { name: 'order_placed', afterMs: HOUR, properties: { total: 5 } },
        { name: 'order_placed', afterMs: 2 * HOUR, properties: { total: 50 } },
        { name: 'order_placed', afterMs: 3 * HOUR, properties: { total: 50 } },
      ],
    });
    expect(brief(result)).toEqual([
      ['order', T0.toISOString(), 'event_received'],
      ['thanks', new Date(T0.getTime() + 2 * HOUR).toISOString(), 'success'],
    ]);
    expect(result.events.map((event) => event.outcome)).toEqual(['ignored', 'resumed', 'ignored']);
    expect(result.result).toBe('COMPLETED');
  });

  it('takes the timeout branch when no event comes in time', () => {
    const result = run(waitForOrder);
    expect(brief(result)).toEqual([
      ['order', T0.toISOString(), 'timed_out'],
      ['nudge', new Date(T0.getTime() + 72 * HOUR).toISOString(), 'success'],
    ]);
  });

  it("is ended by the workflow's exit event: CANCELLED with exit_event", () => {
    const result = run(waitForOrder, { events: [{ name: 'unsubscribed', afterMs: HOUR, properties: {} }] });
    expect(brief(result)).toEqual([['order', T0.toISOString(), 'exited']]);
    expect(result).toMatchObject({ result: 'CANCELLED', completionReason: 'exit_event' });
  });

  it("waits until the local time in the contact's zone, and defers a message to the send window", () => {
    const workflow = compile(
      [
        { id: 'morning', type: 'wait_until', config: { time: '09:00' } },
        { id: 'mail', type: 'send_email', config: { subject: 'Hi', body: 'x' } },
        { id: 'late', type: 'wait', config: { duration: '12 hours' } },
        { id: 'again', type: 'send_email', config: { subject: 'Hi', body: 'x' } },
      ],
      { send_window: { start: '08:00', end: '20:00', timezone: 'contact' } },
    );
    const result = run(workflow, { contact: contact({ timezone: 'America/New_York' }) });
    // 09:00 in New York on 2 March 2026 (EST) is 14:00 UTC; 12 hours later is 02:00 UTC (21:00 local),
    // outside the window, which opens again at 08:00 local (13:00 UTC).
    expect(brief(result)).toEqual([
      ['morning', '2026-03-02T10:00:00.000Z', 'waited'],
      ['mail', '2026-03-02T14:00:00.000Z', 'success'],
      ['late', '2026-03-02T14:00:00.000Z', 'waited'],
      ['again', '2026-03-03T02:00:00.000Z', 'success'],
    ]);
    expect(result.path[3]!.deferredUntil).toEqual(new Date('2026-03-03T13:00:00.000Z'));
    expect(result.endedAt).toEqual(new Date('2026-03-03T13:00:00.000Z'));
  });

  it('stops with INCOMPLETE at its step bound, the step it stopped at pending', () => {
    const result = run(journey, { maxSteps: 2 });
    expect(result.result).toBe('INCOMPLETE');
    expect(result.path.at(-1)!.outcome).toBe('pending');
  });

  it('reports events after the end as ignored', () => {
    const result = run(journey, { events: [{ name: 'late', afterMs: 30 * HOUR, properties: {} }] });
    expect(result.events).toEqual([{ name: 'late', at: new Date(T0.getTime() + 30 * HOUR), outcome: 'ignored' }]);
  });
});
