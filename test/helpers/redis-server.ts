import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createRedis } from '../../src/queue/redis.ts';

/** A TCP port nobody listens on right now. */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });

/**
 * A private Redis server (the real binary, nothing on disk) so a test can restart it or FLUSHALL
 * without touching the shared one.
 */
export async function startPrivateRedis() {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const url = `redis://127.0.0.1:${port}`;

  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    const probe = createRedis({ mode: 'single', url }, { failFast: true });
    probe.on('error', () => undefined);
    for (let attempt = 0; ; attempt += 1) {
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return;
      } catch {
        if (attempt > 100) throw new Error('private redis did not start');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  };
  const stop = async () => {
    const running = child;
    if (!running) return;
    child = null;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill('SIGKILL');
    });
  };
  await start();
  return {
    url,
    /** Kills the server (losing everything, as a restart does) and starts it again on the same port. */
    async restart() {
      await stop();
      await start();
    },
    stop,
  };
}
