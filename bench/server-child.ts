/** Starts bench/server.ts as a child process on the Node that runs the bench, and talks to it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { MEMORY_PATH, RESET_PEAK_PATH, type MemoryReport, type ServerReady } from './server-protocol.js';

export interface ServerChild {
  readonly baseUrl: string;
  readonly baselineRssBytes: number;
  memory(): Promise<MemoryReport>;
  /** Restarts the peak RSS from the current RSS. */
  resetPeak(): Promise<void>;
  stop(): Promise<void>;
}

export interface ServerStorage {
  readonly connectionString: string;
  readonly container: string;
  readonly table: string;
}

const REPO_ROOT = join(import.meta.dirname, '..');
const SERVER_SCRIPT = join(import.meta.dirname, 'server.ts');
const START_TIMEOUT_MS = 60_000;
const running = new Set<ChildProcess>();

/** Last resort for process exit paths that cannot await: no child outlives the bench. */
export function killServerChildren(): void {
  for (const child of running) child.kill('SIGKILL');
}

export async function startServerChild(storage: ServerStorage): Promise<ServerChild> {
  // `--import tsx` keeps it one process (the tsx CLI would add a wrapper process around it).
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER_SCRIPT], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      DICOMWEB_STORAGE_CONNECTION_STRING: storage.connectionString,
      DICOMWEB_BLOB_CONTAINER: storage.container,
      DICOMWEB_TABLE: storage.table,
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
  try {
    ready = await readyLine(child);
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

/** The first stdout line is the ready message; later lines (there should be none) go to stderr. */
function readyLine(child: ChildProcess): Promise<ServerReady> {
  const stdout = child.stdout;
  if (!stdout) return Promise.reject(new Error('The bench server has no stdout pipe.'));
  return new Promise((resolve, reject) => {
    let first = true;
    const timer = setTimeout(() => {
      reject(new Error(`The bench server did not listen within ${START_TIMEOUT_MS} ms.`));
    }, START_TIMEOUT_MS);
    createInterface({ input: stdout }).on('line', (line) => {
      if (!first) {
        process.stderr.write(`[server] ${line}\n`);
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
