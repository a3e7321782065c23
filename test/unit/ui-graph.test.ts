import { describe, expect, it } from 'vitest';
import { compileWorkflow } from '../../src/compiler/compile.ts';
import { parseDefinition } from '../../src/definition/schema.ts';
import type { MachineConfig } from '../../ui/src/api-types.ts';
import { parseRoute } from '../../ui/src/app-route.ts';
import { buildGraph, describeCondition, edgesTaken, pathOf, summarizeStep } from '../../ui/src/graph.ts';
import { abTest, branching, welcomeSequence } from '../fixtures/workflows.ts';

// The pure part of the designer's view: a compiled machine turned into the graph it draws.

const compiled = (definition: unknown) => {
  const parsed = parseDefinition(definition);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return {
    definition: parsed.definition,
    machine: compileWorkflow(parsed.definition).config as unknown as MachineConfig,
  };
};

describe('buildGraph', () => {
  it('has one node per state with its type and summary, and one edge per source and target', () => {
    const { definition, machine } = compiled(welcomeSequence);
    const graph = buildGraph(machine, definition.steps as never);
    expect(graph.nodes.map((n) => [n.id, n.type, n.summary])).toEqual([
      ['welcome', 'send_email', 'Subject: Hi {{first_name}}'],
      ['tag', 'add_tag', 'tag welcomed'],
      ['pause', 'wait', '2 hours'],
      ['vip', 'condition', 'has tag VIP'],
      ['vip_sms', 'send_sms', 'Book your VIP call'],
      ['completed', 'final', 'final state'],
      ['goal_achieved', 'final', 'final state'],
      ['failed', 'final', 'final state'],
      ['cancelled', 'final', 'final state'],
    ]);
    expect(graph.nodes.find((n) => n.initial)?.id).toBe('welcome');
    const edges = Object.fromEntries(graph.edges.map((e) => [e.id, e.events]));
    expect(edges).toMatchObject({
      'welcome->tag': ['STEP_DONE', 'STEP_SKIPPED'],
      'welcome->welcome': ['RETRY'],
      'welcome->failed': ['STEP_FAILED'],
      'pause->vip': ['TIMER_FIRED'],
      'vip->vip_sms': ['CONDITION_RESULT true'],
      // An empty false branch goes straight on to the step after the condition: the end here.
      'vip->completed': ['CONDITION_RESULT false'],
    });
    expect(graph.global).toEqual([
      { event: 'GOAL', target: 'goal_achieved' },
      { event: 'CANCEL', target: 'cancelled' },
    ]);
  });

  it('labels the edges of a split by variant and of a branch by case, and summarizes both steps', () => {
    const { definition, machine } = compiled(abTest);
    const graph = buildGraph(machine, definition.steps as never);
    const edges = Object.fromEntries(graph.edges.map((e) => [e.id, e.events]));
    expect(edges).toMatchObject({
      'subject_test->email_a': ['VARIANT a'],
      'subject_test->email_b': ['VARIANT b'],
      'by_plan->gold_sms': ['CASE gold'],
      'by_plan->trial_email': ['CASE trial'],
      // An empty default branch goes straight on to the step after the branch.
      'by_plan->done_tag': ['CASE default'],
    });
    const summary = Object.fromEntries(graph.nodes.map((n) => [n.id, n.summary]));
    expect(summary.subject_test).toBe('a 50 · b 50');
    expect(summary.by_plan).toMatch(/^gold: has tag gold · trial: all of/);
  });

  it('names transitions it does not know by their guard, and nodes without a step by their entry action', () => {
    const machine: MachineConfig = {
      id: 'm',
      initial: 'a',
      states: {
        a: {
          entry: { type: 'executeAction' },
          on: { PICK: [{ target: 'b', guard: 'isGold' }, { target: 'b' }], GO: 'b' },
        },
        b: { type: 'final' },
      },
    };
    const graph = buildGraph(machine, []);
    expect(graph.nodes[0]).toMatchObject({ id: 'a', type: 'executeAction', summary: '' });
    expect(graph.edges).toEqual([{ id: 'a->b', source: 'a', target: 'b', events: ['PICK isGold', 'PICK #2', 'GO'] }]);
  });
});

describe('the path of an execution', () => {
  const { definition, machine } = compiled(branching);
  const graph = buildGraph(machine, definition.steps as never);

  it('collapses repeated entries of a step and marks the edges between the steps visited', () => {
    const path = pathOf([
      { step_id: null },
      { step_id: 'welcome' },
      { step_id: 'welcome' },
      { step_id: 'vip' },
      { step_id: 'regular_email' },
      { step_id: null },
    ]);
    expect(path).toEqual(['welcome', 'vip', 'regular_email']);
    expect([...edgesTaken(graph, path, 'regular_email')].sort()).toEqual(['vip->regular_email', 'welcome->vip']);
    // A finished execution: the last step to the final state it is in.
    expect([...edgesTaken(graph, [...path, 'done_tag'], 'completed')]).toContain('done_tag->completed');
    expect(edgesTaken(graph, [], null).size).toBe(0);
  });
});

describe('summaries', () => {
  it('describe conditions and each step type in one line', () => {
    expect(describeCondition({ field: 'plan', operator: 'not_equals', value: 'free' })).toBe('plan not equals "free"');
    expect(describeCondition({ field: 'email', operator: 'exists' })).toBe('email exists');
    expect(describeCondition({ all: [{ has_tag: 'a' }, { not: { has_tag: 'b' } }] })).toBe(
      'all of (has tag a, not (has tag b))',
    );
    expect(describeCondition({ any: [{ has_tag: 'a' }] })).toBe('any of (has tag a)');
    expect(describeCondition({ odd: 1 })).toBe('{"odd":1}');
    expect(summarizeStep({ id: 'w', type: 'webhook', config: { url: 'https://example.com/hook' } })).toBe(
      'POST https://example.com/hook',
    );
    expect(summarizeStep({ id: 's', type: 'send_sms', config: { body: 'x'.repeat(60) } })).toHaveLength(40);
    expect(summarizeStep({ id: 'n', type: 'new_type', config: { a: 1 } })).toBe('{"a":1}');
  });
});

describe('parseRoute', () => {
  const id = '6f1c2b7e-0d7a-4d59-9a53-3f1f2f1a9e11';
  it('reads the view and id from the hash; anything else is the list', () => {
    expect(parseRoute(`#/workflows/${id}`)).toEqual({ view: 'workflow', id });
    expect(parseRoute(`#/executions/${id}`)).toEqual({ view: 'execution', id });
    for (const hash of ['', '#/', '#/workflows/nope', `#/workflows/${id}/x`])
      expect(parseRoute(hash)).toEqual({ view: 'list' });
  });
});
