import type { DefinitionStep, MachineConfig, TransitionConfig } from './api-types.ts';

/**
 * The compiled machine as a graph to draw: one node per state (each step, and the final states),
 * one edge per source and target with every event that leads there as its label. Pure.
 */

/** A node: a step of the definition or a final state of the machine. */
export interface GraphNode {
  id: string;
  /** The step's type (`send_email`, `wait`, …), or `final`. */
  type: string;
  /** One line of what the step does (`Subject: Hi`, `2 hours`, `has tag VIP`). */
  summary: string;
  final: boolean;
  initial: boolean;
}

/** An edge: all the events of one state that lead to one target. */
export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  /** `STEP_DONE`, `CONDITION_RESULT true`, `VARIANT a`, `CASE gold`, … */
  events: string[];
}

/** Transitions of the machine's root (`GOAL`, `CANCEL`): taken from any step, drawn as a note, not as edges. */
export interface GlobalTransition {
  event: string;
  target: string;
}

/** The graph of a machine. */
export interface MachineGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
  global: GlobalTransition[];
}

const truncate = (text: string, max = 40) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** Text of a condition (`has tag VIP`, `plan equals "pro"`, `all of (…)`). */
export function describeCondition(condition: unknown): string {
  const c = (condition ?? {}) as Record<string, unknown>;
  if (typeof c.has_tag === 'string') return `has tag ${c.has_tag}`;
  if (Array.isArray(c.all)) return `all of (${c.all.map(describeCondition).join(', ')})`;
  if (Array.isArray(c.any)) return `any of (${c.any.map(describeCondition).join(', ')})`;
  if (c.not !== undefined) return `not (${describeCondition(c.not)})`;
  if (typeof c.field === 'string')
    return `${c.field} ${String(c.operator ?? '').replace(/_/g, ' ')}${c.value === undefined ? '' : ` ${JSON.stringify(c.value)}`}`;
  return JSON.stringify(condition);
}

/** One line of what a step does, from its config. */
export function summarizeStep(step: DefinitionStep): string {
  const config = step.config ?? {};
  const text = (key: string) => (typeof config[key] === 'string' ? (config[key] as string) : '');
  switch (step.type) {
    case 'send_email':
      return truncate(`Subject: ${text('subject')}`);
    case 'send_sms':
      return truncate(text('body'));
    case 'add_tag':
    case 'remove_tag':
      return truncate(`tag ${text('tag')}`);
    case 'wait':
      return truncate(text('duration'));
    case 'condition':
      return truncate(describeCondition(config));
    case 'webhook':
      return truncate(`${text('method') || 'POST'} ${text('url')}`);
    case 'split': {
      const variants = Array.isArray(config.variants) ? (config.variants as { id?: unknown; weight?: unknown }[]) : [];
      return truncate(variants.map((v) => `${String(v.id)} ${String(v.weight)}`).join(' · '));
    }
    case 'branch': {
      const cases = Array.isArray(config.cases) ? (config.cases as { id?: unknown; when?: unknown }[]) : [];
      return truncate(
        [...cases.map((c) => `${String(c.id)}: ${describeCondition(c.when)}`), 'else default'].join(' · '),
      );
    }
    default:
      return truncate(JSON.stringify(config));
  }
}

/** Every step of a definition by id, branches included. */
export function stepsById(steps: readonly DefinitionStep[], into = new Map<string, DefinitionStep>()) {
  for (const step of steps) {
    into.set(step.id, step);
    for (const branch of Object.values(step.branches ?? {})) stepsById(branch, into);
  }
  return into;
}

/** A split's `VARIANT.a` reads `VARIANT a`, a branch's `CASE.gold` reads `CASE gold`; other events as they are. */
export function branchLabel(event: string): string {
  const match = /^(VARIANT|CASE)\.(.+)$/.exec(event);
  return match ? `${match[1]} ${match[2]}` : event;
}

/** The labels of one transition config, each with its target (`CONDITION_RESULT` guards read as true/false). */
function transitionsOf(event: string, config: TransitionConfig): { label: string; target: string }[] {
  if (typeof config === 'string') return [{ label: branchLabel(event), target: config }];
  if (!Array.isArray(config)) return [{ label: branchLabel(event), target: config.target }];
  return config.map((candidate, index) => {
    // The compiler guards the true branch with `conditionTrue` and leaves the false one unguarded, last.
    const outcome =
      event === 'CONDITION_RESULT'
        ? candidate.guard === 'conditionTrue'
          ? 'true'
          : 'false'
        : (candidate.guard ?? `#${index + 1}`);
    return { label: `${event} ${outcome}`, target: candidate.target };
  });
}

/** The graph of `machine`; `steps` (the version's definition) gives each node its type and summary. */
export function buildGraph(machine: MachineConfig, steps: readonly DefinitionStep[]): MachineGraph {
  const byId = stepsById(steps);
  const nodes: GraphNode[] = Object.entries(machine.states).map(([id, state]) => {
    const step = byId.get(id);
    const final = state.type === 'final';
    return {
      id,
      type: final ? 'final' : (step?.type ?? state.entry?.type ?? 'state'),
      summary: final ? 'final state' : step ? summarizeStep(step) : '',
      final,
      initial: id === machine.initial,
    };
  });
  const edges = new Map<string, GraphEdge>();
  for (const [source, state] of Object.entries(machine.states))
    for (const [event, config] of Object.entries(state.on ?? {}))
      for (const { label, target } of transitionsOf(event, config)) {
        const id = `${source}->${target}`;
        const edge = edges.get(id) ?? { id, source, target, events: [] };
        edge.events.push(label);
        edges.set(id, edge);
      }
  const global = Object.entries(machine.on ?? {}).flatMap(([event, config]) =>
    transitionsOf(event, config).map(({ label, target }) => ({ event: label, target: target.replace(/^\./, '') })),
  );
  return { nodes, edges: [...edges.values()], global };
}

/**
 * The edges an execution took, from the steps its log names in order (`path`) and the state it is
 * in now: each consecutive pair that is an edge of the graph, and the last step to the final state.
 */
export function edgesTaken(graph: MachineGraph, path: readonly string[], current: string | null): Set<string> {
  const visited = current && current !== path[path.length - 1] ? [...path, current] : [...path];
  const ids = new Set(graph.edges.map((edge) => edge.id));
  const taken = new Set<string>();
  for (let i = 1; i < visited.length; i += 1) {
    const id = `${visited[i - 1]}->${visited[i]}`;
    if (ids.has(id)) taken.add(id);
  }
  return taken;
}

/** Step ids in the order an execution's log entries name them, each once per visit (retries collapse). */
export function pathOf(entries: readonly { step_id: string | null }[]): string[] {
  const path: string[] = [];
  for (const { step_id } of entries) if (step_id && path[path.length - 1] !== step_id) path.push(step_id);
  return path;
}
