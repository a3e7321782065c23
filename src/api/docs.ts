import { createRequire } from 'node:module';
import path from 'node:path';
import { Router, type RequestHandler } from 'express';
import { buildOpenApiDocument } from './openapi.ts';

const SWAGGER_UI = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** The files of `/docs/assets/`: Swagger UI's bundle and stylesheet (and their source maps) from `swagger-ui-dist`, and our init script. */
const ASSETS: ReadonlyMap<string, string> = new Map([
  ...[
    'swagger-ui-bundle.js',
    'swagger-ui-bundle.js.map',
    'swagger-ui.css',
    'swagger-ui.css.map',
    'favicon-32x32.png',
  ].map((name) => [name, path.join(SWAGGER_UI, name)] as const),
  ['init.js', path.join(import.meta.dirname, 'docs-init.js')],
]);

/** The policy of every `/docs` response: all from this origin; inline styles only, which Swagger UI sets on its elements. */
export const DOCS_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const securityHeaders: RequestHandler = (_request, response, next) => {
  response.setHeader('content-security-policy', DOCS_CSP);
  response.setHeader('x-content-type-options', 'nosniff');
  next();
};

/** Answers `GET`/`HEAD /docs/assets/<name>` for the names of {@link ASSETS}; anything else falls through to the 404. */
const assets: RequestHandler = (request, response, next) => {
  const file = ASSETS.get(request.path.slice(1));
  if (!file || (request.method !== 'GET' && request.method !== 'HEAD')) return next();
  response.sendFile(file, (error) => {
    if (error && !response.headersSent) next(error);
  });
};

/**
 * `/openapi.json` and `/docs`: an interactive reference of that document rendered by Swagger UI
 * (`swagger-ui-dist`), every script, stylesheet and image served from here, so it works offline.
 */
export function docsRoutes(): Router {
  const router = Router();
  const document = buildOpenApiDocument();
  const page = renderDocsPage(document.info.title);
  router.get('/openapi.json', (_request, response) => void response.json(document));
  router.use('/docs', securityHeaders);
  router.use('/docs/assets', assets);
  router.get('/docs', (_request, response) => void response.type('html').send(page));
  return router;
}

function renderDocsPage(title: string): string {
  const name = title.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${name} API reference</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<noscript>The reference needs JavaScript; the document itself is at <a href="/openapi.json">/openapi.json</a>.</noscript>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script>
</body>
</html>
`;
}
