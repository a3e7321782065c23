import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it when missing). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Switches that keep Chromium from calling home: no background fetches, updates, sync or first-run pages. */
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-default-apps',
  '--disable-dev-shm-usage',
];

/** A headless Chromium with a fresh profile, and what the page tried that it must not. */
export interface Browser {
  context: BrowserContext;
  /** Requests the page made to anywhere but 127.0.0.1 (each was refused). */
  outside: string[];
  /** Console errors and uncaught exceptions of the page (a CSP violation shows up here). */
  errors: string[];
  /** Every URL the page requested. */
  requested: string[];
  close(): Promise<void>;
}

/**
 * Launches headless Chromium on a new `--user-data-dir`. Every request to a host other than
 * 127.0.0.1 is aborted and recorded, so a test can assert the page loads nothing from outside.
 */
export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(path.join(tmpdir(), 'flowmachine-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1400, height: 900 },
    locale: 'en-GB',
    timezoneId: 'UTC',
    colorScheme: 'light',
  });
  const outside: string[] = [];
  const errors: string[] = [];
  const requested: string[] = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    requested.push(url.href);
    if (url.protocol === 'data:' || url.hostname === '127.0.0.1') return route.continue();
    outside.push(url.href);
    return route.abort('blockedbyclient');
  });
  const watch = (page: Page) => {
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(error.message));
  };
  context.pages().forEach(watch);
  context.on('page', watch);
  return {
    context,
    outside,
    errors,
    requested,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
