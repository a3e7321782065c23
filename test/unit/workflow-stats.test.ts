import { describe, expect, it } from 'vitest';
import { traceUrl } from '../../src/api/routes/executions.ts';
import { loadConfig } from '../../src/config.ts';
import { traceIdOf } from '../../src/api/serialize.ts';
import { flattenSteps, summarizeStats } from '../../src/api/workflow-stats.ts';
import { branching } from '../fixtures/workflows.ts';

// The pure parts of the stats answer and of the execution's trace link.

describe('flattenSteps', () => {
  it('lists every step depth-first, each branch after its step', () => {
    expect(flattenSteps(branching.steps as never).map((s) => `${s.id}:${s.type}`)).toEqual([
      'welcome:send_email',
      'vip:condition',
      'vip_sms:send_sms',
      'regular_email:send_email',
      'done_tag:add_tag',
    ]);
  });
});

describe('summarizeStats', () => {
  const steps = [
    { id: 'mail', type: 'send_email' },
    { id: 'pause', type: 'wait' },
  ];

  it('fills every status and step with 0 and a conversion rate of 0 when nothing ran', () => {
    expect(summarizeStats(steps, { statuses: [], atStep: [], events: [], goalAchieved: 0 })).toEqual({
      executions: { QUEUED: 0, ACTIVE: 0, PAUSED: 0, COMPLETED: 0, FAILED: 0, CANCELLED: 0 },
      steps: [
        { step_id: 'mail', type: 'send_email', at_step: 0, entered: 0, completed: 0, skipped: 0, failed: 0 },
        { step_id: 'pause', type: 'wait', at_step: 0, entered: 0, completed: 0, skipped: 0, failed: 0 },
      ],
      goal: { achieved: 0, conversion_rate: 0 },
    });
  });

  it('maps event types to entered, completed, skipped and failed; ignores other event types and steps', () => {
    const body = summarizeStats(steps, {
      statuses: [
        { status: 'COMPLETED', n: 3 },
        { status: 'PAUSED', n: 1 },
      ],
      atStep: [
        { step_id: 'pause', n: 1 },
        { step_id: 'old_step', n: 4 },
      ],
      events: [
        { step_id: 'mail', event_type: 'action_started', n: 4 },
        { step_id: 'mail', event_type: 'action_completed', n: 2 },
        { step_id: 'mail', event_type: 'action_skipped', n: 1 },
        { step_id: 'mail', event_type: 'skipped_non_retryable_error', n: 1 },
        { step_id: 'mail', event_type: 'retry_scheduled', n: 3 },
        { step_id: 'pause', event_type: 'wait_started', n: 3 },
        { step_id: 'pause', event_type: 'wait_completed', n: 2 },
      ],
      goalAchieved: 1,
    });
    expect(body.steps).toEqual([
      { step_id: 'mail', type: 'send_email', at_step: 0, entered: 4, completed: 2, skipped: 2, failed: 0 },
      { step_id: 'pause', type: 'wait', at_step: 1, entered: 3, completed: 2, skipped: 0, failed: 0 },
    ]);
    expect(body.goal).toEqual({ achieved: 1, conversion_rate: 0.25 });
  });
});

describe('traceIdOf and traceUrl', () => {
  const id = '4bf92f3577b34da6a3ce929d0e0e4736';
  it('reads the trace id of a W3C traceparent, and nothing else', () => {
    expect(traceIdOf({ traceparent: `00-${id}-00f067aa0ba902b7-01` })).toBe(id);
    for (const value of [
      null,
      {},
      { traceparent: 42 },
      { traceparent: `00-${id.toUpperCase()}-00f067aa0ba902b7-01` },
      { traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` },
      { traceparent: `00-${id}-01` },
    ])
      expect(traceIdOf(value), JSON.stringify(value)).toBeNull();
  });
  it('links to the trace page of the Jaeger UI when both are known', () => {
    expect(traceUrl('http://jaeger:16686/', id)).toBe(`http://jaeger:16686/trace/${id}`);
    expect(traceUrl('http://jaeger:16686', id)).toBe(`http://jaeger:16686/trace/${id}`);
    expect(traceUrl(undefined, id)).toBeNull();
    expect(traceUrl('http://jaeger:16686', null)).toBeNull();
  });
});

describe('JAEGER_UI_URL', () => {
  it('is optional, and must be an http(s) URL when set', () => {
    expect(loadConfig({}).JAEGER_UI_URL).toBeUndefined();
    expect(loadConfig({ JAEGER_UI_URL: 'http://jaeger:16686' }).JAEGER_UI_URL).toBe('http://jaeger:16686');
    expect(() => loadConfig({ JAEGER_UI_URL: 'jaeger:16686' })).toThrow(/JAEGER_UI_URL/);
    expect(() => loadConfig({ JAEGER_UI_URL: 'ftp://jaeger/' })).toThrow(/JAEGER_UI_URL: must start with http/);
  });
});
