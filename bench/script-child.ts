/**
 * A helper process running an inline ES module (the pass-through server, the latency proxy): it
 * prints one line when it is ready (its ports) and exits when its stdin closes, so it never
 * outlives the bench.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ScriptChild {
  /** The line the script printed when ready. */
  readonly line: string;
  /** Closes its stdin and waits for it to exit. */
  readonly stop: () => Promise<void>;
}

export async function startScriptChild(
  name: string,
  script: string,
  env: Record<string, string>,
  cwd?: string,
): Promise<ScriptChild> {
  const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', script], {
    ...(cwd ? { cwd } : {}),
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      reject(new Error(`the ${name} exited ${String(code)}`));
    });
    if (!child.stdout) throw new Error('no stdout');
    createInterface({ input: child.stdout }).once('line', resolve);
  });
  child.removeAllListeners('exit');
  return {
    line,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) {
          resolve();
          return;
        }
        child.once('exit', () => {
          resolve();
        });
        child.stdin?.end();
      }),
  };
}
