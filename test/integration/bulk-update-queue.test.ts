/**
 * Bulk update driven by the operations queue on Azurite: $bulkUpdate queues the operation's id and
 * the local host's poller (the Functions queue trigger's stand-in) runs it at once, while the
 * periodic round is set to an hour, so only the queue can have started it.
 */
import { randomBytes } from 'node:crypto';
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOperationWorkers, type OperationWorkers } from '../../src/host/operations.js';
import { openAzureStorage, type StorageConfig } from '../../src/storage/azure-storage.js';
import type { Storage } from '../../src/storage/ports.js';
import { buildInstance, newInstanceUids, testUid } from '../../support/dicom-builder.js';
import { stowRequestInit } from '../../support/multipart.js';
import { serveStorage, uniqueStorageConfig } from '../helpers/server.js';

const HOUR = 3_600_000;

let config: StorageConfig;
let storage: Storage;
let server: { baseUrl: string; close(): Promise<void> };
let workers: OperationWorkers;
const logged: string[] = [];

beforeAll(async () => {
  config = { ...uniqueStorageConfig(), operationsQueue: `ops-${randomBytes(5).toString('hex')}` };
  storage = await openAzureStorage(config);
  server = await serveStorage(storage);
  workers = startOperationWorkers(storage, (message) => logged.push(message), { intervalMs: HOUR });
});

afterAll(async () => {
  await workers.stop();
  await server.close();
});

function queueClient(name: string) {
  if (config.target.kind !== 'connection-string') throw new Error('Azurite has a connection string');
  return QueueServiceClient.fromConnectionString(config.target.connectionString).getQueueClient(name);
}

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('bulk update through the operations queue', () => {
  it('an operation started through the API is run by the queue consumer, not the hourly round', async () => {
    expect(storage.operationQueue?.name).toBe(config.operationsQueue);
    const study = testUid();
    const files = Array.from({ length: 3 }, () =>
      buildInstance({ ...newInstanceUids(study), attributes: { '00100010': { vr: 'PN', value: 'Old^Name' } } }),
    );
    expect((await fetch(`${server.baseUrl}/v2/studies`, stowRequestInit(files))).status).toBe(200);

    const started = await fetch(`${server.baseUrl}/v2/studies/$bulkUpdate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        studyInstanceUids: [study],
        changeDataset: { '00100010': { vr: 'PN', Value: [{ Alphabetic: 'New^Name' }] } },
      }),
    });
    expect(started.status).toBe(202);
    const { id } = (await started.json()) as { id: string };
    const status = await waitFor(
      async () =>
        (await (await fetch(`${server.baseUrl}/v2/operations/${id}`)).json()) as {
          status: string;
          results: { instanceUpdated: number };
        },
      (value) => value.status !== 'notStarted' && value.status !== 'running',
    );
    expect(status).toMatchObject({ status: 'succeeded', results: { instanceUpdated: 3 } });
    // The message is removed once its operation is done; nothing went to the poison queue.
    const queue = queueClient(config.operationsQueue ?? '');
    expect((await queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems).toEqual([]);
    const poison = queueClient(`${config.operationsQueue ?? ''}-poison`);
    expect((await poison.exists()) ? (await poison.peekMessages()).peekedMessageItems : []).toEqual([]);
    expect(logged).toEqual([]);
  });

  it('a message that names no operation is dropped with a log line, not retried', async () => {
    const queue = queueClient(config.operationsQueue ?? '');
    await queue.sendMessage(Buffer.from(JSON.stringify({ operationId: 'f'.repeat(32) })).toString('base64'));
    await queue.sendMessage('not base64 at all!');
    await waitFor(
      async () => (await queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.length,
      (count) => count === 0,
    );
    expect((await queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems).toEqual([]);
    expect(logged.filter((line) => /dropped/.test(line))).toHaveLength(2);
  });
});
