import { Router } from 'express';
import { storedCaps } from '../../definition/frequency-caps.ts';
import { issueApiKey } from '../api-keys.ts';
import { requireAdmin, type CallerCache } from '../auth.ts';
import { callerOf, type ApiDeps } from '../context.ts';
import { HttpError, notFound } from '../http-error.ts';
import { accountSettingsBody, createApiKeyBody, uuidParam } from '../schemas.ts';
import { serializeSettings } from '../serialize.ts';
import { validate } from '../validate.ts';

/** `/account/settings` and `/api-keys`; a revoked key is forgotten by `callers`, the authentication cache. */
export function accountRoutes(deps: ApiDeps, callers: CallerCache): Router {
  const router = Router();

  router.get('/account/settings', async (request, response) => {
    response.json(
      serializeSettings(await deps.db.account.findUniqueOrThrow({ where: { id: callerOf(request).accountId } })),
    );
  });

  router.patch('/account/settings', requireAdmin, async (request, response) => {
    const body = validate(accountSettingsBody, request.body, 'body');
    const ceiling = deps.config.MAX_ACCOUNT_CONCURRENCY;
    if (body.concurrent_executions_per_account !== undefined && body.concurrent_executions_per_account > ceiling) {
      throw new HttpError(400, 'invalid request body', {
        issues: [
          {
            path: 'body.concurrent_executions_per_account',
            message: `must be at most ${ceiling} (the operator's MAX_ACCOUNT_CONCURRENCY)`,
          },
        ],
      });
    }
    const account = await deps.db.account.update({
      where: { id: callerOf(request).accountId },
      data: {
        concurrentExecutionsPerAccount: body.concurrent_executions_per_account,
        maxRetryAttempts: body.max_retry_attempts,
        retryBaseDelaySeconds: body.retry_base_delay_seconds,
        errorNotification: body.error_notification,
        adminEmail: body.admin_email,
        defaultTimezone: body.default_timezone,
        frequencyCaps: body.frequency_caps && storedCaps(body.frequency_caps),
      },
    });
    response.json(serializeSettings(account));
  });

  router.get('/api-keys', requireAdmin, async (request, response) => {
    const keys = await deps.db.apiKey.findMany({
      where: { accountId: callerOf(request).accountId },
      orderBy: { createdAt: 'asc' },
    });
    response.json({
      data: keys.map((k) => ({
        id: k.id,
        name: k.name,
        prefix: k.prefix,
        role: k.role,
        user_id: k.userId,
        created_at: k.createdAt.toISOString(),
        revoked_at: k.revokedAt?.toISOString() ?? null,
      })),
    });
  });

  router.post('/api-keys', requireAdmin, async (request, response) => {
    const caller = callerOf(request);
    const body = validate(createApiKeyBody, request.body, 'body');
    const key = issueApiKey();
    const created = await deps.db.apiKey.create({
      data: {
        accountId: caller.accountId,
        userId: caller.userId,
        keyHash: key.hash,
        prefix: key.prefix,
        name: body.name ?? null,
        role: body.role ?? 'admin',
      },
    });
    // The plaintext key is in this response only; the database keeps its hash.
    response
      .status(201)
      .json({ id: created.id, name: created.name, prefix: key.prefix, role: created.role, api_key: key.apiKey });
  });

  router.delete('/api-keys/:id', requireAdmin, async (request, response) => {
    const caller = callerOf(request);
    const revoked = await deps.db.apiKey.updateManyAndReturn({
      where: { id: validate(uuidParam, request.params.id, 'params'), accountId: caller.accountId, revokedAt: null },
      data: { revokedAt: new Date() },
      select: { keyHash: true },
    });
    if (revoked.length === 0) throw notFound('API key');
    // At once here; other API processes stop accepting the key when their cached entry expires.
    for (const key of revoked) callers.forget(key.keyHash);
    response.status(204).end();
  });

  return router;
}
