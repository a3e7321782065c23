import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Router, type RequestHandler } from 'express';

/** The built designer's view (`npm run ui:build` writes it from `ui/src`; committed, checked by `npm test`). */
export const UI_DIST = path.resolve(import.meta.dirname, '../../ui/dist');

/**
 * The policy of every `/ui` response: scripts, styles, images and API calls from this origin only;
 * no inline script or style attribute (the page sets styles through the CSSOM, which CSP allows).
 */
export const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const securityHeaders: RequestHandler = (_request, response, next) => {
  response.setHeader('content-security-policy', UI_CSP);
  response.setHeader('x-content-type-options', 'nosniff');
  // The key lives in sessionStorage; no referrer carries a URL of the page elsewhere.
  response.setHeader('referrer-policy', 'no-referrer');
  next();
};

/** Names of the files under `dist/assets` (content-hashed by the build, so they may be cached for good). */
function listAssets(dist: string): ReadonlyMap<string, string> {
  const dir = path.join(dist, 'assets');
  if (!existsSync(dir)) return new Map();
  return new Map(readdirSync(dir).map((name) => [name, path.join(dir, name)] as const));
}

/**
 * `GET /ui`: the designer's view, a single page that calls the API with the key typed into it. Every
 * file comes from `dist` (no CDN), so it works offline; it needs no login of its own, since the page
 * holds nothing until the API answers it.
 */
export function uiRoutes(dist = UI_DIST): Router {
  const router = Router();
  const indexFile = path.join(dist, 'index.html');
  const page = existsSync(indexFile) ? readFileSync(indexFile, 'utf8') : null;
  const assets = listAssets(dist);
  router.use('/ui', securityHeaders);
  router.use('/ui/assets', (request, response, next) => {
    const file = assets.get(request.path.slice(1));
    if (!file || (request.method !== 'GET' && request.method !== 'HEAD')) return next();
    response.sendFile(file, { maxAge: '365d', immutable: true }, (error) => {
      if (error && !response.headersSent) next(error);
    });
  });
  router.get('/ui', (_request, response) => {
    if (page === null)
      return void response.status(503).type('text').send('the designer view is not built (npm run ui:build)');
    response.setHeader('cache-control', 'no-cache');
    response.type('html').send(page);
  });
  return router;
}
