/**
 * Long-running operations as the hosts run them: a round works off every unfinished bulk update
 * whose lease is free (src/dicomweb/bulk-update.ts). The Function App runs a round on a timer
 * (functions/index.ts); `npm start` runs rounds on an interval (startOperationLoop).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { OPERATION_POLL_MS, runBulkUpdates } from '../dicomweb/bulk-update.js';
import type { FailureLog } from '../dicomweb/errors.js';
import type { Storage } from '../storage/ports.js';

/** A unique name for this process's operation leases. */
export function operationWorkerName(): string {
  return `${hostname()}|${process.pid}|${randomBytes(4).toString('hex')}`;
}

/**
 * Runs a round every `intervalMs`, never two at once in this process; a failed round (storage
 * down) is logged and the next one resumes where the operation's record says. Returns a stop function.
 */
export function startOperationLoop(storage: Storage, log: FailureLog, intervalMs = OPERATION_POLL_MS): () => void {
  const owner = operationWorkerName();
  let running = false;
  const round = (): void => {
    if (running) return;
    running = true;
    runBulkUpdates(storage, { owner, log })
      .then(
        (finished) => {
          if (finished > 0) console.log(`Operations: ${finished} bulk update(s) finished.`);
        },
        (error: unknown) => {
          log('A bulk update round failed; the next round resumes it', error);
        },
      )
      .finally(() => {
        running = false;
      });
  };
  round();
  const timer = setInterval(round, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
  };
}
