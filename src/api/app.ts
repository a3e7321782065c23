import { randomUUID, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { authenticate, CallerCache } from './auth.ts';
import type { ApiDeps } from './context.ts';
import { HttpError } from './http-error.ts';
import { accountRoutes } from './routes/account.ts';
import { contactRoutes } from './routes/contacts.ts';
import { executionRoutes } from './routes/executions.ts';
import { statsRoutes } from './routes/stats.ts';
import { workflowRoutes } from './routes/workflows.ts';
import { docsRoutes } from './docs.ts';
import { uiRoutes } from './ui.ts';
import { ApiRateLimits } from './rate-limit.ts';
import { sanitizeBody } from './sanitize-body.ts';
import { coerceError } from '../errors.ts';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,100}$/;

/** The operations endpoints alone (`/health`, `/metrics`), served by worker-only processes. */
export function createOpsApp(deps: ApiDeps): express.Express {
  const app = express();
  app.use(securityHeaders());
  addOpsRoutes(app, deps);
  return app;
}

function addOpsRoutes(app: express.Express, deps: ApiDeps) {
  app.get('/health', async (_request, response) => {
    const checks = await deps.health();
    const ok = checks.postgres && checks.redis;
    response.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', ...checks });
  });
  app.get('/metrics', async (request, response) => {
    const token = deps.config.METRICS_TOKEN;
    if (token && !safeEqual(request.headers.authorization ?? '', `Bearer ${token}`)) {
      return void response.status(401).json({ error: 'metrics need Authorization: Bearer <METRICS_TOKEN>' });
    }
    response.setHeader('content-type', deps.metrics.registry.contentType);
    response.send(await deps.metrics.registry.metrics());
  });
}

/** Builds the Express app: operations endpoints, then `/api/v1` behind API-key authentication. */
export function createApp(deps: ApiDeps): express.Express {
  const app = express();
  app.use(securityHeaders());
  app.set('query parser', 'simple');

  // Request id: taken from the caller when sane, else made; echoed and logged.
  app.use((request, response, next) => {
    const incoming = request.header('x-request-id');
    const id = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    (request as Request & { id: string }).id = id;
    response.setHeader('x-request-id', id);
    const started = performance.now();
    response.on('finish', () => {
      const route = request.route ? `${request.baseUrl}${request.route.path}` : 'unmatched';
      const seconds = (performance.now() - started) / 1000;
      deps.metrics.httpDuration.observe(
        { method: request.method, route, status: String(response.statusCode) },
        seconds,
      );
      deps.logger.log(response.statusCode >= 500 ? 'error' : 'http', 'request', {
        request_id: id,
        method: request.method,
        route,
        status: response.statusCode,
        duration_ms: Math.round(seconds * 1000),
      });
    });
    next();
  });

  addOpsRoutes(app, deps);
  app.use(docsRoutes());
  app.use(uiRoutes());

  const api = express.Router();
  const callers = new CallerCache();
  const limits = new ApiRateLimits(deps.redis, deps.config.QUEUE_PREFIX, deps.config.API_RATE_LIMIT, deps.logger);
  api.use(authenticate(deps, callers, limits));
  api.use((request, _response, next) => {
    const hasBody =
      (request.headers['content-length'] !== undefined && request.headers['content-length'] !== '0') ||
      request.headers['transfer-encoding'] !== undefined;
    if (hasBody && !request.is('application/json')) throw new HttpError(415, 'request body must be application/json');
    next();
  });
  api.use(express.json({ limit: deps.config.BODY_LIMIT, strict: true }), sanitizeBody);
  api.use(
    contactRoutes(deps),
    workflowRoutes(deps),
    statsRoutes(deps),
    executionRoutes(deps),
    accountRoutes(deps, callers),
  );
  app.use('/api/v1', api);

  app.use((request) => {
    throw new HttpError(404, `no route for ${request.method} ${request.path}`);
  });
  app.use((error: unknown, request: Request, response: Response, _next: NextFunction) => {
    const { status, body, headers } = toErrorResponse(error);
    if (headers) response.set(headers);
    if (status >= 500)
      deps.logger.error('request failed', {
        request_id: (request as Request & { id?: string }).id,
        error: coerceError(error).message,
      });
    response.status(status).json({ ...body, request_id: (request as Request & { id?: string }).id });
  });
  return app;
}

/** Maps anything thrown to a status and the contract's error body; never leaks stacks or SQL. */
function toErrorResponse(error: unknown): {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
} {
  if (error instanceof HttpError)
    return { status: error.status, body: { error: error.message, ...error.details }, headers: error.headers };
  if (error instanceof URIError) return { status: 400, body: { error: 'malformed URL encoding' } };
  const e = error as { type?: string; status?: number; expose?: boolean; message?: string };
  if (e?.type === 'entity.parse.failed') return { status: 400, body: { error: 'request body is not valid JSON' } };
  if (e?.type === 'entity.too.large') return { status: 413, body: { error: 'request body is too large' } };
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported')
    return { status: 415, body: { error: 'unsupported request encoding' } };
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500 && e.expose)
    return { status: e.status, body: { error: e.message ?? 'bad request' } };
  return { status: 500, body: { error: 'internal error' } };
}

/**
 * The usual security headers (helmet) on every response, no `X-Powered-By`. The JSON API's policy
 * allows nothing to load; HTML pages set their own (`/docs`, `/ui`).
 */
function securityHeaders() {
  return helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
}

/** Compares two strings in time independent of where they differ. */
function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
