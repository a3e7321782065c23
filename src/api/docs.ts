import { Router } from 'express';
import { buildOpenApiDocument } from './openapi.ts';

/** `/openapi.json` and a self-contained `/docs` page (no CDN: the page renders the document itself). */
export function docsRoutes(): Router {
  const router = Router();
  const document = buildOpenApiDocument();
  router.get('/openapi.json', (_request, response) => void response.json(document));
  router.get('/docs', (_request, response) => {
    response.type('html').send(renderDocsPage(document));
  });
  return router;
}

const escape = (text: string) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function renderDocsPage(document: ReturnType<typeof buildOpenApiDocument>): string {
  const sections = Object.entries(document.paths)
    .map(([path, methods]) =>
      Object.entries(methods as Record<string, { summary?: string; responses?: Record<string, { description?: string }>; requestBody?: unknown }>)
        .map(([method, op]) => `<section><h3><code>${method.toUpperCase()} ${escape(path)}</code></h3><p>${escape(op.summary ?? '')}</p>
<ul>${Object.entries(op.responses ?? {}).map(([code, r]) => `<li><b>${code}</b> ${escape(r.description ?? '')}</li>`).join('')}</ul>
${op.requestBody ? `<details><summary>request body schema</summary><pre>${escape(JSON.stringify(op.requestBody, null, 2))}</pre></details>` : ''}</section>`)
        .join(''),
    )
    .join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(document.info.title)} API</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}section{border-top:1px solid #ddd;padding:.5rem 0}pre{background:#f6f6f6;padding:.5rem;overflow:auto}</style></head>
<body><h1>${escape(document.info.title)} API ${escape(document.info.version)}</h1><p>${escape(document.info.description ?? '')}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${document.openapi}).</p>${sections}</body></html>`;
}
