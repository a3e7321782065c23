import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const BIN = path.resolve(import.meta.dirname, '../../bin/flowmachine.mjs');

/** A flowmachine process started the way users start it (`flowmachine worker`, `api`, …). */
export interface EngineProcess {
  child: ChildProcess;
  output: string[];
  /** Resolves when the process exits. */
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
}

/** Starts `flowmachine <role>` with `env`, resolving once it logs that it started. */
export async function startProcess(
  role: 'worker' | 'api' | 'start',
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<EngineProcess> {
  const child = spawn(process.execPath, [BIN, role], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${role} did not start within ${timeoutMs} ms:\n${output.join('')}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString());
      if (chunk.toString().includes('"message":"started"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${role} exited with ${code} before starting:\n${output.join('')}`));
    });
  });
  return { child, output, exited, kill: (signal = 'SIGKILL') => void child.kill(signal) };
}
