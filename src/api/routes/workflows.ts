import { Router } from 'express';
import { parseDefinition, type Definition, type ParseDefinitionOptions } from '../../definition/schema.ts';
import { compileWorkflow } from '../../compiler/compile.ts';
import { analyzeWorkflow, warningsOf, type WorkflowAnalysis } from '../../compiler/analyze-workflow.ts';
import { seenEventNames } from '../../sql/contact-events.ts';
import { lockCurrentVersionForPublish } from '../../sql/version-migration.ts';
import { enrollContacts, triggerExecution, versionEntryOf } from '../../engine/trigger.ts';
import type { Prisma } from '../../generated/prisma/client.ts';
import { callerOf, type ApiDeps } from '../context.ts';
import { HttpError, notFound } from '../http-error.ts';
import { runBulkControl } from '../bulk-control.ts';
import { testWorkflow } from '../workflow-test.ts';
import { moveToPublished, previewPublish } from '../version-publish.ts';
import { IDEMPOTENT_ROUTES, idempotency } from '../idempotency.ts';
import {
  bulkControlBody,
  bulkEnrollBody,
  createWorkflowBody,
  listExecutionsQuery,
  listWorkflowsQuery,
  testWorkflowBody,
  triggerBody,
  updateDefinitionBody,
  uuidParam,
  validateDefinitionBody,
  versionParam,
} from '../schemas.ts';
import { serializeExecution, serializeWorkflow, serializeWorkflowSummary } from '../serialize.ts';
import { validate } from '../validate.ts';
import type { EnrollmentRefusalReason } from '../../observability/metrics.ts';
import { addSpanEvent } from '../../observability/tracing.ts';

/** Parses a definition or answers 400 with every issue; `options` check what a caller submits (not stored ones). */
/** A version's stored fields: its definition, and the entry Postgres finds and enrolls it by. */
const versionFields = (definition: Definition) => {
  const { entryEvent, entryTag, enrollment } = versionEntryOf(definition);
  return {
    definition: definition as unknown as Prisma.InputJsonValue,
    entryEvent,
    entryTag,
    enrollment: enrollment as unknown as Prisma.InputJsonValue,
  };
};

const parseOrRefuse = (input: unknown, options: ParseDefinitionOptions = {}): Definition => {
  const parsed = parseDefinition(input, options);
  if (!parsed.ok)
    throw new HttpError(400, 'invalid workflow definition', {
      issues: parsed.issues.map((i) => ({ path: `definition.${i.path}`, message: i.message })),
    });
  return parsed.definition;
};

/** `/workflows`: create, list, read, new definition versions, activate/pause, trigger, executions (list, bulk cancel/retry), machine. */
export function workflowRoutes(deps: ApiDeps): Router {
  const router = Router();
  // Submitted definitions may not name non-public webhook addresses literally (CONTRACT.md).
  const submitted: ParseDefinitionOptions = { webhookAllowedHosts: deps.config.WEBHOOK_ALLOWED_HOSTS };

  const findWorkflow = async (accountId: string, id: string) => {
    const workflow = await deps.db.workflow.findFirst({ where: { id: validate(uuidParam, id, 'params'), accountId } });
    if (!workflow) throw notFound('workflow');
    return workflow;
  };
  const currentDefinition = async (workflowId: string, version: number) =>
    (await deps.db.workflowVersion.findUniqueOrThrow({ where: { workflowId_version: { workflowId, version } } }))
      .definition;

  /** The analysis of a definition and its warnings, the account's events looked up for its waits. */
  const analyze = async (accountId: string, definition: Definition) => {
    const analysis: WorkflowAnalysis = analyzeWorkflow(compileWorkflow(definition));
    const seen = await seenEventNames(
      deps.pool,
      accountId,
      analysis.eventWaits.map((wait) => wait.event),
    );
    return { analysis, warnings: warningsOf(analysis, seen) };
  };

  // Answers 200 for a valid and an invalid definition alike (a question, not a refusal); 400 only for a
  // body that is not `{"definition"}`.
  router.post('/workflows/validate', async (request, response) => {
    const body = validate(validateDefinitionBody, request.body, 'body');
    const parsed = parseDefinition(body.definition, submitted);
    if (!parsed.ok) {
      response.json({
        valid: false,
        issues: parsed.issues.map((i) => ({ path: `definition.${i.path}`, message: i.message })),
        warnings: [],
        figures: null,
      });
      return;
    }
    const { analysis, warnings } = await analyze(callerOf(request).accountId, parsed.definition);
    response.json({ valid: true, warnings, figures: analysis.figures });
  });

  router.post('/workflows', async (request, response) => {
    const body = validate(createWorkflowBody, request.body, 'body');
    const definition = parseOrRefuse(body.definition, submitted);
    const { warnings } = await analyze(callerOf(request).accountId, definition);
    const workflow = await deps.db.workflow.create({
      data: {
        accountId: callerOf(request).accountId,
        name: body.name,
        status: body.status ?? 'draft',
        versions: { create: { version: 1, ...versionFields(definition) } },
      },
    });
    response.status(201).json({ ...serializeWorkflow(workflow, definition), warnings });
  });

  router.get('/workflows', async (request, response) => {
    const query = validate(listWorkflowsQuery, request.query, 'query');
    const where: Prisma.WorkflowWhereInput = {
      accountId: callerOf(request).accountId,
      ...(query.status ? { status: query.status } : {}),
    };
    const [total, rows] = await Promise.all([
      deps.db.workflow.count({ where }),
      deps.db.workflow.findMany({
        where,
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        skip: (query.page - 1) * query.limit,
        take: query.limit,
      }),
    ]);
    // One aggregate for the whole page (the index on workflow_id, status serves it).
    const counts = await deps.db.execution.groupBy({
      by: ['workflowId', 'status'],
      where: { workflowId: { in: rows.map((row) => row.id) } },
      _count: { _all: true },
    });
    response.json({
      data: rows.map((row) =>
        serializeWorkflowSummary(
          row,
          counts.filter((c) => c.workflowId === row.id).map((c) => ({ status: c.status, n: c._count._all })),
        ),
      ),
      pagination: { total, page: query.page, limit: query.limit, total_pages: Math.ceil(total / query.limit) },
    });
  });

  router.get('/workflows/:id', async (request, response) => {
    const workflow = await findWorkflow(callerOf(request).accountId, request.params.id);
    response.json(serializeWorkflow(workflow, await currentDefinition(workflow.id, workflow.currentVersion)));
  });

  router.put('/workflows/:id/definition', async (request, response) => {
    const caller = callerOf(request);
    const workflow = await findWorkflow(caller.accountId, request.params.id);
    const body = validate(updateDefinitionBody, request.body, 'body');
    const definition = parseOrRefuse(body.definition, submitted);
    const inFlight = body.in_flight ?? 'keep';
    if (body.dry_run) return void response.json(await previewPublish(deps, workflow.id, definition, inFlight));
    const { warnings } = await analyze(workflow.accountId, definition);
    // Versions are immutable: running executions keep the version they started on, unless moved below.
    const { updated, versionId } = await deps.db.$transaction(async (tx) => {
      // The move below reads the running executions after this commit; the lock, taken before the version
      // changes, makes every trigger, event or tag entry and bulk enrollment that read the old version
      // commit before it, and every later one read the new version (flowmachine_current_version_lock.sql).
      // A `keep` publish leaves older executions where they are, and needs no such order.
      if (inFlight === 'move') await lockCurrentVersionForPublish(tx, workflow.id);
      const next = await tx.workflow.update({ where: { id: workflow.id }, data: { currentVersion: { increment: 1 } } });
      const version = await tx.workflowVersion.create({
        data: {
          workflowId: workflow.id,
          version: next.currentVersion,
          ...versionFields(definition),
        },
      });
      return { updated: next, versionId: version.id };
    });
    if (inFlight === 'keep') return void response.json({ ...serializeWorkflow(updated, definition), warnings });
    const target = {
      accountId: workflow.accountId,
      workflowId: workflow.id,
      versionId,
      version: updated.currentVersion,
      userId: caller.userId,
    };
    const { moved, stayed } = await moveToPublished(deps, target);
    response.json({ ...serializeWorkflow(updated, definition), warnings, in_flight: { moved, stayed } });
  });

  for (const [action, status] of [
    ['activate', 'active'],
    ['pause', 'paused'],
  ] as const) {
    router.post(`/workflows/:id/${action}`, async (request, response) => {
      const workflow = await findWorkflow(callerOf(request).accountId, request.params.id);
      const updated = await deps.db.workflow.update({ where: { id: workflow.id }, data: { status } });
      response.json(serializeWorkflow(updated, await currentDefinition(workflow.id, workflow.currentVersion)));
    });
  }

  router.get('/workflows/:id/machine', async (request, response) => {
    const workflow = await findWorkflow(callerOf(request).accountId, request.params.id);
    const parsed = parseOrRefuse(await currentDefinition(workflow.id, workflow.currentVersion));
    response.json(compileWorkflow(parsed, `workflow-${workflow.id}`).config);
  });

  // The dry run of one contact: reads only, writes nothing (workflow-test.ts).
  router.post('/workflows/:id/test', async (request, response) => {
    const caller = callerOf(request);
    const workflow = await findWorkflow(caller.accountId, request.params.id);
    const body = validate(testWorkflowBody, request.body, 'body');
    const target = { accountId: caller.accountId, workflowId: workflow.id, version: workflow.currentVersion };
    response.json(await testWorkflow(deps, target, body));
  });

  router.get('/workflows/:id/versions/:version', async (request, response) => {
    const workflow = await findWorkflow(callerOf(request).accountId, request.params.id);
    const number = validate(versionParam, request.params.version, 'params');
    const version = await deps.db.workflowVersion.findUnique({
      where: { workflowId_version: { workflowId: workflow.id, version: number } },
    });
    if (!version) throw notFound('workflow version');
    const parsed = parseOrRefuse(version.definition);
    response.json({
      version: version.version,
      current: version.version === workflow.currentVersion,
      definition: version.definition,
      machine: compileWorkflow(parsed, `workflow-${workflow.id}`).config,
      created_at: version.createdAt.toISOString(),
    });
  });

  router.post('/workflows/:id/trigger', idempotency(deps, IDEMPOTENT_ROUTES.trigger), async (request, response) => {
    const caller = callerOf(request);
    const workflowId = validate(uuidParam, request.params.id, 'params');
    const body = validate(triggerBody, request.body, 'body');
    const result = await triggerExecution(deps, deps.cache, {
      accountId: caller.accountId,
      workflowId,
      contactId: body.contact_id,
      payload: body.payload,
    });
    switch (result.kind) {
      case 'started':
        return void response.status(202).json({ execution_id: result.executionId, status: 'QUEUED' });
      case 'duplicate':
        return void response
          .status(200)
          .json({ duplicate: true, message: 'duplicate trigger ignored', execution_id: result.executionId });
      case 'workflow_not_found':
        throw notFound('workflow');
      case 'contact_not_found':
        throw notFound('contact');
      case 'inactive':
        throw new HttpError(400, 'Workflow is not active');
      case 'opted_out':
        throw new HttpError(403, 'Contact has opted out');
      case 'already_enrolled':
        throw new HttpError(409, 'Contact already enrolled', { execution_id: result.executionId });
    }
  });

  router.post('/workflows/:id/enrollments', async (request, response) => {
    const caller = callerOf(request);
    const workflowId = validate(uuidParam, request.params.id, 'params');
    const body = validate(bulkEnrollBody, request.body, 'body');
    await refuseWhileQueueFull(deps, caller.accountId, workflowId);
    const result = await enrollContacts(deps, deps.cache, {
      accountId: caller.accountId,
      workflowId,
      contactIds: body.contact_ids,
      payload: body.payload,
    });
    if (result.kind !== 'done')
      throw result.kind === 'workflow_not_found' ? notFound('workflow') : new HttpError(400, 'Workflow is not active');
    response.json({
      started: result.outcomes.filter((o) => o.outcome === 'started').length,
      results: result.outcomes.map((o) => ({
        contact_id: o.contactId,
        outcome: o.outcome,
        execution_id: o.executionId ?? null,
      })),
    });
  });

  router.get('/workflows/:id/executions', async (request, response) => {
    const workflow = await findWorkflow(callerOf(request).accountId, request.params.id);
    const query = validate(listExecutionsQuery, request.query, 'query');
    const where: Prisma.ExecutionWhereInput = {
      workflowId: workflow.id,
      ...(query.status ? { status: query.status } : {}),
      ...(query.step_id ? { snapshot: { path: ['value'], equals: query.step_id } } : {}),
      ...(query.from || query.to
        ? { createdAt: { ...(query.from ? { gte: query.from } : {}), ...(query.to ? { lte: query.to } : {}) } }
        : {}),
    };
    const [total, rows] = await Promise.all([
      deps.db.execution.count({ where }),
      deps.db.execution.findMany({
        where,
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        skip: (query.page - 1) * query.limit,
        take: query.limit,
      }),
    ]);
    response.json({
      data: rows.map(serializeExecution),
      pagination: { total, page: query.page, limit: query.limit, total_pages: Math.ceil(total / query.limit) },
    });
  });

  for (const operation of ['cancel', 'retry'] as const) {
    router.post(`/workflows/:id/executions/${operation}`, async (request, response) => {
      const caller = callerOf(request);
      const workflow = await findWorkflow(caller.accountId, request.params.id);
      const body = validate(bulkControlBody, request.body, 'body');
      let versionId: string | undefined;
      if (body.version !== undefined) {
        const version = await deps.db.workflowVersion.findUnique({
          where: { workflowId_version: { workflowId: workflow.id, version: body.version } },
        });
        if (!version) throw notFound('workflow version');
        versionId = version.id;
      }
      const result = await runBulkControl(
        deps,
        operation,
        { accountId: caller.accountId, workflowId: workflow.id, userId: caller.userId },
        { status: body.status, stepId: body.step_id, versionId, from: body.from, to: body.to },
        body.dry_run ?? false,
      );
      response.json(result);
    });
  }

  return router;
}

/** Seconds a bulk enrollment refused for a full queue is asked to wait. */
const QUEUE_FULL_RETRY_AFTER_S = 1;

/**
 * Refuses a bulk enrollment while the queue's ready jobs reach `ENROLL_QUEUE_LIMIT`: at 1,000 contacts a
 * request the API accepts enrollments faster than the workers start them, and the difference would
 * otherwise pile up in Redis, one job each. Each refusal counts in `flowmachine_enrollments_refused_total`,
 * is a warning log line and an event on the request's span.
 */
async function refuseWhileQueueFull(deps: ApiDeps, accountId: string, workflowId: string) {
  const limit = deps.config.ENROLL_QUEUE_LIMIT;
  if (limit === 0) return;
  const ready = await deps.queue.ready();
  if (ready >= limit) {
    const reason: EnrollmentRefusalReason = 'queue_full';
    deps.metrics.enrollmentsRefused.inc({ reason });
    deps.logger.warn('bulk enrollment refused', {
      reason,
      ready,
      limit,
      workflow_id: workflowId,
      account_id: accountId,
    });
    addSpanEvent('bulk enrollment refused', {
      'flowmachine.refusal_reason': reason,
      'flowmachine.ready_jobs': ready,
      'flowmachine.enroll_queue_limit': limit,
      'flowmachine.workflow_id': workflowId,
    });
    throw new HttpError(
      429,
      `the queue holds ${ready} jobs ready to run (ENROLL_QUEUE_LIMIT ${limit}); retry later`,
      {},
      { 'retry-after': String(QUEUE_FULL_RETRY_AFTER_S) },
    );
  }
}
