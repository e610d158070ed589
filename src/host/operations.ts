/**
 * Long-running operations as the hosts run them (docs/storage.md "Operations"). Each new bulk
 * update sends its id to the operations queue; a queue consumer runs it at once: the Functions
 * queue trigger in Azure (functions/index.ts), a poller here locally that keeps the trigger's
 * rules (OPERATION_QUEUE_RULES). A periodic round (runBulkUpdates) is the safety net: it starts
 * what no message started and resumes what a dead worker left.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { runBulkUpdate, runBulkUpdates, type BulkUpdateWorker, type OperationRun } from '../dicomweb/bulk-update.js';
import type { FailureLog } from '../dicomweb/errors.js';
import { operationIdOf } from '../storage/azure-operation-queue.js';
import type { ReceivedOperationMessage, Storage } from '../storage/ports.js';
import { repeat, type Repeating } from '../util/repeat.js';

/** A unique name for this process's operation leases. */
export function operationWorkerName(): string {
  return `${hostname()}|${process.pid}|${randomBytes(4).toString('hex')}`;
}

/**
 * The queue trigger's settings, as host.json `extensions.queues` sets them for the Function App
 * (a test holds the two equal), and as the local poller applies them:
 * - messageEncoding base64: the host decodes each message from Base64 (what the sender writes);
 * - batchSize 1, newBatchThreshold 0: one operation at a time per instance (each streams batches
 *   of instances; more messages scale out to more instances);
 * - maxDequeueCount 5: a message that failed five times goes to `{queue}-poison`, and its
 *   operation is left to the periodic round;
 * - visibilityTimeout 30 s: the pause before a failed message is tried again;
 * - maxPollingInterval 2 s: a new operation starts within about two seconds on a running instance.
 */
export const OPERATION_QUEUE_RULES = {
  messageEncoding: 'base64',
  batchSize: 1,
  newBatchThreshold: 0,
  maxDequeueCount: 5,
  visibilityTimeout: '00:00:30',
  maxPollingInterval: '00:00:02',
} as const;

/**
 * How long one invocation works on an operation before it pauses (saves, gives up the lease,
 * queues the id again for the next invocation): well within host.json's functionTimeout
 * (30 minutes, the Flex Consumption default, pinned there), with room for the batch under way.
 */
export const OPERATION_RUN_BUDGET_MS = 20 * 60_000;

const RETRY_AFTER_MS = 30_000;
/** How long a received message stays hidden; renewed at half of it while its operation runs. */
const HOLD_MS = 60_000;
/** How often the local poller looks at an empty queue: an operation starts within about this. */
export const OPERATION_QUEUE_POLL_MS = 500;

/**
 * The work of one queue message, as the Functions trigger hands it over (the decoded text,
 * JSON-parsed). A message that names no operation, or one that does not exist, is logged and
 * dropped: retrying cannot help. A storage failure throws, so the message is retried.
 */
export async function runQueuedOperation(
  storage: Storage,
  entry: unknown,
  worker: BulkUpdateWorker & { readonly log: FailureLog },
): Promise<OperationRun | 'invalid'> {
  const id = operationIdOf(entry);
  if (id === undefined) {
    worker.log(`An operations queue message names no operation; it is dropped: ${JSON.stringify(entry)}`, undefined);
    return 'invalid';
  }
  const run = await runBulkUpdate(storage, id, worker);
  if (run === 'missing') worker.log(`The queued operation ${id} does not exist; its message is dropped`, undefined);
  return run;
}

/**
 * One received message under the trigger's rules: dropped (to the poison queue) once received
 * more than maxDequeueCount times, kept hidden while its operation runs, removed when the
 * operation needs no more work, hidden for visibilityTimeout after a failure and poisoned when
 * that was its last try.
 */
async function handleMessage(
  storage: Storage,
  message: ReceivedOperationMessage,
  worker: BulkUpdateWorker & { readonly log: FailureLog },
): Promise<void> {
  const { maxDequeueCount } = OPERATION_QUEUE_RULES;
  if (message.dequeueCount > maxDequeueCount) {
    await message.poison();
    return;
  }
  const keep = setInterval(() => {
    message.hide(HOLD_MS).catch((error: unknown) => {
      worker.log('An operations queue message could not be kept hidden', error);
    });
  }, HOLD_MS / 2);
  keep.unref();
  try {
    await runQueuedOperation(
      storage,
      { operationId: message.operationId },
      { ...worker, stopAt: Date.now() + OPERATION_RUN_BUDGET_MS },
    );
  } catch (error) {
    worker.log(`Queued operation ${message.operationId ?? '?'} failed (try ${message.dequeueCount})`, error);
    if (message.dequeueCount >= maxDequeueCount) await message.poison();
    else await message.hide(RETRY_AFTER_MS);
    return;
  } finally {
    clearInterval(keep);
  }
  await message.complete();
}

export type OperationWorkers = Repeating;

/**
 * The local host's operation workers: a poller of the operations queue (when the storage has one)
 * and a round every `intervalMs` as the safety net. Failures are logged; nothing here throws.
 */
export function startOperationWorkers(
  storage: Storage,
  log: FailureLog,
  options: { intervalMs: number; pollMs?: number },
): OperationWorkers {
  const worker = { owner: operationWorkerName(), log };
  const round = repeat(
    () =>
      runBulkUpdates(storage, worker).then(
        (finished) => {
          if (finished > 0) console.log(`Operations: ${finished} bulk update(s) finished.`);
        },
        (error: unknown) => {
          log('A bulk update round failed; the next round resumes it', error);
        },
      ),
    () => options.intervalMs,
  );
  const queue = storage.operationQueue;
  if (!queue) return round;
  const pollMs = options.pollMs ?? OPERATION_QUEUE_POLL_MS;
  let idle = true;
  const poller = repeat(
    async () => {
      try {
        const [message] = await queue.receive(OPERATION_QUEUE_RULES.batchSize, HOLD_MS);
        idle = message === undefined;
        if (message) await handleMessage(storage, message, worker);
      } catch (error) {
        idle = true;
        log(
          `The operations queue ${queue.name} could not be read; the periodic round runs operations meanwhile`,
          error,
        );
      }
    },
    () => (idle ? pollMs : 0),
  );
  return {
    async stop() {
      await Promise.all([round.stop(), poller.stop()]);
    },
  };
}
