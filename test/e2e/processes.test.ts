import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sequential } from '../fixtures/workflows.ts';
import { adminQuery, databaseUrl } from '../helpers/database.ts';
import { startFakeProvider, type FakeProvider } from '../helpers/fake-provider.ts';
import { startProcess, type EngineProcess } from '../helpers/processes.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/flowmachine.mjs');
const cli = (args: string[], env: Record<string, string>) =>
  spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });

// The processes as users run them: `flowmachine start` on an empty database, `accounts create`,
// separate `api` and `worker` processes, and clear failures when Postgres or Redis is unreachable.
describe('processes', () => {
  const name = `fm_test_${Date.now()}_${randomBytes(4).toString('hex')}`;
  let provider: FakeProvider;
  let env: Record<string, string>;
  const running: EngineProcess[] = [];

  beforeAll(async () => {
    provider = await startFakeProvider();
    env = {
      DATABASE_URL: databaseUrl(name),
      QUEUE_PREFIX: `fmtest-${name}`,
      EMAIL_HTTP_URL: provider.emailUrl,
      SMS_HTTP_URL: provider.smsUrl,
      LOG_LEVEL: 'info',
    };
  });
  afterAll(async () => {
    for (const process of running) process.kill('SIGKILL');
    await Promise.all(running.map((p) => p.exited));
    await provider.close();
    await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });

  it('start creates and migrates the database, serves the API and runs a worker; SIGTERM exits cleanly', async () => {
    const engine = await startProcess('start', { ...env, PORT: '0' });
    running.push(engine);
    const port = Number(/"port":(\d+)/.exec(engine.output.join(''))![1]);
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(await health.json()).toEqual({ status: 'ok', postgres: true, redis: true });

    const created = cli(['accounts', 'create', '--name', 'Acme', '--admin-email', 'ops@example.com'], env);
    expect(created.status).toBe(0);
    const account = JSON.parse(created.stdout.trim());
    expect(Object.keys(account).sort()).toEqual(['account_id', 'api_key', 'user_id']);

    const call = async (method: string, route: string, body?: unknown) => {
      const response = await fetch(`http://127.0.0.1:${port}/api/v1${route}`, {
        method,
        headers: { authorization: `Bearer ${account.api_key}`, 'content-type': 'application/json' },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: response.status, body: (await response.json()) as any };
    };
    const contact = await call('POST', '/contacts', {
      email: 'john@example.com',
      phone: '+15551234567',
      opted_in: true,
    });
    const workflow = await call('POST', '/workflows', {
      name: 'Welcome Sequence',
      status: 'active',
      definition: sequential,
    });
    const trigger = await call('POST', `/workflows/${workflow.body.id}/trigger`, { contact_id: contact.body.id });
    expect(trigger.status).toBe(202);
    const deadline = Date.now() + 20_000;
    let execution = await call('GET', `/executions/${trigger.body.execution_id}`);
    while (execution.body.status !== 'COMPLETED' && Date.now() < deadline)
      execution = await call('GET', `/executions/${trigger.body.execution_id}`);
    expect(execution.body.status).toBe('COMPLETED');

    engine.kill('SIGTERM');
    expect(await engine.exited).toBe(0);
  }, 240_000);

  it('api and worker run as separate processes, several workers at once', async () => {
    const migrated = cli(['migrate'], env);
    expect(migrated.status).toBe(0);
    expect(JSON.parse(migrated.stdout.trim())).toEqual({ migrations: [], baselined: [], functions: [] });
    const account = JSON.parse(
      cli(['accounts', 'create', '--name', 'Split', '--admin-email', 'ops@example.com'], env).stdout.trim(),
    );
    const api = await startProcess('api', { ...env, PORT: '0' });
    const workers = [await startProcess('worker', env), await startProcess('worker', env)];
    running.push(api, ...workers);
    const port = Number(/"port":(\d+)/.exec(api.output.join(''))![1]);
    const call = async (method: string, route: string, body?: unknown) => {
      const response = await fetch(`http://127.0.0.1:${port}/api/v1${route}`, {
        method,
        headers: { authorization: `Bearer ${account.api_key}`, 'content-type': 'application/json' },
        body: body ? JSON.stringify(body) : undefined,
      });
      return (await response.json()) as any;
    };
    const workflow = await call('POST', '/workflows', { name: 'Split', status: 'active', definition: sequential });
    const ids: string[] = [];
    for (let i = 0; i < 20; i += 1) {
      const contact = await call('POST', '/contacts', {
        email: `c${i}@example.com`,
        phone: '+15551234567',
        opted_in: true,
      });
      ids.push((await call('POST', `/workflows/${workflow.id}/trigger`, { contact_id: contact.id })).execution_id);
    }
    for (const id of ids) {
      const deadline = Date.now() + 20_000;
      let execution = await call('GET', `/executions/${id}`);
      while (execution.status !== 'COMPLETED' && Date.now() < deadline)
        execution = await call('GET', `/executions/${id}`);
      expect(execution.status).toBe('COMPLETED');
    }
    for (const process of [api, ...workers]) process.kill('SIGTERM');
    expect(await Promise.all([api, ...workers].map((p) => p.exited))).toEqual([0, 0, 0]);
  }, 240_000);

  it('an unreachable database or Redis gives one clear line and exit code 1', () => {
    for (const [variables, pattern] of [
      [{ DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/nowhere' }, /^flowmachine: cannot reach Postgres/],
      [{ REDIS_URL: 'redis://127.0.0.1:1' }, /^flowmachine: cannot reach Redis/],
      [
        { REDIS_URL: 'redis+cluster://127.0.0.1:1' },
        /^flowmachine: cannot reach Redis at redis\+cluster:\/\/127\.0\.0\.1:1: /,
      ],
      [
        { REDIS_URL: '', REDIS_CLUSTER_NODES: '127.0.0.1' },
        /^flowmachine: invalid configuration: REDIS_CLUSTER_NODES: /,
      ],
      [{ DATABASE_URL: 'not a url' }, /^flowmachine: invalid configuration: DATABASE_URL/],
      [
        { LOG_RETENTION_DAYS: 'abc' },
        /^flowmachine: invalid configuration: LOG_RETENTION_DAYS: must be a whole number/,
      ],
      [
        { LOG_RETENTION_DAYS: '-3' },
        /^flowmachine: invalid configuration: LOG_RETENTION_DAYS: must be 0 \(keep forever\)/,
      ],
    ] as const) {
      const result = cli(['worker'], { ...env, ...variables });
      expect(result.status).toBe(1);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(pattern);
    }
    const usage = cli(['accounts', 'create', '--name', 'x'], env);
    expect(usage.status).toBe(1);
    expect(usage.stderr).toMatch(/usage: flowmachine accounts create/);
  }, 240_000);
});
