import { Router } from 'express';
import { callerOf, type ApiDeps } from '../context.ts';
import { notFound } from '../http-error.ts';
import { statsQuery, uuidParam } from '../schemas.ts';
import { validate } from '../validate.ts';
import { flattenSteps, queryWorkflowStats, summarizeStats, type StepRef } from '../workflow-stats.ts';

/** Steps of stored definitions, newest version first, each step id once (its newest type wins). */
function stepsOf(definitions: unknown[]): StepRef[] {
  const seen = new Map<string, StepRef>();
  for (const definition of definitions)
    for (const step of flattenSteps((definition as { steps?: [] }).steps ?? []))
      if (!seen.has(step.id)) seen.set(step.id, step);
  return [...seen.values()];
}

/** `GET /workflows/{id}/stats`: executions by status, counts per step and the goal's conversion (workflow-stats.ts). */
export function statsRoutes(deps: ApiDeps): Router {
  const router = Router();

  router.get('/workflows/:id/stats', async (request, response) => {
    const id = validate(uuidParam, request.params.id, 'params');
    const query = validate(statsQuery, request.query, 'query');
    const workflow = await deps.db.workflow.findFirst({ where: { id, accountId: callerOf(request).accountId } });
    if (!workflow) throw notFound('workflow');
    const versions = await deps.db.workflowVersion.findMany({
      where: { workflowId: workflow.id, ...(query.version !== undefined ? { version: query.version } : {}) },
      orderBy: { version: 'desc' },
      select: { id: true, definition: true },
    });
    if (versions.length === 0) throw notFound('workflow version');
    const versionId = query.version !== undefined ? versions[0]!.id : null;
    const rows = await queryWorkflowStats(deps.pool, workflow.id, versionId);
    response.json(summarizeStats(stepsOf(versions.map((v) => v.definition)), rows));
  });

  return router;
}
