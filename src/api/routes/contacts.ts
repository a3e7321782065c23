import { Router } from 'express';
import { deleteContact } from '../../engine/control.ts';
import { receiveEvent } from '../../engine/events.ts';
import { changeTag } from '../../engine/trigger.ts';
import type { Prisma } from '../../generated/prisma/client.ts';
import { callerOf, type ApiDeps } from '../context.ts';
import { notFound } from '../http-error.ts';
import { IDEMPOTENT_ROUTES, idempotency } from '../idempotency.ts';
import { contactEventBody, createContactBody, tagBody, updateContactBody, uuidParam } from '../schemas.ts';
import { serializeContact } from '../serialize.ts';
import { validate } from '../validate.ts';

/** `/contacts`: create, read, update, soft-delete, tags, events (goals). */
export function contactRoutes(deps: ApiDeps): Router {
  const router = Router();

  const findContact = async (accountId: string, id: unknown) => {
    const contact = await deps.db.contact.findFirst({
      where: { id: validate(uuidParam, id, 'params'), accountId, deletedAt: null },
    });
    if (!contact) throw notFound('contact');
    return contact;
  };

  router.post('/contacts', async (request, response) => {
    const body = validate(createContactBody, request.body, 'body');
    const contact = await deps.db.contact.create({
      data: {
        accountId: callerOf(request).accountId,
        email: body.email,
        phone: body.phone ?? null,
        optedIn: body.opted_in,
        timezone: body.timezone ?? null,
        tags: [...new Set(body.tags ?? [])],
        attributes: (body.attributes ?? {}) as Prisma.InputJsonValue,
      },
    });
    response.status(201).json(serializeContact(contact));
  });

  router.get('/contacts/:id', async (request, response) => {
    response.json(serializeContact(await findContact(callerOf(request).accountId, request.params.id)));
  });

  router.patch('/contacts/:id', async (request, response) => {
    const contact = await findContact(callerOf(request).accountId, request.params.id);
    const body = validate(updateContactBody, request.body, 'body');
    const updated = await deps.db.contact.update({
      where: { id: contact.id },
      data: {
        ...(body.email !== undefined ? { email: body.email } : {}),
        ...(body.phone !== undefined ? { phone: body.phone } : {}),
        ...(body.opted_in !== undefined ? { optedIn: body.opted_in } : {}),
        ...(body.timezone !== undefined ? { timezone: body.timezone } : {}),
        ...(body.tags !== undefined ? { tags: [...new Set(body.tags)] } : {}),
        ...(body.attributes !== undefined ? { attributes: body.attributes as Prisma.InputJsonValue } : {}),
      },
    });
    response.json(serializeContact(updated));
  });

  router.delete('/contacts/:id', async (request, response) => {
    const contact = await findContact(callerOf(request).accountId, request.params.id);
    await deleteContact(deps, deps.cache, contact.accountId, contact.id);
    response.status(204).end();
  });

  router.post('/contacts/:id/tags', async (request, response) => {
    const contact = await findContact(callerOf(request).accountId, request.params.id);
    const { tag } = validate(tagBody, request.body, 'body');
    // Applied in the row's UPDATE, so a concurrent add_tag step is not overwritten; a new tag enrolls.
    await changeTag(deps, { accountId: contact.accountId, contactId: contact.id, op: 'add', tag });
    response.json(serializeContact(await findContact(contact.accountId, contact.id)));
  });

  router.delete('/contacts/:id/tags/:tag', async (request, response) => {
    const contact = await findContact(callerOf(request).accountId, request.params.id);
    const { tag } = validate(tagBody, { tag: request.params.tag }, 'params');
    await changeTag(deps, { accountId: contact.accountId, contactId: contact.id, op: 'remove', tag });
    response.json(serializeContact(await findContact(contact.accountId, contact.id)));
  });

  router.post('/contacts/:id/events', idempotency(deps, IDEMPOTENT_ROUTES.events), async (request, response) => {
    const contact = await findContact(callerOf(request).accountId, request.params.id);
    const event = validate(contactEventBody, request.body, 'body');
    // Stored first: the event is on record ("has this contact had it") whatever its goals do next.
    const stored = await deps.db.contactEvent.create({
      data: {
        accountId: contact.accountId,
        contactId: contact.id,
        name: event.name,
        properties: (event.properties ?? {}) as Prisma.InputJsonValue,
        createdAt: deps.clock.now(),
      },
      select: { id: true, createdAt: true },
    });
    const properties = (event.properties ?? {}) as Record<string, unknown>;
    const outcome = await receiveEvent(deps, deps.cache, contact, {
      id: stored.id,
      name: event.name,
      properties,
      at: stored.createdAt,
    });
    response.status(202).json({
      accepted: true,
      event: event.name,
      event_id: stored.id,
      enrolled: outcome.enrolled.map((e) => ({ workflow_id: e.workflowId, execution_id: e.executionId })),
      blocked: outcome.blocked.map((b) => ({ workflow_id: b.workflowId, reason: b.reason })),
      resumed: outcome.resumed,
      goals: outcome.goals,
      exited: outcome.exited,
      goal_completed_executions: outcome.goals,
    });
  });

  return router;
}
