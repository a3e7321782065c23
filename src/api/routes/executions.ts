import { Router } from 'express';
import { findExecution as findExecutionRow } from '../../sql/execution-view.ts';
import { cancelExecution, retryExecution, type ControlResult } from '../../engine/control.ts';
import { callerOf, type ApiDeps } from '../context.ts';
import { HttpError, notFound } from '../http-error.ts';
import { logsQuery, uuidParam } from '../schemas.ts';
import { serializeExecution, serializeLog, type ExecutionView } from '../serialize.ts';
import { validate } from '../validate.ts';

/** The page of a trace in the Jaeger UI at `base` (`JAEGER_UI_URL`), or null without either. */
export function traceUrl(base: string | undefined, traceId: string | null): string | null {
  return base && traceId ? `${base.replace(/\/+$/, '')}/trace/${traceId}` : null;
}

/** `/executions`: status, logs, cancel, manual retry. */
export function executionRoutes(deps: ApiDeps): Router {
  const router = Router();

  const findExecution = async (accountId: string, id: string) => {
    const execution = await findExecutionRow<ExecutionView & { workflowVersion: number }>(
      deps.pool,
      validate(uuidParam, id, 'params'),
      accountId,
    );
    if (!execution) throw notFound('execution');
    return execution;
  };

  const answer = async (result: ControlResult, accountId: string, id: string, verb: string) => {
    if (result.kind === 'not_found') throw notFound('execution');
    if (result.kind === 'conflict')
      throw new HttpError(409, `cannot ${verb} an execution with status ${result.status}`, { status: result.status });
    return serializeExecution(await findExecution(accountId, id));
  };

  router.get('/executions/:id', async (request, response) => {
    const row = await findExecution(callerOf(request).accountId, request.params.id);
    const execution = serializeExecution(row);
    response.json({
      ...execution,
      workflow_version: row.workflowVersion,
      trace_url: traceUrl(deps.config.JAEGER_UI_URL, execution.trace_id),
    });
  });

  router.get('/executions/:id/logs', async (request, response) => {
    const execution = await findExecution(callerOf(request).accountId, request.params.id);
    const query = validate(logsQuery, request.query, 'query');
    const [total, rows] = await Promise.all([
      deps.db.executionLog.count({ where: { executionId: execution.id } }),
      deps.db.executionLog.findMany({
        where: { executionId: execution.id },
        orderBy: { id: 'asc' },
        skip: (query.page - 1) * query.limit,
        take: query.limit,
      }),
    ]);
    response.json({
      data: rows.map(serializeLog),
      pagination: { total, page: query.page, limit: query.limit, total_pages: Math.ceil(total / query.limit) },
    });
  });

  router.post('/executions/:id/cancel', async (request, response) => {
    const caller = callerOf(request);
    const id = validate(uuidParam, request.params.id, 'params');
    response.json(
      await answer(
        await cancelExecution(deps, deps.cache, caller.accountId, id, caller.userId),
        caller.accountId,
        id,
        'cancel',
      ),
    );
  });

  router.post('/executions/:id/retry', async (request, response) => {
    const caller = callerOf(request);
    const id = validate(uuidParam, request.params.id, 'params');
    response.json(
      await answer(
        await retryExecution(deps, deps.cache, caller.accountId, id, caller.userId),
        caller.accountId,
        id,
        'retry',
      ),
    );
  });

  return router;
}
