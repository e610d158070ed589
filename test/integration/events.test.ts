import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildInstance, newInstanceUids, testUid } from '../../support/dicom-builder.js';
import { stowRequestInit } from '../../support/multipart.js';
import { DicomEventType, type DicomCloudEvent, type EventIdentity } from '../../src/events/cloud-event.js';
import { publishEvents } from '../../src/events/publisher.js';
import { httpSink, type EventSink } from '../../src/events/sinks.js';
import { createEventPublishing, startEventLoop } from '../../src/host/events.js';
import { readConfig } from '../../src/config.js';
import { openEventCheckpoints } from '../../src/storage/azure-storage.js';
import type { EventCheckpointStore, InstanceKey } from '../../src/storage/ports.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const identity: EventIdentity = { source: '/dicomweb/test', serviceHostName: 'dicom.test' };

/** Stores `count` instances of one new study (one series); resolves to their keys in request order. */
async function storeStudy(baseUrl: string, count: number): Promise<InstanceKey[]> {
  const study = testUid();
  const series = testUid();
  const keys = Array.from({ length: count }, () => newInstanceUids(study, series));
  const response = await fetch(`${baseUrl}/v2/studies`, stowRequestInit(keys.map((key) => buildInstance({ ...key }))));
  await response.arrayBuffer();
  expect(response.status).toBe(200);
  return keys;
}

async function deleteStudy(baseUrl: string, study: string): Promise<void> {
  expect((await fetch(`${baseUrl}/v2/studies/${study}`, { method: 'DELETE' })).status).toBe(204);
}

/** A sink that keeps what it accepts. */
function recordingSink(name: string) {
  const received: DicomCloudEvent[] = [];
  return {
    name,
    received,
    async send(events: readonly DicomCloudEvent[]): Promise<void> {
      await new Promise((resolve) => setTimeout(resolve, 5));
      received.push(...events);
    },
  };
}

/** A webhook on 127.0.0.1 that hands each CloudEvents batch to `answer` and replies with the status it gives. */
async function webhook(
  answer: (events: DicomCloudEvent[], contentType: string | undefined) => Promise<number>,
): Promise<{ url: string; close(): Promise<void> }> {
  const hook: Server = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const events = JSON.parse(Buffer.concat(chunks).toString('utf8')) as DicomCloudEvent[];
      void answer(events, request.headers['content-type']).then((status) => {
        response.statusCode = status;
        response.end();
      });
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  const address = hook.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/events`,
    close: () =>
      new Promise((resolve) => {
        hook.closeAllConnections();
        hook.close(() => {
          resolve();
        });
      }),
  };
}

const summary = (events: readonly DicomCloudEvent[]) =>
  events.map((event) => [event.data.sequenceNumber, event.type, event.data.imageSopInstanceUid] as const);

describe('events through the Azurite queue, as `npm start` publishes them', () => {
  let server: TestServer;
  const queueName = `events-${randomBytes(4).toString('hex')}`;
  let stop: (() => Promise<void>) | undefined;
  const queue = () => {
    const target = server.storageConfig.target;
    if (target.kind !== 'connection-string') throw new Error('Azurite is reached by connection string');
    return QueueServiceClient.fromConnectionString(target.connectionString).getQueueClient(queueName);
  };

  /** Receives (and removes) messages until `count` have come or 20 s have passed. */
  async function receive(count: number): Promise<DicomCloudEvent[]> {
    const events: DicomCloudEvent[] = [];
    const deadline = Date.now() + 20_000;
    while (events.length < count && Date.now() < deadline) {
      const exists = await queue().exists();
      const batch = exists ? await queue().receiveMessages({ numberOfMessages: 32 }) : undefined;
      for (const message of batch?.receivedMessageItems ?? []) {
        // Each message is a CloudEvents JSON batch.
        events.push(...(JSON.parse(message.messageText) as DicomCloudEvent[]));
        await queue().deleteMessage(message.messageId, message.popReceipt);
      }
      if ((batch?.receivedMessageItems.length ?? 0) === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return events;
  }

  beforeAll(async () => {
    server = await startTestServer();
    const config = readConfig({
      DICOMWEB_EVENTS_QUEUE: queueName,
      DICOMWEB_EVENTS_SERVICE_HOST: 'dicom.example.org',
      DICOMWEB_EVENTS_SOURCE: '/dicomweb/example',
    });
    const publishing = createEventPublishing({ ...config, storage: server.storageConfig }, server.storage);
    expect(publishing.sinks.map((sink) => sink.name)).toEqual(['queue']);
    const loop = startEventLoop(publishing, 50, () => undefined);
    stop = () => loop.stop();
  });

  afterAll(async () => {
    await stop?.();
    await server.close();
  });

  it('receives one Created event per stored instance, then one Deleted per deleted instance, in feed order, once each', async () => {
    const keys = await storeStudy(server.baseUrl, 3);
    const created = await receive(3);
    expect(summary(created)).toEqual(keys.map((key, i) => [i + 1, DicomEventType.created, key.sopInstanceUid]));
    const [first] = created;
    expect(first).toMatchObject({
      specversion: '1.0',
      source: '/dicomweb/example',
      subject: `dicom.example.org/v1/studies/${keys[0]?.studyInstanceUid}/series/${keys[0]?.seriesInstanceUid}/instances/${keys[0]?.sopInstanceUid}`,
      data: {
        partitionName: 'Microsoft.Default',
        imageStudyInstanceUid: keys[0]?.studyInstanceUid,
        imageSeriesInstanceUid: keys[0]?.seriesInstanceUid,
        imageSopInstanceUid: keys[0]?.sopInstanceUid,
        serviceHostName: 'dicom.example.org',
        sequenceNumber: 1,
      },
    });
    expect(first?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Date.parse(first?.time ?? '')).toBeGreaterThan(Date.now() - 60_000);

    await deleteStudy(server.baseUrl, keys[0]?.studyInstanceUid ?? '');
    const deleted = await receive(3);
    expect(deleted.map((event) => event.type)).toEqual(Array(3).fill(DicomEventType.deleted));
    expect(deleted.map((event) => event.data.sequenceNumber)).toEqual([4, 5, 6]);
    expect(new Set(deleted.map((event) => event.data.imageSopInstanceUid))).toEqual(
      new Set(keys.map((key) => key.sopInstanceUid)),
    );
    // Nothing more comes: each change was published once.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await receive(0)).toEqual([]);
    const peeked = await queue().peekMessages({ numberOfMessages: 32 });
    expect(peeked.peekedMessageItems).toEqual([]);
  });

  it('publishes Created, Updated and Deleted for a store, a PUT that replaces the instance and a delete', async () => {
    const key = newInstanceUids();
    const store = (method: 'POST' | 'PUT', name: string) =>
      fetch(`${server.baseUrl}/v2/studies`, {
        ...stowRequestInit([buildInstance({ ...key, attributes: { '00100010': { vr: 'PN', value: name } } })]),
        method,
      });
    expect((await store('POST', 'Before^Name')).status).toBe(200);
    expect((await store('PUT', 'After^Name')).status).toBe(200);
    await deleteStudy(server.baseUrl, key.studyInstanceUid);
    const events = await receive(3);
    expect(events.map((event) => [event.type, event.data.imageSopInstanceUid])).toEqual([
      [DicomEventType.created, key.sopInstanceUid],
      [DicomEventType.updated, key.sopInstanceUid],
      [DicomEventType.deleted, key.sopInstanceUid],
    ]);
    const [created, updated, deleted] = events.map((event) => event.data.sequenceNumber);
    expect([(created ?? 0) + 1, (created ?? 0) + 2]).toEqual([updated, deleted]);
    expect(events[1]?.subject).toBe(
      `dicom.example.org/v1/partitions/Microsoft.Default/studies/${key.studyInstanceUid}/series/${key.seriesInstanceUid}/instances/${key.sopInstanceUid}`,
    );
  });
});

describe('the publisher', () => {
  let server: TestServer;
  let checkpoints: EventCheckpointStore;

  beforeAll(async () => {
    server = await startTestServer();
    checkpoints = openEventCheckpoints(server.storageConfig);
  });
  afterAll(async () => {
    await server.close();
  });

  /** Moves the sink's checkpoint to the end of the feed, so a test publishes only its own changes; the start. */
  async function startAtFeedEnd(name: string): Promise<number> {
    const start = (await server.storage.changeFeed.latest())?.sequence ?? 0;
    const initial = await checkpoints.read(name);
    expect(await checkpoints.write(name, { sequence: start, owner: '', leaseUntil: 0 }, initial.etag)).toBeTypeOf(
      'string',
    );
    return start;
  }

  const run = (sink: EventSink, owner: string, extra: { leaseMs?: number; batchSize?: number } = {}) =>
    publishEvents({ changeFeed: server.storage.changeFeed, checkpoints, sink, identity, owner, ...extra });

  it('posts CloudEvents batches to a webhook and, after it answers 500, sends the same events again without skipping', async () => {
    const bodies: { type: string | undefined; events: DicomCloudEvent[] }[] = [];
    let failures = 2;
    const hook = await webhook((events, type) => {
      bodies.push({ type, events });
      return Promise.resolve(failures-- > 0 ? 500 : 200);
    });
    try {
      const sink = httpSink({ name: 'webhook-retry', url: hook.url });
      const keys = await storeStudy(server.baseUrl, 2);
      const first = await run(sink, 'a');
      expect(first).toMatchObject({ outcome: 'failed', published: 0, sequence: 0 });
      expect(String(first.error)).toMatch(/answered 500/);
      expect((await run(sink, 'a')).outcome).toBe('failed');
      expect(await run(sink, 'a')).toMatchObject({ outcome: 'done', published: 2, sequence: 2 });
      expect(await run(sink, 'a')).toMatchObject({ outcome: 'idle', sequence: 2 });
      expect(bodies).toHaveLength(3);
      for (const body of bodies) {
        expect(body.type).toBe('application/cloudevents-batch+json; charset=utf-8');
        expect(summary(body.events)).toEqual(keys.map((key, i) => [i + 1, DicomEventType.created, key.sopInstanceUid]));
      }
      // The same events each time: one id per change.
      expect(new Set(bodies.map((body) => body.events.map((event) => event.id).join()))).toHaveProperty('size', 1);
    } finally {
      await hook.close();
    }
  });

  it('re-publishes the same event ids after a publisher process is killed between publishing and its checkpoint, then goes on', async () => {
    const start = await startAtFeedEnd('webhook');
    const keys = await storeStudy(server.baseUrl, 3);
    const target = server.storageConfig.target;
    const connectionString = target.kind === 'connection-string' ? target.connectionString : '';
    const batches: DicomCloudEvent[][] = [];
    let kill: (() => Promise<void>) | undefined;
    // The webhook takes the batch, then the publisher is killed before it hears the answer.
    const hook = await webhook(async (events) => {
      batches.push(events);
      await kill?.();
      kill = undefined;
      return 200;
    });
    // One process (`--import tsx`, not the tsx CLI, which would run it in a child that outlives the kill).
    const script = join(import.meta.dirname, '..', 'helpers', 'publisher-process.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      env: {
        ...process.env,
        DICOMWEB_STORAGE_CONNECTION_STRING: connectionString,
        DICOMWEB_BLOB_CONTAINER: server.storageConfig.container,
        DICOMWEB_TABLE: server.storageConfig.table,
        DICOMWEB_EVENTS_WEBHOOK_URL: hook.url,
        TEST_LEASE_MS: '3000',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    kill = async () => {
      child.kill('SIGKILL');
      await exited;
    };
    try {
      await exited;
      expect(batches).toHaveLength(1);
      const sent = batches[0] ?? [];
      expect(summary(sent)).toEqual(keys.map((key, i) => [start + i + 1, DicomEventType.created, key.sopInstanceUid]));
      // The checkpoint did not move: the process died before it could write it.
      expect((await checkpoints.read('webhook')).sequence).toBe(start);
      const sink = httpSink({ name: 'webhook', url: hook.url });
      // Its lease holds the others off until it lapses…
      expect((await run(sink, 'survivor')).outcome).toBe('busy');
      const more = await storeStudy(server.baseUrl, 1);
      await new Promise((resolve) => setTimeout(resolve, 3100));
      // …then they publish from the last checkpoint: the same ids again, and what came since.
      expect(await run(sink, 'survivor')).toMatchObject({ outcome: 'done', published: 4, sequence: start + 4 });
      const again = batches.slice(1).flat();
      expect(again.slice(0, 3).map((event) => event.id)).toEqual(sent.map((event) => event.id));
      expect(summary(again.slice(3))).toEqual([[start + 4, DicomEventType.created, more[0]?.sopInstanceUid]]);
    } finally {
      child.kill('SIGKILL');
      await hook.close();
    }
  });

  it('re-publishes the same event ids when the checkpoint cannot be written after publishing, then goes on', async () => {
    const sink = recordingSink('crash');
    const start = await startAtFeedEnd(sink.name);
    await storeStudy(server.baseUrl, 3);
    // A publisher that dies once the sink has taken the batch: nothing it writes after that lands.
    let dead = false;
    const dying: EventCheckpointStore = {
      read: (name) => checkpoints.read(name),
      write: async (name, checkpoint, etag) => {
        if (dead) throw new Error('process killed');
        return checkpoints.write(name, checkpoint, etag);
      },
    };
    const dyingSink: EventSink = {
      name: sink.name,
      send: async (events) => {
        await sink.send(events);
        dead = true;
      },
    };
    const crashed = await publishEvents({
      changeFeed: server.storage.changeFeed,
      checkpoints: dying,
      sink: dyingSink,
      identity,
      owner: 'dies',
      leaseMs: 1500,
    });
    expect(crashed.outcome).toBe('failed');
    const before = sink.received.map((event) => event.id);
    expect(before).toHaveLength(3);
    // Its lease holds the others off until it lapses…
    expect((await run(sink, 'survivor')).outcome).toBe('busy');
    await storeStudy(server.baseUrl, 1);
    await new Promise((resolve) => setTimeout(resolve, 1600));
    // …then they publish from the last checkpoint: the same ids again, and what came since.
    expect(await run(sink, 'survivor')).toMatchObject({ outcome: 'done', published: 4 });
    const again = sink.received.slice(3);
    expect(again.slice(0, 3).map((event) => event.id)).toEqual(before);
    expect(again.map((event) => event.data.sequenceNumber)).toEqual([1, 2, 3, 4].map((i) => start + i));
  });

  it('lets one of two racing publishers send at a time: every change once, in feed order', async () => {
    const sink = recordingSink('race');
    const sent: { owner: string; sequence: number }[] = [];
    const tagged = (owner: string): EventSink => ({
      name: sink.name,
      send: async (events) => {
        await sink.send(events);
        sent.push(...events.map((event) => ({ owner, sequence: event.data.sequenceNumber })));
      },
    });
    const start = await startAtFeedEnd(sink.name);
    const stores = (async () => {
      for (let i = 0; i < 6; i += 1) await storeStudy(server.baseUrl, 3);
    })();
    let storing = true;
    void stores.finally(() => {
      storing = false;
    });
    const racer = async (owner: string) => {
      const outcomes: string[] = [];
      // Keep publishing while stores go on, and once more after they end.
      for (let last = false; ;) {
        const result = await run(tagged(owner), owner, { batchSize: 2 });
        outcomes.push(result.outcome);
        if (last && result.outcome === 'idle') return outcomes;
        last = !storing;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    const [a, b] = await Promise.all([racer('a'), racer('b'), stores]);
    const sequences = sent.map((entry) => entry.sequence);
    expect(sequences).toEqual(Array.from({ length: 18 }, (_, i) => start + i + 1));
    expect([...(a ?? []), ...(b ?? [])]).toContain('done');
    expect(new Set(sink.received.map((event) => event.id)).size).toBe(18);
  });
});
