import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../../src/clock.ts';
import { parseDuration } from '../../src/definition/duration.ts';
import { parseDefinition, type Step } from '../../src/definition/schema.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

const TAGS = ['A', 'B'];
let counter = 0;
const nextId = () => `s${(counter += 1)}`;

/** Random steps whose conditions read tags that earlier steps may add or remove. */
const stepsArb = (depth: number): fc.Arbitrary<unknown[]> =>
  fc.array(
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc
          .constantFrom(...TAGS)
          .chain((tag) =>
            fc.constantFrom({ type: 'add_tag', config: { tag } }, { type: 'remove_tag', config: { tag } }),
          ),
      },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          { type: 'send_email', config: { subject: 'Hi', body: 'Hello' } },
          { type: 'send_sms', config: { body: 'Hi' } },
        ),
      },
      {
        weight: 1,
        arbitrary: fc.integer({ min: 1, max: 90 }).map((n) => ({ type: 'wait', config: { duration: `${n} seconds` } })),
      },
      ...(depth < 2
        ? [
            {
              weight: 2,
              arbitrary: fc
                .tuple(fc.constantFrom(...TAGS), stepsArb(depth + 1), stepsArb(depth + 1))
                .map(([tag, yes, no]) => ({
                  type: 'condition',
                  config: { has_tag: tag },
                  branches: { true: yes, false: no },
                })),
            },
          ]
        : []),
    ),
    { minLength: depth === 0 ? 1 : 0, maxLength: 4 },
  );

/** Gives every step a unique id (the generator cannot know them). */
const withIds = (steps: unknown[]): unknown[] =>
  steps.map((step) => {
    const s = step as { type: string; branches?: { true: unknown[]; false: unknown[] } };
    return {
      ...s,
      id: nextId(),
      ...(s.branches ? { branches: { true: withIds(s.branches.true), false: withIds(s.branches.false) } } : {}),
    };
  });

/** The path a definition must take for a contact with `tags`, computed independently of the engine. */
function expectedPath(steps: Step[], tags: Set<string>): string[] {
  const path: string[] = [];
  for (const step of steps) {
    path.push(step.id);
    if (step.type === 'add_tag') tags.add(step.config.tag);
    if (step.type === 'remove_tag') tags.delete(step.config.tag);
    if (step.type === 'condition')
      path.push(
        ...expectedPath(
          step.config && 'has_tag' in step.config && tags.has(step.config.has_tag)
            ? step.branches.true
            : step.branches.false,
          tags,
        ),
      );
  }
  return path;
}

/** Duration in ms of every wait step, by step id. */
function waitDurations(steps: Step[], into = new Map<string, number>()): Map<string, number> {
  for (const step of steps) {
    if (step.type === 'wait') into.set(step.id, parseDuration(step.config.duration)!);
    if (step.type === 'condition')
      [step.branches.true, step.branches.false].forEach((branch) => waitDurations(branch, into));
  }
  return into;
}

const STEP_EVENTS = new Set(['action_completed', 'wait_completed', 'condition_evaluated']);

// Random valid definitions run on the real engine (Postgres, Redis, provider over HTTP): every run
// ends COMPLETED and the log records exactly the path the definition implies for the contact.
describe('random definitions on the real engine', () => {
  let h: Harness;
  const clock = createManualClock(new Date('2026-06-01T00:00:00.000Z'));
  beforeAll(async () => {
    h = await startHarness({ worker: false, clock });
  });
  afterAll(() => h.stop());

  it('every run ends in a final state and its log matches the path', async () => {
    await fc.assert(
      fc.asyncProperty(stepsArb(0), fc.subarray(TAGS), async (raw, initialTags) => {
        const parsed = parseDefinition({ steps: withIds(raw) });
        expect(parsed.ok).toBe(true);
        if (!parsed.ok) return;
        const workflow = await h.createWorkflow(parsed.definition, `random ${counter}`);
        const contact = await h.createContact({ tags: initialTags });
        const id = await h.trigger(workflow.id, contact.id);
        for (let guard = 0; guard < 200; guard += 1) {
          const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
          if (['COMPLETED', 'FAILED', 'CANCELLED'].includes(row.status)) break;
          if (row.nextRunAt && row.nextRunAt > clock.now()) clock.set(row.nextRunAt);
          await h.step(id);
        }
        const row = await h.db.execution.findUniqueOrThrow({ where: { id } });
        expect(row.status).toBe('COMPLETED');
        const logs = await h.logsOf(id);
        const path = expectedPath(parsed.definition.steps, new Set(initialTags));
        expect(logs.filter((l) => STEP_EVENTS.has(l.eventType)).map((l) => l.stepId)).toEqual(path);
        expect(row.currentStepIndex).toBe(path.length);
        expect(row.totalSteps).toBe(path.length);
        // Waits lasted exactly their duration on the engine's clock.
        const durations = waitDurations(parsed.definition.steps);
        for (const wait of logs.filter((l) => l.eventType === 'wait_started')) {
          const resumed = logs.find((l) => l.eventType === 'wait_completed' && l.stepId === wait.stepId)!;
          expect(resumed.timestamp.getTime() - wait.timestamp.getTime()).toBe(durations.get(wait.stepId!));
        }
      }),
      { numRuns: 25, seed: 20261126 },
    );
  }, 120_000);
});
