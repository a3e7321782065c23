import { useMemo, useState } from 'preact/hooks';
import { renderCreateMachine } from '../../src/compiler/machine-source.ts';
import { api, STATUSES, type Stats, type Validation, type Workflow, type WorkflowVersion } from './api.ts';
import { ExecutionsAtStep } from './executions-at-step.tsx';
import { formatPercent } from './format.ts';
import { buildGraph, type GraphNode } from './graph.ts';
import { useLoad } from './hooks.ts';
import { layoutGraph } from './layout.ts';
import { MachineGraphView, type NodeCounts } from './machine-graph.tsx';

/** How often the counts on the graph are read again. */
export const STATS_EVERY_MS = 3000;

/** Executions that ended in each final state, from the stats. */
function finalCounts(stats: Stats): [string, number][] {
  return [
    ['completed', stats.executions.COMPLETED - stats.goal.achieved],
    ['goal_achieved', stats.goal.achieved],
    ['failed', stats.executions.FAILED],
    ['cancelled', stats.executions.CANCELLED],
  ];
}

/** A version's graph laid out, with the workflow and the Stately source. */
async function loadVersion(id: string, version: number | null) {
  const workflow = await api<Workflow>('GET', `/workflows/${id}`);
  const shown = await api<WorkflowVersion>('GET', `/workflows/${id}/versions/${version ?? workflow.version}`);
  const graph = buildGraph(shown.machine, shown.definition.steps);
  const validation = await api<Validation>('POST', '/workflows/validate', { definition: shown.definition });
  return { workflow, shown, graph, validation, layout: await layoutGraph(graph) };
}

/** The version's warnings and figures (`POST /workflows/validate`), read from its compiled machine's graph. */
function ValidationPanel({ validation }: { validation: Validation }) {
  const { figures, warnings } = validation;
  return (
    <div class="validation" data-validation>
      {figures && (
        <p class="muted" data-figures>
          {figures.paths} path{figures.paths === 1 ? '' : 's'} · at most {figures.max_messages_per_path} message
          {figures.max_messages_per_path === 1 ? '' : 's'} per path · longest wait{' '}
          {formatSeconds(figures.longest_wait_seconds)}
        </p>
      )}
      {warnings.length > 0 && (
        <ul class="warnings" data-warnings>
          {warnings.map((warning) => (
            <li key={`${warning.code}:${warning.step_id ?? ''}`} data-warning={warning.code}>
              {warning.step_id && <code>{warning.step_id}</code>} {warning.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** A duration in seconds as the largest whole unit that fits ("3 days", "2 hours", "45 seconds"). */
function formatSeconds(seconds: number): string {
  for (const [unit, size] of [
    ['day', 86_400],
    ['hour', 3_600],
    ['minute', 60],
  ] as const)
    if (seconds >= size) {
      const n = Math.floor(seconds / size);
      return `${n} ${unit}${n === 1 ? '' : 's'}`;
    }
  return `${seconds} second${seconds === 1 ? '' : 's'}`;
}

/** A workflow: its machine drawn with live counts, a version picker, "Copy for Stately", and the executions at a step. */
export function WorkflowView({ id }: { id: string }) {
  const [version, setVersion] = useState<number | null>(null);
  const [selected, setSelected] = useState<GraphNode | null>(null);
  const [source, setSource] = useState<string | null>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const loaded = useLoad(() => loadVersion(id, version), [id, version]);
  const shownVersion = loaded.value?.shown.version;
  const stats = useLoad(
    () => api<Stats>('GET', `/workflows/${id}/stats${shownVersion ? `?version=${shownVersion}` : ''}`),
    [id, shownVersion],
    STATS_EVERY_MS,
  );
  const counts = useMemo(() => {
    const map = new Map<string, NodeCounts>();
    if (!stats.value) return map;
    for (const step of stats.value.steps) map.set(step.step_id, { at_step: step.at_step, entered: step.entered });
    for (const [state, n] of finalCounts(stats.value)) map.set(state, { at_step: 0, entered: n });
    return map;
  }, [stats.value]);

  if (loaded.error) return <p class="error">{loaded.error}</p>;
  if (!loaded.value) return <p class="loading">Laying out the machine…</p>;
  const { workflow, shown, graph, layout, validation } = loaded.value;

  const copy = async () => {
    const text = renderCreateMachine(shown.machine);
    setSource(text);
    try {
      await navigator.clipboard.writeText(text);
      setCopied('Copied: paste it into Stately Studio (Import → code).');
    } catch {
      // Clipboard access needs a secure origin; the text is shown below to copy by hand.
      setCopied('Select the code below and copy it.');
    }
  };

  return (
    <section class="workflow-view">
      <header class="view-header">
        <div>
          <h2 data-workflow-name>{workflow.name}</h2>
          <p class="muted">
            <span class={`badge status-${workflow.status}`}>{workflow.status}</span> · current version{' '}
            {workflow.version}
          </p>
        </div>
        <div class="toolbar">
          <label>
            Version{' '}
            <select
              data-version-picker
              value={String(shown.version)}
              onChange={(event) => {
                setSelected(null);
                setVersion(Number((event.target as HTMLSelectElement).value));
              }}
            >
              {Array.from({ length: workflow.version }, (_, i) => workflow.version - i).map((v) => (
                <option key={v} value={String(v)}>
                  v{v}
                  {v === workflow.version ? ' (current)' : ''}
                </option>
              ))}
            </select>
          </label>
          <button type="button" onClick={copy} data-copy-stately>
            Copy for Stately
          </button>
        </div>
      </header>
      {stats.value && (
        <ul class="status-counts" data-stats>
          {STATUSES.map((s) => (
            <li key={s} class={`status-${s}`}>
              <span class="count" data-status-count={s}>
                {stats.value!.executions[s]}
              </span>{' '}
              {s}
            </li>
          ))}
          <li>
            goal <span class="count">{stats.value.goal.achieved}</span> (
            {formatPercent(stats.value.goal.conversion_rate)})
          </li>
        </ul>
      )}
      {stats.error && <p class="error">counts: {stats.error}</p>}
      <ValidationPanel validation={validation} />
      {copied && <p class="notice">{copied}</p>}
      {source && (
        <textarea
          class="source"
          readOnly
          rows={12}
          data-stately-source
          value={source}
          aria-label="createMachine code"
        />
      )}
      <div class="workflow-body">
        <MachineGraphView
          graph={graph}
          layout={layout}
          counts={counts}
          selected={selected?.id ?? null}
          onSelect={setSelected}
        />
        {selected && (
          <ExecutionsAtStep
            key={selected.id}
            workflowId={id}
            node={selected}
            onClose={() => setSelected(null)}
            onChanged={stats.reload}
          />
        )}
      </div>
    </section>
  );
}
