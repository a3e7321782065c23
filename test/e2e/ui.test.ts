import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, databaseUrl } from '../helpers/database.ts';
import { launchBrowser, type Browser } from '../helpers/browser.ts';
import { startFakeProvider, type FakeProvider } from '../helpers/fake-provider.ts';
import { startProcess, type EngineProcess } from '../helpers/processes.ts';

// The designer's view in a real browser (headless Chromium) against `flowmachine start` (API and
// worker), Postgres and Redis, as a designer uses it: sign in, open a workflow, watch the counts move,
// open an execution and cancel it. Nothing may load from outside 127.0.0.1, and the page's CSP must
// never refuse anything it does. With UI_SCREENSHOTS=1 (`npm run ui:screenshots`) each view is saved
// under docs/screenshots/.

const BIN = path.resolve(import.meta.dirname, '../../bin/flowmachine.mjs');
const SCREENSHOTS =
  process.env.UI_SCREENSHOTS === '1' ? path.resolve(import.meta.dirname, '../../docs/screenshots') : null;
const WAIT_MS = 20_000;

const journey = {
  goal: { event: 'appointment_booked' },
  steps: [
    { id: 'welcome', type: 'send_email', config: { subject: 'Welcome aboard', body: 'Hi {{first_name}}' } },
    { id: 'tag', type: 'add_tag', config: { tag: 'welcomed' } },
    { id: 'pause', type: 'wait', config: { duration: '2 days' } },
    {
      id: 'vip',
      type: 'condition',
      config: { has_tag: 'VIP' },
      branches: {
        true: [{ id: 'vip_sms', type: 'send_sms', config: { body: 'Book your VIP call' } }],
        false: [{ id: 'nudge', type: 'send_email', config: { subject: 'Still there?', body: 'Book a call' } }],
      },
    },
    { id: 'nurtured', type: 'add_tag', config: { tag: 'nurtured' } },
  ],
};

type Transition = string | { target: string } | { target: string }[];
interface Machine {
  states: Record<string, { on?: Record<string, Transition> }>;
}

/** Distinct source→target pairs of the machine's states: the edges the page must draw. */
function edgesOf(machine: Machine): string[] {
  const pairs = new Set<string>();
  for (const [source, state] of Object.entries(machine.states))
    for (const transition of Object.values(state.on ?? {}))
      for (const t of Array.isArray(transition) ? transition : [transition])
        pairs.add(`${source}->${typeof t === 'string' ? t : t.target}`);
  return [...pairs].sort();
}

describe("the designer's view in a browser", () => {
  const name = `fm_test_${Date.now()}_${randomBytes(4).toString('hex')}`;
  let provider: FakeProvider;
  let engine: EngineProcess;
  let browser: Browser;
  let page: Page;
  let base: string;
  let apiKey: string;
  let userId: string;
  let workflowId: string;
  let machine: Machine;
  const executions: string[] = [];

  const call = async (method: string, route: string, body?: unknown) => {
    const response = await fetch(`${base}/api/v1${route}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as any };
  };
  const shoot = async (file: string) => {
    if (SCREENSHOTS) await page.screenshot({ path: path.join(SCREENSHOTS, file), fullPage: true });
  };
  /** Waits for a value the page shows to settle (the page polls the API every few seconds). */
  const eventually = <T>(read: () => Promise<T>) => expect.poll(read, { timeout: WAIT_MS, interval: 100 });
  /** Errors of the page other than the API's refusals the test provokes (a wrong key, a 409). */
  const unexpectedErrors = () => browser.errors.filter((e) => !/status of 40[19]/.test(e));

  beforeAll(async () => {
    if (SCREENSHOTS) mkdirSync(SCREENSHOTS, { recursive: true });
    provider = await startFakeProvider();
    const env = {
      DATABASE_URL: databaseUrl(name),
      QUEUE_PREFIX: `fmtest-${name}`,
      EMAIL_HTTP_URL: provider.emailUrl,
      SMS_HTTP_URL: provider.smsUrl,
      JAEGER_UI_URL: 'http://127.0.0.1:16686',
      // Traces go to the fake provider (it answers 200 to anything), so executions carry a trace id.
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${provider.url}/v1/traces`,
      LOG_LEVEL: 'warn',
    };
    engine = await startProcess('start', { ...env, PORT: '0', LOG_LEVEL: 'info' });
    base = `http://127.0.0.1:${/"port":(\d+)/.exec(engine.output.join(''))![1]}`;
    const created = spawnSync(
      process.execPath,
      [BIN, 'accounts', 'create', '--name', 'Acme', '--admin-email', 'ops@example.com'],
      { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 },
    );
    expect(created.status, created.stderr).toBe(0);
    ({ api_key: apiKey, user_id: userId } = JSON.parse(created.stdout.trim()));
    workflowId = (await call('POST', '/workflows', { name: 'Welcome journey', status: 'active', definition: journey }))
      .body.id;
    await call('POST', '/workflows', {
      name: 'Winback',
      status: 'paused',
      definition: { steps: journey.steps.slice(0, 2) },
    });
    machine = (await call('GET', `/workflows/${workflowId}/machine`)).body;
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.setDefaultTimeout(WAIT_MS);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    engine?.kill('SIGKILL');
    await engine?.exited;
    await provider?.close();
    await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });

  it('serves the page under its own CSP, every file from this origin', async () => {
    const response = await page.goto(`${base}/ui`);
    expect(response?.status()).toBe(200);
    const csp = response?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe');
    await page.locator('[data-api-key]').waitFor();
    await shoot('ui-sign-in.png');
  });

  it("refuses a wrong key with the API's 401 message, then signs in with the right one", async () => {
    await page.fill('[data-api-key]', 'fm_not-a-real-key');
    await page.click('[data-sign-in]');
    await eventually(() => page.locator('[data-sign-in-error]').textContent()).toBe('invalid or revoked API key');
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.length)).toBe(0);

    await page.fill('[data-api-key]', apiKey);
    await page.click('[data-sign-in]');
    await page.locator(`[data-workflow="${workflowId}"]`).waitFor();
    expect(await page.evaluate(() => Object.values((globalThis as any).sessionStorage))).toEqual([apiKey]);
    // The key travels only in the Authorization header: in no URL the page asked for.
    expect(browser.requested.filter((url) => url.includes(apiKey))).toEqual([]);
    expect(await page.locator('[data-workflow]').count()).toBe(2);
    await shoot('ui-workflows.png');
  });

  it('activates and pauses a workflow from the list', async () => {
    const row = page.locator('[data-workflow]', { hasText: 'Winback' });
    await row.locator('[data-activate]').click();
    await eventually(() => row.locator('[data-workflow-status]').textContent()).toBe('active');
    await row.locator('[data-pause]').click();
    await eventually(() => row.locator('[data-workflow-status]').textContent()).toBe('paused');
  });

  it('draws the compiled machine: one node per state, one edge per source and target, labelled by event', async () => {
    await page.click(`[data-workflow="${workflowId}"] a`);
    await page.locator('svg.graph [data-node]').first().waitFor();
    const nodes = await page
      .locator('svg.graph [data-node]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-node')));
    expect(nodes.sort()).toEqual(Object.keys(machine.states).sort());
    const edges = await page
      .locator('svg.graph [data-edge]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-edge')));
    expect(edges.sort()).toEqual(edgesOf(machine));
    const labels = await page.locator('svg.graph .edge-label').allTextContents();
    expect(labels).toEqual(
      expect.arrayContaining(['STEP_DONE', 'TIMER_FIRED', 'CONDITION_RESULT true', 'CONDITION_RESULT false', 'RETRY']),
    );
    expect(await page.locator('[data-node="pause"] .node-summary').textContent()).toBe('2 days');
    // The validation figures of the version shown, as POST /workflows/validate gives them.
    const { figures } = (await call('POST', '/workflows/validate', { definition: journey })).body;
    expect(await page.locator('[data-figures]').textContent()).toBe(
      `${figures.paths} paths · at most ${figures.max_messages_per_path} messages per path · longest wait 2 days`,
    );
  });

  it('shows the counts change as executions arrive', async () => {
    const at = (step: string) => page.locator(`[data-node="${step}"]`).getAttribute('data-at-step');
    expect(await at('pause')).toBe('0');
    for (let i = 0; i < 3; i += 1) {
      const contact = await call('POST', '/contacts', { email: `c${i}@example.com`, opted_in: true });
      executions.push(
        (await call('POST', `/workflows/${workflowId}/trigger`, { contact_id: contact.body.id })).body.execution_id,
      );
    }
    // The worker runs welcome and tag, then each waits at pause; the page reads the stats every few seconds.
    await eventually(() => at('pause')).toBe('3');
    expect(await page.locator('[data-node="welcome"]').getAttribute('data-entered')).toBe('3');
    expect(await page.locator('[data-status-count="PAUSED"]').textContent()).toBe('3');
    await shoot('ui-workflow.png');
  });

  it('lists the executions at a step, filtered by status, and opens one', async () => {
    await page.click('[data-node="pause"]');
    const panel = page.locator('[data-executions-at="pause"]');
    await eventually(() => panel.locator('[data-execution]').count()).toBe(3);
    await panel.locator('[data-status-filter]').selectOption('PAUSED');
    await eventually(() => panel.locator('[data-execution]').count()).toBe(3);
    await shoot('ui-executions-at-step.png');
    // Cancel one from its own page first; the bulk operation then takes the other two.
    await panel.locator(`[data-execution="${executions[0]}"] a`).click();
    await page.locator('[data-timeline] li').first().waitFor();
  });

  it('shows one execution: its path on the graph, where it is now, its timeline; cancels it', async () => {
    await eventually(() => page.locator('[data-execution-status]').textContent()).toBe('PAUSED');
    // The path is marked once the graph and the log are both in.
    await eventually(() => page.locator('[data-node="pause"]').getAttribute('class')).toContain('current');
    for (const step of ['welcome', 'tag'])
      expect(await page.locator(`[data-node="${step}"]`).getAttribute('class')).toContain('visited');
    expect(await page.locator('[data-edge="welcome->tag"]').getAttribute('class')).toContain('taken');
    expect(await page.locator('[data-edge="vip->vip_sms"]').getAttribute('class')).not.toContain('taken');
    const events = await page
      .locator('[data-timeline] li')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-event')));
    expect(events).toEqual(expect.arrayContaining(['execution_started', 'action_completed', 'wait_started']));
    expect(await page.locator('[data-next-run]').textContent()).not.toBe('—');
    const { trace_id } = (await call('GET', `/executions/${executions[0]}`)).body;
    expect(trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(await page.locator('[data-trace-link]').getAttribute('href')).toBe(
      `http://127.0.0.1:16686/trace/${trace_id}`,
    );
    await shoot('ui-execution.png');

    await page.click('[data-cancel]');
    await eventually(() => page.locator('[data-execution-status]').textContent()).toBe('CANCELLED');
    const cancelled = await call('GET', `/executions/${executions[0]}`);
    expect(cancelled.body.status).toBe('CANCELLED');
    const logs = await call('GET', `/executions/${executions[0]}/logs?limit=100`);
    expect(logs.body.data.find((l: { event_type: string }) => l.event_type === 'execution_cancelled')?.user_id).toBe(
      userId,
    );
    expect(await page.locator('[data-cancel]').count()).toBe(0);
  });

  it('cancels the rest at the step in bulk, showing the dry-run count before confirming', async () => {
    await page.goto(`${base}/ui#/workflows/${workflowId}`);
    await page.click('[data-node="pause"]');
    await page.click('[data-bulk="cancel"]');
    await eventually(() => page.locator('[data-dry-run-count]').textContent()).toBe('2');
    // Nothing changed by the dry run.
    expect((await call('GET', `/workflows/${workflowId}/stats`)).body.executions.PAUSED).toBe(2);
    await page.click('[data-confirm-button]');
    await eventually(() => page.locator('.panel .notice').textContent()).toBe('Cancelled 2 of 2.');
    expect((await call('GET', `/workflows/${workflowId}/stats`)).body.executions).toMatchObject({
      PAUSED: 0,
      CANCELLED: 3,
    });
    await expect.poll(() => page.locator('[data-node="pause"]').getAttribute('data-at-step')).toBe('0');
  });

  it('gives the createMachine code of machines/*.machine.ts for Stately', async () => {
    await page.click('[data-copy-stately]');
    const source = await page.locator('[data-stately-source]').inputValue();
    expect(source).toMatch(/^import \{ createMachine \} from 'xstate';\n\nexport const machine = createMachine\(\{\n/);
    expect(source).toContain(`id: 'workflow-${workflowId}'`);
  });

  it('loaded nothing from outside and broke no rule of its CSP', () => {
    expect(browser.outside).toEqual([]);
    expect(unexpectedErrors()).toEqual([]);
  });
});
