import { useState } from 'preact/hooks';
import { api, ApiError, STATUSES, type BulkResult, type Execution, type Page } from './api.ts';
import { formatTime } from './format.ts';
import type { GraphNode } from './graph.ts';
import { useLoad } from './hooks.ts';

const PAGE_SIZE = 20;

/** A bulk operation waiting for its confirmation, with the dry run's count. */
interface Pending {
  operation: 'cancel' | 'retry';
  matched: number;
}

interface Props {
  workflowId: string;
  node: GraphNode;
  onClose: () => void;
  /** Called after a bulk operation changed executions (the counts are read again). */
  onChanged: () => void;
}

/**
 * The executions at one node now (a step, or a final state), paginated and filtered by status, with
 * bulk cancel (running ones) and retry (failed ones): each first a dry run whose count is shown, then
 * the operation once confirmed.
 */
export function ExecutionsAtStep({ workflowId, node, onClose, onChanged }: Props) {
  const [status, setStatus] = useState('');
  const [page, setPage] = useState(1);
  const [pending, setPending] = useState<Pending | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const list = useLoad(
    () =>
      api<Page<Execution>>(
        'GET',
        `/workflows/${workflowId}/executions?${new URLSearchParams({
          step_id: node.id,
          page: String(page),
          limit: String(PAGE_SIZE),
          ...(status ? { status } : {}),
        })}`,
      ),
    [workflowId, node.id, status, page],
  );
  const filter = { step_id: node.id, ...(status ? { status } : {}) };

  const dryRun = async (operation: Pending['operation']) => {
    setMessage(null);
    try {
      const result = await api<BulkResult>('POST', `/workflows/${workflowId}/executions/${operation}`, {
        ...filter,
        dry_run: true,
      });
      setPending({ operation, matched: result.matched });
    } catch (error) {
      setMessage(error instanceof ApiError ? error.message : String(error));
    }
  };
  const confirm = async () => {
    if (!pending) return;
    try {
      const result = await api<BulkResult>('POST', `/workflows/${workflowId}/executions/${pending.operation}`, filter);
      setMessage(`${pending.operation === 'cancel' ? 'Cancelled' : 'Retried'} ${result.changed} of ${result.matched}.`);
    } catch (error) {
      setMessage(error instanceof ApiError ? error.message : String(error));
    }
    setPending(null);
    list.reload();
    onChanged();
  };

  const pagination = list.value?.pagination;
  return (
    <aside class="panel" data-executions-at={node.id}>
      <header class="panel-header">
        <h3>
          At <code>{node.id}</code>
        </h3>
        <button type="button" class="link" onClick={onClose} aria-label="close">
          ×
        </button>
      </header>
      <p class="muted">
        {node.type}
        {node.summary ? ` · ${node.summary}` : ''}
      </p>
      <div class="toolbar">
        <label>
          Status{' '}
          <select
            data-status-filter
            value={status}
            onChange={(event) => {
              setPage(1);
              setStatus((event.target as HTMLSelectElement).value);
            }}
          >
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => dryRun('cancel')} data-bulk="cancel">
          Cancel running…
        </button>
        <button type="button" onClick={() => dryRun('retry')} data-bulk="retry">
          Retry failed…
        </button>
      </div>
      {pending && (
        <div class="confirm" data-confirm>
          <p>
            <strong data-dry-run-count>{pending.matched}</strong> execution{pending.matched === 1 ? '' : 's'} would be{' '}
            {pending.operation === 'cancel' ? 'cancelled' : 'retried'}.
          </p>
          <button type="button" class="danger" onClick={confirm} disabled={pending.matched === 0} data-confirm-button>
            {pending.operation === 'cancel' ? 'Cancel' : 'Retry'} {pending.matched}
          </button>{' '}
          <button type="button" onClick={() => setPending(null)}>
            Keep them
          </button>
        </div>
      )}
      {message && <p class="notice">{message}</p>}
      {list.error && <p class="error">{list.error}</p>}
      {list.value && list.value.data.length === 0 && <p class="muted">No executions here now.</p>}
      {list.value && list.value.data.length > 0 && (
        <table class="executions">
          <thead>
            <tr>
              <th>execution</th>
              <th>status</th>
              <th>created</th>
            </tr>
          </thead>
          <tbody>
            {list.value.data.map((execution) => (
              <tr key={execution.id} data-execution={execution.id}>
                <td>
                  <a href={`#/executions/${execution.id}`}>{execution.id.slice(0, 8)}</a>
                </td>
                <td>
                  <span class={`badge status-${execution.status}`}>{execution.status}</span>
                </td>
                <td>{formatTime(execution.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pagination && pagination.total_pages > 1 && (
        <div class="pager">
          <button type="button" disabled={page <= 1} onClick={() => setPage(page - 1)}>
            ‹ newer
          </button>
          <span>
            page {pagination.page} of {pagination.total_pages} ({pagination.total})
          </span>
          <button type="button" disabled={page >= pagination.total_pages} onClick={() => setPage(page + 1)}>
            older ›
          </button>
        </div>
      )}
    </aside>
  );
}
