import { describe, expect, it } from 'vitest';
import { analyzeWorkflow, WAIT_UNTIL_BOUND_SECONDS, warningsOf } from '../../src/compiler/analyze-workflow.ts';
import { compileWorkflow } from '../../src/compiler/compile.ts';
import { parseDefinition } from '../../src/definition/schema.ts';
import { abTest, emails, welcomeSequence } from '../fixtures/workflows.ts';

// The pure half of POST /workflows/validate: what the compiled machine's graph says of a workflow.

const analyze = (definition: unknown) => {
  const parsed = parseDefinition(definition);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return analyzeWorkflow(compileWorkflow(parsed.definition));
};
const email = (id: string) => ({ id, type: 'send_email', config: { subject: 'Hi', body: 'Hello' } });
const sms = (id: string) => ({ id, type: 'send_sms', config: { body: 'Hello' } });
const condition = (id: string, t: unknown[], f: unknown[]) => ({
  id,
  type: 'condition',
  config: { has_tag: id },
  branches: { true: t, false: f },
});

describe('analyzeWorkflow', () => {
  it('figures a straight workflow: one path, its wait and its messages', () => {
    expect(analyze(welcomeSequence)).toEqual({
      unreachable: [],
      eventWaits: [],
      figures: { longest_wait_seconds: 7200, max_messages_per_path: 2, paths: 2 },
    });
    expect(analyze(emails(10)).figures).toEqual({ longest_wait_seconds: 0, max_messages_per_path: 10, paths: 1 });
  });

  it('multiplies the paths of a split and a branch and takes the longest of their branches', () => {
    expect(analyze(abTest)).toMatchObject({
      unreachable: [],
      figures: { longest_wait_seconds: 2 * 86_400, max_messages_per_path: 2, paths: 6 },
    });
  });

  it('counts a wait_until as up to 7 days and a wait_for_event as its timeout, on either branch', () => {
    const analysis = analyze({
      steps: [
        { id: 'morning', type: 'wait_until', config: { time: '09:00' } },
        {
          id: 'order',
          type: 'wait_for_event',
          config: { event: 'order_placed', timeout: '3 days' },
          branches: {
            received: [email('thanks'), sms('thanks_sms')],
            timeout: [{ id: 'w', type: 'wait', config: { duration: '1 hour' } }],
          },
        },
      ],
    });
    expect(analysis.eventWaits).toEqual([{ stepId: 'order', event: 'order_placed' }]);
    expect(analysis.figures).toEqual({
      longest_wait_seconds: WAIT_UNTIL_BOUND_SECONDS + 3 * 86_400 + 3600,
      max_messages_per_path: 2,
      paths: 2,
    });
  });

  it('finds the branch of a variant of weight 0 and of a case an identical earlier case shadows unreachable', () => {
    const analysis = analyze({
      steps: [
        {
          id: 'ab',
          type: 'split',
          config: {
            variants: [
              { id: 'a', weight: 1 },
              { id: 'off', weight: 0 },
            ],
          },
          branches: { a: [email('mail_a')], off: [email('mail_off'), sms('sms_off')] },
        },
        {
          id: 'tier',
          type: 'branch',
          config: {
            cases: [
              { id: 'gold', when: { has_tag: 'gold' } },
              { id: 'again', when: { has_tag: 'gold' } },
            ],
          },
          branches: {
            gold: [],
            again: [
              {
                id: 'wait_off',
                type: 'wait_for_event',
                config: { event: 'never', timeout: '1 day' },
                branches: { received: [], timeout: [] },
              },
            ],
            default: [],
          },
        },
      ],
    });
    expect(analysis.unreachable).toEqual(['mail_off', 'sms_off', 'wait_off']);
    // The unreachable wait is no warning of its own beyond being unreachable.
    expect(analysis.eventWaits).toEqual([]);
    expect(analysis.figures).toEqual({ longest_wait_seconds: 0, max_messages_per_path: 1, paths: 2 });
  });

  it('counts the paths of many conditions without listing them', () => {
    const steps = Array.from({ length: 60 }, (_, i) => condition(`c${i}`, [email(`m${i}`)], []));
    const analysis = analyze({ steps });
    expect(analysis.figures).toEqual({
      longest_wait_seconds: 0,
      max_messages_per_path: 60,
      paths: Number.MAX_SAFE_INTEGER,
    });
    expect(analyze({ steps: steps.slice(0, 20) }).figures.paths).toBe(2 ** 20);
  });
});

describe('warningsOf', () => {
  const analysis = {
    unreachable: ['mail_off'],
    eventWaits: [
      { stepId: 'order', event: 'order_placed' },
      { stepId: 'reply', event: 'replied' },
    ],
    figures: { longest_wait_seconds: 0, max_messages_per_path: 0, paths: 1 },
  };

  it('names each unreachable step and each wait for an event the account has never seen', () => {
    expect(warningsOf(analysis, new Set(['replied']))).toEqual([
      { code: 'unreachable_step', step_id: 'mail_off', message: expect.stringContaining('"mail_off"') },
      { code: 'unknown_event', step_id: 'order', event: 'order_placed', message: expect.stringContaining('"order"') },
    ]);
  });

  it('has none for a workflow whose steps are all reachable and whose events have all been seen', () => {
    expect(warningsOf({ ...analysis, unreachable: [] }, new Set(['replied', 'order_placed']))).toEqual([]);
  });
});
