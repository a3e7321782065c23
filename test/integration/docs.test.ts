import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.ts';

// `/docs` through the real API: Swagger UI from swagger-ui-dist, every file from this origin, under a strict CSP.

const packageFile = (name: string) => createRequire(import.meta.url).resolve(`swagger-ui-dist/${name}`);
const CONTENT_TYPES: Record<string, RegExp> = {
  js: /^(text|application)\/javascript\b/,
  css: /^text\/css\b/,
  png: /^image\/png$/,
};

/** The values of every `src`/`href` attribute of the page, in order. */
const urlsOf = (html: string) => [...html.matchAll(/\b(?:src|href)\s*=\s*["']?([^"'\s>]+)/gi)].map((m) => m[1]!);

describe('/docs', () => {
  let h: Harness;
  let html: string;
  let page: Response;

  beforeAll(async () => {
    h = await startHarness({ worker: false });
    page = await fetch(`${h.baseUrl}/docs`);
    html = await page.text();
  });
  afterAll(() => h?.stop());

  it('answers HTML under a CSP that allows only this origin and no inline script', () => {
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(html).toMatch(/^<!doctype html>/i);
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const csp = Object.fromEntries(
      page.headers
        .get('content-security-policy')!
        .split(';')
        .map((d) => {
          const [name, ...values] = d.trim().split(/\s+/);
          return [name!, values.join(' ')];
        }),
    );
    expect(csp).toMatchObject({
      'default-src': "'self'",
      'script-src': "'self'",
      'style-src': "'self' 'unsafe-inline'",
      'img-src': "'self' data:",
      'connect-src': "'self'",
      'frame-ancestors': "'none'",
    });
    // Every script is a file: nothing inline for the policy to have to allow.
    for (const script of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
      expect(script[1]).toMatch(/\bsrc=/);
      expect(script[2]!.trim()).toBe('');
    }
  });

  it('names only same-origin URLs, each answering 200 with its content type, the files of swagger-ui-dist', async () => {
    const urls = urlsOf(html);
    expect(urls).toEqual(
      expect.arrayContaining([
        '/docs/assets/swagger-ui-bundle.js',
        '/docs/assets/swagger-ui.css',
        '/docs/assets/init.js',
      ]),
    );
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/@import|url\(/i);
    for (const url of urls) {
      expect(url, url).toMatch(/^\/(?!\/)/);
      const response = await fetch(`${h.baseUrl}${url}`);
      expect(response.status, url).toBe(200);
      const extension = url.split('.').pop()!;
      if (CONTENT_TYPES[extension]) expect(response.headers.get('content-type'), url).toMatch(CONTENT_TYPES[extension]);
      if (url.startsWith('/docs/assets/')) expect(response.headers.get('x-content-type-options'), url).toBe('nosniff');
      const body = Buffer.from(await response.arrayBuffer());
      const name = url.replace('/docs/assets/', '');
      if (name !== url && name !== 'init.js') expect(body.equals(readFileSync(packageFile(name))), url).toBe(true);
    }
  });

  it('loads nothing from elsewhere: the stylesheet has no remote URL or font, the init script asks only for /openapi.json', async () => {
    const css = await (await fetch(`${h.baseUrl}/docs/assets/swagger-ui.css`)).text();
    expect(css).not.toMatch(/@import|@font-face/i);
    for (const [, url] of css.matchAll(/url\(\s*["']?([^"')]+)/gi)) expect(url).toMatch(/^data:/);

    const init = await fetch(`${h.baseUrl}/docs/assets/init.js`);
    const script = await init.text();
    expect(script).toMatch(/\burl:\s*'\/openapi\.json'/);
    expect(script).toMatch(/\bvalidatorUrl:\s*null\b/);
    expect(script).not.toMatch(/https?:\/\//);
    const document = await fetch(`${h.baseUrl}/openapi.json`);
    expect(document.status).toBe(200);
    expect(((await document.json()) as { openapi: string }).openapi).toMatch(/^3\.1\./);
  });

  it('answers 404 for any other asset, a file of the package not listed included', async () => {
    for (const path of [
      '/docs/assets/nope.js',
      '/docs/assets/index.html',
      '/docs/assets/swagger-initializer.js',
      '/docs/assets/package.json',
      '/docs/assets/..%2Fpackage.json',
      '/docs/assets/',
    ]) {
      const response = await fetch(`${h.baseUrl}${path}`);
      expect(response.status, path).toBe(404);
      expect(((await response.json()) as { error: string }).error, path).toMatch(/^no route for/);
    }
    expect((await fetch(`${h.baseUrl}/docs/assets/init.js`, { method: 'POST' })).status).toBe(404);
  });
});
