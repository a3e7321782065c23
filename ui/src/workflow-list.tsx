import { useState } from 'preact/hooks';
import { api, ApiError, STATUSES, type Page, type WorkflowSummary } from './api.ts';
import { useLoad } from './hooks.ts';

const PAGE_SIZE = 20;
/** The list's counts are read again this often. */
const LIST_EVERY_MS = 5000;

/** The account's workflows: name, status, current version, executions by status; activate and pause. */
export function WorkflowList() {
  const [page, setPage] = useState(1);
  const [message, setMessage] = useState<string | null>(null);
  const list = useLoad(
    () => api<Page<WorkflowSummary>>('GET', `/workflows?page=${page}&limit=${PAGE_SIZE}`),
    [page],
    LIST_EVERY_MS,
  );

  const setStatus = async (workflow: WorkflowSummary, action: 'activate' | 'pause') => {
    setMessage(null);
    try {
      await api('POST', `/workflows/${workflow.id}/${action}`);
      list.reload();
    } catch (error) {
      setMessage(error instanceof ApiError ? error.message : String(error));
    }
  };

  if (list.error && !list.value) return <p class="error">{list.error}</p>;
  if (!list.value) return <p class="loading">Loading workflows…</p>;
  const { data, pagination } = list.value;
  return (
    <section class="workflow-list">
      <h2>Workflows</h2>
      {message && <p class="error">{message}</p>}
      {data.length === 0 ? (
        <p class="muted">
          No workflows yet: create one with <code>POST /api/v1/workflows</code> (see <a href="/docs">/docs</a>).
        </p>
      ) : (
        <table class="workflows">
          <thead>
            <tr>
              <th>name</th>
              <th>status</th>
              <th>version</th>
              {STATUSES.map((s) => (
                <th key={s} class="num">
                  {s.toLowerCase()}
                </th>
              ))}
              <th />
            </tr>
          </thead>
          <tbody>
            {data.map((workflow) => (
              <tr key={workflow.id} data-workflow={workflow.id}>
                <td>
                  <a href={`#/workflows/${workflow.id}`}>{workflow.name}</a>
                </td>
                <td>
                  <span class={`badge status-${workflow.status}`} data-workflow-status>
                    {workflow.status}
                  </span>
                </td>
                <td class="num">v{workflow.version}</td>
                {STATUSES.map((s) => (
                  <td key={s} class="num" data-count={s}>
                    {workflow.executions[s]}
                  </td>
                ))}
                <td>
                  {workflow.status === 'active' ? (
                    <button type="button" onClick={() => setStatus(workflow, 'pause')} data-pause>
                      Pause
                    </button>
                  ) : (
                    <button type="button" onClick={() => setStatus(workflow, 'activate')} data-activate>
                      Activate
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pagination.total_pages > 1 && (
        <div class="pager">
          <button type="button" disabled={page <= 1} onClick={() => setPage(page - 1)}>
            ‹ newer
          </button>
          <span>
            page {pagination.page} of {pagination.total_pages}
          </span>
          <button type="button" disabled={page >= pagination.total_pages} onClick={() => setPage(page + 1)}>
            older ›
          </button>
        </div>
      )}
    </section>
  );
}
