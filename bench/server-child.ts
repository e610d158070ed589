/** Starts bench/server.ts as a child process on the Node that runs the bench, and talks to it. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createInterface } from 'node:readline';
import { MEMORY_PATH, RESET_PEAK_PATH, type MemoryReport, type ServerReady } from './server-protocol.js';

export interface ServerChild {
  readonly baseUrl: string;
  readonly baselineRssBytes: number;
  memory(): Promise<MemoryReport>;
  /** Restarts the peak RSS from the current RSS. */
  resetPeak(): Promise<void>;
  /**
   * The storage operations of the requests answered since the last call, summed from their audit
   * records (the storage meter's counts: docs/storage.md "Operations per request").
   */
  takeStorage(): Promise<StorageTally>;
  stop(): Promise<void>;
}

export interface StorageTally {
  readonly requests: number;
  readonly operations: number;
  readonly byKind: Readonly<Record<string, number>>;
  /** Round trips in sequence, summed over the requests (StorageCounts.inSequence). */
  readonly inSequence: number;
}

/** Sums audit records' storage counts; a record is written just after its response ends. */
class StorageTallies {
  private requests = 0;
  private operations = 0;
  private inSequence = 0;
  private byKind = new Map<string, number>();

  add(line: string): void {
    let record: { type?: unknown; storage?: { operations?: unknown; byKind?: unknown; inSequence?: unknown } };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      return;
    }
    if (record.type !== 'dicomweb.request' || typeof record.storage?.operations !== 'number') return;
    this.requests += 1;
    this.operations += record.storage.operations;
    if (typeof record.storage.inSequence === 'number') this.inSequence += record.storage.inSequence;
    for (const [kind, count] of Object.entries((record.storage.byKind ?? {}) as Record<string, number>)) {
      this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + count);
    }
  }

  async take(): Promise<StorageTally> {
    // The last response's record follows its body's end by a moment.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const tally = {
      requests: this.requests,
      operations: this.operations,
      byKind: Object.fromEntries(this.byKind),
      inSequence: this.inSequence,
    };
    this.requests = 0;
    this.operations = 0;
    this.inSequence = 0;
    this.byKind = new Map();
    return tally;
  }
}

export interface ServerStorage {
  readonly connectionString: string;
  readonly container: string;
  readonly table: string;
}

export const REPO_ROOT = join(import.meta.dirname, '..');
const SERVER_SCRIPT = join(import.meta.dirname, 'server.ts');
/** Where bench/tsconfig.server.json compiles bench/server.ts and the src/ it imports. */
const COMPILED_SCRIPT = join(REPO_ROOT, 'dist', 'bench-server', 'bench', 'server.js');
const SERVER_TSCONFIG = join(import.meta.dirname, 'tsconfig.server.json');

/**
 * How the server child runs: `js` is the compiled server (plain node, as deployed: the RSS is
 * the server's own), `tsx` loads src/ through the tsx loader (no build, ~20–30 MiB more RSS).
 */
export type ServerRuntime = 'js' | 'tsx';

let runtime: ServerRuntime = 'tsx';

/** How bench children run: compiled (`js`, after prepareServer) or under tsx. */
export function benchRuntime(): ServerRuntime {
  return runtime;
}

/**
 * Compiles the server for the `js` runtime (tsc, the build's settings, into dist/bench-server),
 * so every child of this run loads the source as it is now; a type error stops the bench.
 */
export async function prepareServer(chosen: ServerRuntime): Promise<void> {
  runtime = chosen;
  if (chosen === 'tsx') return;
  const tsc = join(createRequire(import.meta.url).resolve('typescript/package.json'), '..', 'bin', 'tsc');
  try {
    await promisify(execFile)(process.execPath, [tsc, '-p', SERVER_TSCONFIG], { cwd: REPO_ROOT });
  } catch (error) {
    const output = (error as { stdout?: string }).stdout ?? String(error);
    throw new Error(`Compiling the bench server failed (BENCH_SERVER=tsx skips the build):\n${output}`, {
      cause: error,
    });
  }
}
const START_TIMEOUT_MS = 60_000;
const running = new Set<ChildProcess>();

/** Last resort for process exit paths that cannot await: no child outlives the bench. */
export function killServerChildren(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** `extraEnv`: bench-only switches read by bench/server.ts (e.g. BENCH_CHANGE_FEED=off). */
export async function startServerChild(
  storage: ServerStorage,
  extraEnv: Record<string, string> = {},
): Promise<ServerChild> {
  // `--import tsx` keeps it one process (the tsx CLI would add a wrapper process around it).
  // BENCH_SERVER_NODE_ARGS: extra Node flags for the server child, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
  const nodeArgs = (process.env['BENCH_SERVER_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
  const args = [...nodeArgs, ...(runtime === 'js' ? [COMPILED_SCRIPT] : ['--import', 'tsx', SERVER_SCRIPT])];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      DICOMWEB_STORAGE_CONNECTION_STRING: storage.connectionString,
      DICOMWEB_BLOB_CONTAINER: storage.container,
      DICOMWEB_TABLE: storage.table,
      // The bench sends no tokens; on loopback the server may run without authentication.
      DICOMWEB_AUTH_MODE: 'none',
      ...extraEnv,
    },
    // stdin stays open: the child exits when it closes, even if the bench is killed outright.
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      resolve();
    }),
  );

  let ready: ServerReady;
  const tallies = new StorageTallies();
  try {
    ready = await readyLine(child, tallies);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  const baseUrl = `http://127.0.0.1:${ready.port}`;
  return {
    baseUrl,
    baselineRssBytes: ready.baselineRssBytes,
    memory: async () => {
      const response = await fetch(`${baseUrl}${MEMORY_PATH}`);
      if (!response.ok) throw new Error(`${MEMORY_PATH} answered ${response.status}`);
      return (await response.json()) as MemoryReport;
    },
    takeStorage: () => tallies.take(),
    resetPeak: async () => {
      const response = await fetch(`${baseUrl}${RESET_PEAK_PATH}`, { method: 'POST' });
      if (!response.ok) throw new Error(`${RESET_PEAK_PATH} answered ${response.status}`);
      await response.body?.cancel();
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(killer);
    },
  };
}

/**
 * The server's audit record of each request (one JSON line on stdout, as in production) is
 * dropped unless the request failed with a server error: thousands of searches would bury the
 * bench's own progress lines. BENCH_SERVER_LOG=1 shows them all.
 */
function isQuietAuditLine(line: string): boolean {
  if (process.env['BENCH_SERVER_LOG']) return false;
  try {
    const record = JSON.parse(line) as { type?: unknown; status?: unknown };
    return record.type === 'dicomweb.request' && typeof record.status === 'number' && record.status < 500;
  } catch {
    return false;
  }
}

/** The first stdout line is the ready message; later lines (there should be none) go to stderr. */
function readyLine(child: ChildProcess, tallies: StorageTallies): Promise<ServerReady> {
  const stdout = child.stdout;
  if (!stdout) return Promise.reject(new Error('The bench server has no stdout pipe.'));
  return new Promise((resolve, reject) => {
    let first = true;
    const timer = setTimeout(() => {
      reject(new Error(`The bench server did not listen within ${START_TIMEOUT_MS} ms.`));
    }, START_TIMEOUT_MS);
    createInterface({ input: stdout }).on('line', (line) => {
      if (!first) {
        tallies.add(line);
        if (!isQuietAuditLine(line)) process.stderr.write(`[server] ${line}\n`);
        return;
      }
      first = false;
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line) as ServerReady);
      } catch {
        reject(new Error(`The bench server printed ${JSON.stringify(line.slice(0, 200))} instead of its port.`));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`The bench server exited (${signal ?? String(code)}) before it listened.`));
    });
  });
}
