import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';

export interface AzuriteProcess {
  readonly blobPort: number;
  readonly tablePort: number;
  /** The queue service (event publishing's default sink locally). */
  readonly queuePort: number;
  /** SIGTERM, then SIGKILL after `graceMs` (default 1 s); resolves when Azurite has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** A free loopback port (bound and released; Azurite takes it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (child.exitCode !== null) {
        reject(new Error(`Azurite exited with code ${child.exitCode} before listening on ${port}.`));
        return;
      }
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`Azurite did not listen on port ${port} within ${timeoutMs} ms.`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

/**
 * Starts Azurite's Blob, Table and Queue services on loopback with data under `location`.
 * `--skipApiVersionCheck` because the SDKs send API versions newer than Azurite knows.
 */
export async function startAzurite(options: {
  location: string;
  blobPort?: number;
  tablePort?: number;
  quiet?: boolean;
  /** Keep data in memory only: no periodic save of the whole database to disk (benchmarks). */
  inMemory?: boolean;
  /** Node options before Azurite's script (e.g. a profiling `--require`), and variables added to its environment. */
  nodeArgs?: readonly string[];
  env?: Readonly<Record<string, string>>;
}): Promise<AzuriteProcess> {
  mkdirSync(options.location, { recursive: true });
  const blobPort = options.blobPort ?? (await freePort());
  const tablePort = options.tablePort ?? (await freePort());
  const queuePort = await freePort();
  const require = createRequire(import.meta.url);
  const cli = join(require.resolve('azurite/package.json'), '..', 'dist', 'src', 'azurite.js');
  // Fixes for LokiJS paths that slow Azurite down as the data grows (see the file); absent from
  // a compiled copy that did not bring it along, then Azurite runs as published.
  const preload = join(import.meta.dirname, 'azurite-preload.cjs');
  const child = spawn(
    process.execPath,
    [
      ...(existsSync(preload) ? ['--require', preload] : []),
      ...(options.nodeArgs ?? []),
      cli,
      '--silent',
      '--skipApiVersionCheck',
      '--loose',
      // Azurite sends usage telemetry to Application Insights unless told not to: nothing of a
      // local archive leaves the machine, and its per-request tracing is CPU on every request.
      '--disableTelemetry',
      // Azurite refuses --location together with --inMemoryPersistence.
      ...(options.inMemory ? ['--inMemoryPersistence'] : ['--location', options.location]),
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(blobPort),
      '--tableHost',
      '127.0.0.1',
      '--tablePort',
      String(tablePort),
      '--queueHost',
      '127.0.0.1',
      '--queuePort',
      String(queuePort),
    ],
    { stdio: options.quiet === false ? 'inherit' : 'ignore', env: { ...process.env, ...options.env } },
  );
  try {
    await Promise.all([blobPort, tablePort, queuePort].map((port) => waitForPort(port, child, 30_000)));
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  // A parent that exits without stop() (process.exit, an uncaught error) must not leave Azurite
  // behind: exit handlers cannot wait, so it is killed outright.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  return { blobPort, tablePort, queuePort, stop: (graceMs = STOP_GRACE_MS) => stopChild(child, graceMs) };
}

/** How long Azurite gets to exit on SIGTERM before it is killed. */
const STOP_GRACE_MS = 1000;

/**
 * SIGTERM, up to a second's grace, then SIGKILL; resolves once the process has exited. Azurite
 * ignores SIGTERM while clients still hold keep-alive sockets, so the kill is the usual end; the
 * timer is awaited rather than unref'd, so a parent that exits right after still takes Azurite.
 */
async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      resolve();
    }),
  );
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<'timeout'>(
    (resolve) =>
      (timer = setTimeout(() => {
        resolve('timeout');
      }, graceMs)),
  );
  if ((await Promise.race([exited, graceOver])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
  clearTimeout(timer);
}
