/**
 * The local operations poller keeps the Functions queue trigger's rules (host.json
 * extensions.queues, mirrored in OPERATION_QUEUE_RULES): a message is removed only after its
 * operation needs no more work, a failure hides it for visibilityTimeout, and after
 * maxDequeueCount tries it goes to the poison queue; a message that names nothing is dropped.
 */
import { describe, expect, it } from 'vitest';
import { startBulkUpdate } from '../../src/dicomweb/bulk-update.js';
import { OPERATION_QUEUE_RULES, startOperationWorkers } from '../../src/host/operations.js';
import { createMemoryStorage } from '../../src/storage/memory-storage.js';
import {
  StorageUnavailableError,
  type OperationQueue,
  type ReceivedOperationMessage,
  type Storage,
} from '../../src/storage/ports.js';

interface FakeMessage {
  operationId: string | undefined;
  dequeueCount: number;
  visibleAt: number;
}

/** A queue in memory with Azure's receive semantics: a received message is hidden and counted. */
class FakeQueue implements OperationQueue {
  readonly name = 'ops';
  readonly messages: FakeMessage[] = [];
  readonly poisoned: FakeMessage[] = [];
  readonly hidden: number[] = [];

  send(operationId: string): Promise<void> {
    this.messages.push({ operationId, dequeueCount: 0, visibleAt: 0 });
    return Promise.resolve();
  }

  receive(count: number, visibilityMs: number): Promise<ReceivedOperationMessage[]> {
    const now = Date.now();
    const visible = this.messages.filter((message) => message.visibleAt <= now).slice(0, count);
    return Promise.resolve(
      visible.map((message) => {
        message.dequeueCount += 1;
        message.visibleAt = now + visibilityMs;
        const remove = () => this.messages.splice(this.messages.indexOf(message), 1);
        return {
          operationId: message.operationId,
          dequeueCount: message.dequeueCount,
          complete: () => Promise.resolve(void remove()),
          hide: (ms: number) => {
            this.hidden.push(ms);
            // Seen again at once, so that the test need not wait out visibilityTimeout.
            message.visibleAt = 0;
            return Promise.resolve();
          },
          poison: () => {
            remove();
            this.poisoned.push(message);
            return Promise.resolve();
          },
        };
      }),
    );
  }
}

const HOUR = 3_600_000;

async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function storageWith(queue: FakeQueue): Storage & { operations: NonNullable<Storage['operations']> } {
  const memory = createMemoryStorage();
  return { ...memory, operationQueue: queue };
}

type OperationStore = NonNullable<Storage['operations']>;

/** The storage with some of its operation store's methods replaced (the rest still its own). */
function withOperations(
  storage: Storage & { operations: OperationStore },
  overrides: Partial<OperationStore>,
): Storage {
  const own = storage.operations;
  return {
    ...storage,
    operations: {
      create: (operation) => own.create(operation),
      get: (id) => own.get(id),
      update: (operation, etag) => own.update(operation, etag),
      unfinished: () => own.unfinished(),
      ...overrides,
    },
  };
}

const rename = { studyInstanceUids: ['1.2.3'], changes: [{ tag: '00100010', vr: 'PN', value: 'A^B' }] };

describe('the local operations queue poller', () => {
  it('runs a queued operation at once, without the periodic round, and then removes its message', async () => {
    const queue = new FakeQueue();
    const storage = storageWith(queue);
    const logged: string[] = [];
    const workers = startOperationWorkers(storage, (message) => logged.push(message), { intervalMs: HOUR, pollMs: 5 });
    try {
      const operation = await startBulkUpdate(storage, rename);
      expect(queue.messages.map((message) => message.operationId)).toEqual([operation.id]);
      await until(async () => (await storage.operations.get(operation.id))?.status === 'failed');
      await until(() => queue.messages.length === 0);
      expect(queue.poisoned).toEqual([]);
    } finally {
      await workers.stop();
    }
  });

  it('drops a message naming no operation, or one that does not exist, once, without retrying it', async () => {
    const queue = new FakeQueue();
    queue.messages.push({ operationId: undefined, dequeueCount: 0, visibleAt: 0 });
    queue.messages.push({ operationId: 'f'.repeat(32), dequeueCount: 0, visibleAt: 0 });
    const logged: string[] = [];
    const workers = startOperationWorkers(storageWith(queue), (message) => logged.push(message), {
      intervalMs: HOUR,
      pollMs: 5,
    });
    try {
      await until(() => queue.messages.length === 0);
      expect(queue.poisoned).toEqual([]);
      expect(logged.filter((line) => /dropped/.test(line))).toHaveLength(2);
    } finally {
      await workers.stop();
    }
  });

  it('retries a failing operation after visibilityTimeout, then poisons it after maxDequeueCount tries', async () => {
    const queue = new FakeQueue();
    const storage = storageWith(queue);
    const operation = await startBulkUpdate(storage, rename);
    // Every read of the operation fails, as when the table is unreachable; the periodic round finds nothing.
    const failing = withOperations(storage, {
      get: () => Promise.reject(new StorageUnavailableError('down')),
      unfinished: () => Promise.resolve([]),
    });
    const logged: string[] = [];
    const workers = startOperationWorkers(failing, (message) => logged.push(message), { intervalMs: HOUR, pollMs: 5 });
    try {
      await until(() => queue.poisoned.length === 1);
      expect(queue.poisoned[0]).toMatchObject({
        operationId: operation.id,
        dequeueCount: OPERATION_QUEUE_RULES.maxDequeueCount,
      });
      expect(queue.hidden).toEqual(Array.from({ length: OPERATION_QUEUE_RULES.maxDequeueCount - 1 }, () => 30_000));
      expect(queue.messages).toEqual([]);
      // The operation is left to the periodic round, unfinished.
      expect((await storage.operations.get(operation.id))?.status).toBe('notStarted');
    } finally {
      await workers.stop();
    }
  });

  it('poisons without running a message received more than maxDequeueCount times (its workers kept dying)', async () => {
    const queue = new FakeQueue();
    const storage = storageWith(queue);
    const operation = await startBulkUpdate(storage, rename);
    (queue.messages[0] as FakeMessage).dequeueCount = OPERATION_QUEUE_RULES.maxDequeueCount;
    let reads = 0;
    // The queue's path reads the operation by id (the periodic round lists unfinished ones instead).
    const counted = withOperations(storage, {
      get: (id) => {
        reads += 1;
        return storage.operations.get(id);
      },
      unfinished: () => Promise.resolve([]),
    });
    const workers = startOperationWorkers(counted, () => undefined, { intervalMs: HOUR, pollMs: 5 });
    try {
      await until(() => queue.poisoned.length === 1);
      expect(queue.poisoned[0]).toMatchObject({
        operationId: operation.id,
        dequeueCount: OPERATION_QUEUE_RULES.maxDequeueCount + 1,
      });
      expect(reads).toBe(0);
    } finally {
      await workers.stop();
    }
  });

  it('a request still succeeds when the queue does not take the message; the failure is logged', async () => {
    const storage = createMemoryStorage();
    const broken: Storage = {
      ...storage,
      operationQueue: {
        name: 'ops',
        send: () => Promise.reject(new StorageUnavailableError('queue down')),
        receive: () => Promise.resolve([]),
      },
    };
    const logged: string[] = [];
    const operation = await startBulkUpdate(broken, rename, (message) => logged.push(message));
    expect(await storage.operations.get(operation.id)).toMatchObject({ status: 'notStarted' });
    expect(logged).toEqual([`Operation ${operation.id} was not queued; the next periodic round starts it`]);
  });
});
