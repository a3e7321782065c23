import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UI_CSP, UI_DIST, uiRoutes } from '../../src/api/ui.ts';
import { startHarness, type Harness } from '../helpers/harness.ts';

// `/ui` through the real API: the committed build of ui/, every file from this origin, under a strict CSP.
// The browser test (test/e2e/ui.test.ts) drives the page itself.

describe('/ui', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: false });
  });
  afterAll(() => h?.stop());

  it('answers the page under a CSP allowing only this origin, no inline script or style', async () => {
    const page = await fetch(`${h.baseUrl}/ui`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toBe(UI_CSP);
    expect(UI_CSP).not.toContain('unsafe');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const html = await page.text();
    expect(html).toBe(readFileSync(path.join(UI_DIST, 'index.html'), 'utf8'));
    for (const script of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
      expect(script[1]).toMatch(/\bsrc="\/ui\/assets\//);
      expect(script[2]!.trim()).toBe('');
    }
    expect(html).not.toMatch(/<style\b|\sstyle=/i);
  });

  it('serves every file the page names from ui/dist/assets, cacheable for good', async () => {
    const html = await (await fetch(`${h.baseUrl}/ui`)).text();
    const urls = [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)]
      .map((m) => m[1]!)
      .filter((u) => !u.startsWith('/docs'));
    expect(urls.sort()).toEqual(
      readdirSync(path.join(UI_DIST, 'assets'))
        .map((name) => `/ui/assets/${name}`)
        .sort(),
    );
    for (const url of urls) {
      const response = await fetch(`${h.baseUrl}${url}`);
      expect(response.status, url).toBe(200);
      expect(response.headers.get('content-type')).toMatch(url.endsWith('.js') ? /javascript/ : /^text\/css/);
      expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(Buffer.from(await response.arrayBuffer()).equals(readFileSync(path.join(UI_DIST, url.slice(4))))).toBe(
        true,
      );
    }
  });

  it('answers 404 for a file it does not have and for other methods, as JSON', async () => {
    for (const [method, url] of [
      ['GET', '/ui/assets/nope.js'],
      ['GET', '/ui/assets/../index.html'],
      ['GET', '/ui/assets/%2e%2e%2findex.html'],
      ['POST', '/ui'],
      ['DELETE', `/ui/assets/${readdirSync(path.join(UI_DIST, 'assets'))[0]}`],
    ] as const) {
      const response = await fetch(`${h.baseUrl}${url}`, { method });
      expect(response.status, `${method} ${url}`).toBe(404);
      expect(((await response.json()) as { error: string }).error).toMatch(/^no route for/);
    }
  });

  it('says the page is not built when ui/dist is missing, instead of serving nothing', async () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'flowmachine-ui-empty-'));
    const server = express().use(uiRoutes(empty)).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/ui`);
      expect(response.status).toBe(503);
      expect(await response.text()).toMatch(/not built \(npm run ui:build\)/);
    } finally {
      server.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
