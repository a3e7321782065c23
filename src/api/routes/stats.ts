import { Router } from 'express';
import { callerOf, type ApiDeps } from '../context.ts';
import { notFound } from '../http-error.ts';
import { statsQuery, uuidParam } from '../schemas.ts';
import { validate } from '../validate.ts';
import { flattenSteps, queryWorkflowStats, statsVersions, summarizeStats, type StepRef } from '../workflow-stats.ts';

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
    const versions = await statsVersions(deps.pool, id, callerOf(request).accountId, query.version ?? null);
    if (!versions) throw notFound('workflow');
    if (versions.length === 0) throw notFound('workflow version');
    const versionId = query.version !== undefined ? versions[0]!.id : null;
    const rows = await queryWorkflowStats(deps.pool, id, versionId);
    response.json(summarizeStats(stepsOf(versions.map((v) => v.definition)), rows));
  });

  return router;
}
