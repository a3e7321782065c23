import { useMemo, useState } from 'preact/hooks';
import { api, ApiError, type Execution, type LogEntry, type Page, type Workflow, type WorkflowVersion } from './api.ts';
import { formatDuration, formatTime } from './format.ts';
import { buildGraph, edgesTaken, pathOf } from './graph.ts';
import { useLoad } from './hooks.ts';
import { layoutGraph } from './layout.ts';
import { MachineGraphView } from './machine-graph.tsx';

/** How often a running execution is read again. */
const EXECUTION_EVERY_MS = 3000;
/** Log pages read at most (100 entries each): enough for any path; the count says when there are more. */
const MAX_LOG_PAGES = 10;

const RUNNING = ['QUEUED', 'ACTIVE', 'PAUSED'];

/** Every log entry of an execution, oldest first (up to {@link MAX_LOG_PAGES} pages). */
async function loadLogs(id: string): Promise<{ entries: LogEntry[]; total: number }> {
  const entries: LogEntry[] = [];
  for (let page = 1; page <= MAX_LOG_PAGES; page += 1) {
    const answer = await api<Page<LogEntry>>('GET', `/executions/${id}/logs?page=${page}&limit=100`);
    entries.push(...answer.data);
    if (page >= answer.pagination.total_pages) return { entries, total: answer.pagination.total };
  }
  return { entries, total: entries.length };
}

/** The machine of the workflow version the execution is pinned to, laid out. */
async function loadGraph(execution: Execution) {
  const workflow = await api<Workflow>('GET', `/workflows/${execution.workflow_id}`);
  const version = await api<WorkflowVersion>(
    'GET',
    `/workflows/${workflow.id}/versions/${execution.workflow_version ?? workflow.version}`,
  );
  const graph = buildGraph(version.machine, version.definition.steps);
  return { workflow, version, graph, layout: await layoutGraph(graph) };
}

/** One execution: its path on the graph, where it is now, its log as a timeline, and cancel/retry. */
export function ExecutionView({ id }: { id: string }) {
  const [message, setMessage] = useState<string | null>(null);
  const execution = useLoad(() => api<Execution>('GET', `/executions/${id}`), [id], EXECUTION_EVERY_MS);
  const logs = useLoad(() => loadLogs(id), [id, execution.value?.updated_at]);
  const workflowId = execution.value?.workflow_id;
  const drawn = useLoad(async () => (execution.value ? loadGraph(execution.value) : null), [workflowId]);
  const marks = useMemo(() => {
    if (!drawn.value || !logs.value || !execution.value) return undefined;
    const path = pathOf(logs.value.entries);
    const current = execution.value.current_step;
    const visited = new Set(current ? [...path, current] : path);
    return { visited, edges: edgesTaken(drawn.value.graph, path, current), current };
  }, [drawn.value, logs.value, execution.value]);

  if (execution.error && !execution.value) return <p class="error">{execution.error}</p>;
  if (!execution.value) return <p class="loading">Loading the execution…</p>;
  const e = execution.value;

  const control = async (verb: 'cancel' | 'retry') => {
    setMessage(null);
    try {
      await api('POST', `/executions/${id}/${verb}`);
      execution.reload();
    } catch (error) {
      setMessage(error instanceof ApiError ? error.message : String(error));
    }
  };

  return (
    <section class="execution-view">
      <header class="view-header">
        <div>
          <h2>
            Execution <code>{e.id}</code>
          </h2>
          <p class="muted">
            {drawn.value && (
              <>
                <a href={`#/workflows/${e.workflow_id}`}>{drawn.value.workflow.name}</a> v{drawn.value.version.version}{' '}
                ·{' '}
              </>
            )}
            contact <code>{e.contact_id}</code>
          </p>
        </div>
        <div class="toolbar">
          {RUNNING.includes(e.status) && (
            <button type="button" class="danger" onClick={() => control('cancel')} data-cancel>
              Cancel
            </button>
          )}
          {e.status === 'FAILED' && (
            <button type="button" onClick={() => control('retry')} data-retry>
              Retry
            </button>
          )}
          {e.trace_url && (
            <a class="button" href={e.trace_url} target="_blank" rel="noreferrer noopener" data-trace-link>
              Trace in Jaeger
            </a>
          )}
        </div>
      </header>
      {message && <p class="error">{message}</p>}
      <dl class="facts">
        <dt>status</dt>
        <dd>
          <span class={`badge status-${e.status}`} data-execution-status>
            {e.status}
          </span>
          {e.completion_reason ? ` (${e.completion_reason})` : ''}
        </dd>
        <dt>step</dt>
        <dd>
          <code>{e.current_step ?? '—'}</code> · {e.current_step_index} of {e.total_steps} ({e.progress_percent} %)
        </dd>
        <dt>retries</dt>
        <dd>{e.retry_count}</dd>
        <dt>next run</dt>
        <dd data-next-run>{formatTime(e.next_run_at)}</dd>
        <dt>created</dt>
        <dd>{formatTime(e.created_at)}</dd>
        {e.trace_id && (
          <>
            <dt>trace</dt>
            <dd>
              <code>{e.trace_id}</code>
            </dd>
          </>
        )}
        {e.last_error && (
          <>
            <dt>last error</dt>
            <dd class="error-text">{e.last_error}</dd>
          </>
        )}
      </dl>
      {drawn.error && <p class="error">{drawn.error}</p>}
      {drawn.value && <MachineGraphView graph={drawn.value.graph} layout={drawn.value.layout} marks={marks} />}
      <h3>Timeline</h3>
      {logs.value && (
        <ol class="timeline" data-timeline>
          {logs.value.entries.map((entry) => (
            <li key={entry.id} class={`entry entry-${entry.status.toLowerCase()}`} data-event={entry.event_type}>
              <span class="when">{formatTime(entry.timestamp)}</span>
              <span class="what">
                <strong>{entry.event_type}</strong>
                {entry.step_id && (
                  <>
                    {' '}
                    at <code>{entry.step_id}</code>
                  </>
                )}{' '}
                <span class="muted">{entry.status}</span>
                {entry.duration_ms !== null && <span class="muted"> · {formatDuration(entry.duration_ms)}</span>}
                {entry.user_id && <span class="muted"> · by user {entry.user_id.slice(0, 8)}</span>}
              </span>
              {entry.details !== null &&
                typeof entry.details === 'object' &&
                Object.keys(entry.details as object).length > 0 && (
                  <pre class="details">{JSON.stringify(entry.details)}</pre>
                )}
            </li>
          ))}
        </ol>
      )}
      {logs.value && logs.value.total > logs.value.entries.length && (
        <p class="muted">
          Showing the first {logs.value.entries.length} of {logs.value.total} entries.
        </p>
      )}
    </section>
  );
}
