/**
 * The in-memory TableClient (support/memory-table-client.ts) counts like the real one: the same
 * STOWs and searches, through the app, over Azurite (the storage meter's SDK pipeline policy) and
 * over the production adapters on the in-memory table, make the same Table operations by kind
 * and read the same entities. This is what lets the QIDO scale bench (bench/qido-scale.ts) give
 * Azure's counts at sizes Azurite cannot hold. Blobs are left out: the bench keeps them in
 * memory unmetered, and no search reads one.
 */
import { randomBytes } from 'node:crypto';
import { odata, TableClient } from '@azure/data-tables';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryTableClient } from '../../support/memory-table-client.js';
import { stowRequestInit } from '../../support/multipart.js';
import { azureAdaptersInMemory } from '../../bench/memory-azure-storage.js';
import { scaleInstances, scaleStudy } from '../../bench/qido-scale-data.js';
import { scaleQueries } from '../../bench/qido-scale-queries.js';
import { createApp } from '../../src/app.js';
import type { AuditRecord } from '../../src/http/audit.js';
import { meterTable } from '../../src/storage/azure-storage-meter.js';
import {
  currentStorageMeter,
  StorageMeter,
  withStorageMeter,
  type StorageCounts,
} from '../../src/util/storage-meter.js';
import { defaultAppConfig, startMeteredServer, uniqueStorageConfig, type MeteredServer } from '../helpers/server.js';

const STUDIES = 12;
const uidRoot = `1.2.826.0.1.3680043.10.1234.77.${Date.now()}`;

interface Caller {
  call(path: string, init?: RequestInit): Promise<{ status: number; body: Buffer; storage: StorageCounts }>;
}

/** The app over the Azure adapters on the in-memory table, each request's counts from its audit record. */
function memoryCaller(): Caller {
  const { storage } = azureAdaptersInMemory();
  const records = new Map<string, AuditRecord>();
  const app = createApp({
    storage,
    config: defaultAppConfig,
    log: () => undefined,
    audit: (record) => {
      records.set(record.correlationId, record);
    },
  });
  return {
    async call(path, init = {}) {
      const correlationId = `meter-${randomBytes(8).toString('hex')}`;
      const headers = new Headers(init.headers);
      headers.set('x-correlation-id', correlationId);
      const response = await app.handle(new Request(`http://127.0.0.1${path}`, { ...init, headers }));
      const body = Buffer.from(await response.arrayBuffer());
      const record = records.get(correlationId);
      if (!record) throw new Error(`no audit record for ${path}`);
      return { status: response.status, body, storage: record.storage };
    },
  };
}

/** The Table part of a request's counts (the in-memory blobs are not metered). */
function tableCounts(counts: StorageCounts) {
  return {
    byKind: Object.fromEntries(Object.entries(counts.byKind).filter(([kind]) => kind.startsWith('table.'))),
    batchEntities: counts.batchEntities,
    entitiesRead: counts.entitiesRead,
  };
}

let azurite: MeteredServer;
const memory = memoryCaller();
beforeAll(async () => {
  azurite = await startMeteredServer();
});
afterAll(async () => {
  await azurite.close();
});

describe('the in-memory TableClient counts as Azurite does', () => {
  it('for every STOW (one instance each: no note partitions shared by chance)', async () => {
    for (let i = 0; i < STUDIES; i++) {
      for (const file of scaleInstances(scaleStudy(i, uidRoot), i)) {
        const init = stowRequestInit([file]);
        const [real, fake] = await Promise.all([azurite.call('/v2/studies', init), memory.call('/v2/studies', init)]);
        expect([real.status, fake.status]).toEqual([200, 200]);
        expect(tableCounts(fake.storage), `STOW of study ${i}`).toEqual(tableCounts(real.storage));
      }
    }
  });

  it('for every QIDO shape of the scale bench, and the same answers', async () => {
    for (const query of scaleQueries(STUDIES, uidRoot)) {
      const init = { headers: { accept: 'application/dicom+json' } };
      const real = await azurite.call(query.path, init);
      const fake = await memory.call(query.path, init);
      expect([real.status, fake.status], query.path).toEqual([200, 200]);
      expect(fake.storage.byKind, query.id).toEqual(real.storage.byKind);
      expect(fake.storage.entitiesRead, query.id).toBe(real.storage.entitiesRead);
      const uids = (body: Buffer) =>
        (JSON.parse(body.toString('utf8')) as Record<string, { Value?: unknown[] }>[]).map((item) =>
          JSON.stringify(item['0020000D']?.Value),
        );
      expect(uids(fake.body), query.id).toEqual(uids(real.body));
    }
  });
});

describe('the in-memory TableClient answers queries and writes as Azurite does', () => {
  /** Both clients, metered as in production; each call runs under its own meter. */
  async function clients(): Promise<{ name: string; table: TableClient }[]> {
    const config = uniqueStorageConfig();
    if (config.target.kind !== 'connection-string') throw new Error('the tests use a connection string');
    const real = TableClient.fromConnectionString(config.target.connectionString, config.table, {
      allowInsecureConnection: true,
    });
    meterTable(real);
    await real.createTable();
    const fake = new MemoryTableClient({ meter: currentStorageMeter }).asTableClient();
    return [
      { name: 'azurite', table: real },
      { name: 'memory', table: fake },
    ];
  }

  async function metered<T>(work: () => Promise<T>): Promise<{ value: T | string; counts: StorageCounts }> {
    const meter = new StorageMeter();
    const value = await withStorageMeter(meter, async () => {
      try {
        return await work();
      } catch (error) {
        return `failed ${String((error as { statusCode?: number }).statusCode)}`;
      }
    });
    const { operations, byKind, entitiesRead, batchEntities } = meter.counts();
    return {
      value,
      counts: { operations, byKind, entitiesRead, batchEntities, bytesRead: 0, bytesWritten: 0, inSequence: 0 },
    };
  }

  /** Every page of a query (row keys and the selected properties), asked for `pageSize` at a time. */
  async function pages(table: TableClient, filter: string, pageSize: number, select?: string[]): Promise<string[][]> {
    const found: string[][] = [];
    const query = table.listEntities({
      queryOptions: { filter, ...(select ? { select } : {}) },
    });
    for await (const page of query.byPage({ maxPageSize: pageSize })) {
      // Property order is the service's business; the ETag's and Timestamp's text too.
      found.push(
        page.map((entity) =>
          JSON.stringify(
            Object.entries(entity)
              .filter(([name]) => name !== 'etag' && name !== 'timestamp')
              .sort(([a], [b]) => (a < b ? -1 : 1)),
          ),
        ),
      );
    }
    return found;
  }

  it('pages, filters and $select, with the same operations and entities read', async () => {
    const both = await clients();
    const rows = [
      ...Array.from({ length: 23 }, (_, i) => ({
        partitionKey: 'p|a',
        rowKey: `r${String(i).padStart(2, '0')}`,
        n: i,
      })),
      ...Array.from({ length: 9 }, (_, i) => ({ partitionKey: 'p|b', rowKey: `r${i}`, n: i, odd: i % 2 === 1 })),
      { partitionKey: 'q', rowKey: 'x', n: 1, text: "it's" },
    ];
    const rowKeys = Array.from({ length: 15 }, (_, i) => `r${String(i + 3).padStart(2, '0')}`);
    const queries: [string, number, string[]?][] = [
      [odata`PartitionKey eq ${'p|a'}`, 10],
      [odata`PartitionKey eq ${'p|a'}`, 23],
      [odata`PartitionKey ge ${'p|'} and PartitionKey lt ${'p}'}`, 7],
      [odata`PartitionKey eq ${'p|a'} and RowKey ge ${'r05'} and RowKey lt ${'r12'}`, 1000],
      // The newest-first paths' shapes: a range of day partitions, a seek past a row key.
      [odata`PartitionKey ge ${'p|a'} and PartitionKey le ${'p|b'}`, 20],
      [odata`PartitionKey eq ${'p|a'} and RowKey gt ${'r05'} and RowKey lt ${'r09'}`, 2],
      [`PartitionKey eq 'p|a' and (${rowKeys.map((key) => odata`RowKey eq ${key}`).join(' or ')})`, 1000, ['n']],
      [odata`PartitionKey eq ${'p|b'} and odd eq ${true}`, 2],
      [odata`PartitionKey eq ${'p|b'} and not (n lt ${4}) and n ne ${6}`, 1000, ['RowKey', 'n']],
      // A DELETE's change feed marker read: RowKey bounds of the chain beside an OR of row keys.
      [
        `${odata`PartitionKey eq ${'p|a'} and RowKey ge ${'r03'} and RowKey le ${'r17'}`} and (${rowKeys.map((key) => odata`RowKey eq ${key}`).join(' or ')})`,
        1000,
        ['n'],
      ],
      // RowKey bounds inside a group with an OR, or inside a literal, bound nothing: r01 (n = 1) matches.
      [odata`PartitionKey eq ${'p|a'} and (RowKey ge ${'r20'} or n eq ${1}) and RowKey le ${'r22'}`, 1000, ['n']],
      [
        odata`PartitionKey eq ${'p|a'} and (n eq ${1} or text eq ${"RowKey ge 'r20'"}) and RowKey ge ${'r00'} and RowKey le ${'r22'}`,
        1000,
        ['n'],
      ],
      [odata`PartitionKey eq ${'p|a'} and RowKey ne ${"RowKey ge 'r20'"} and RowKey le ${'r02'}`, 1000, ['n']],
      // Alternatives the Azurite preload must not narrow to the leading term's partitions ('q' matches).
      [odata`PartitionKey ge ${'p|'} and (PartitionKey lt ${'p|b'} or n eq ${1})`, 1000, ['n']],
      [odata`PartitionKey eq ${'p|a'} and n lt ${2} or PartitionKey eq ${'q'}`, 1000, ['n']],
      [odata`(PartitionKey eq ${'p|b'} and (n eq ${1} or n eq ${2})) or text eq ${"it's"}`, 1000, ['n']],
      [odata`(PartitionKey eq ${'p|b'} and (n eq ${1} or n eq ${2}))`, 1000, ['n']],
      [odata`text eq ${"it's"}`, 1000],
      [odata`PartitionKey eq ${'none'}`, 5],
    ];
    const results: unknown[][] = [];
    for (const { table } of both) {
      const answers: unknown[] = [];
      for (const row of rows) await table.createEntity(row);
      for (const [filter, size, select] of queries)
        answers.push(await metered(() => pages(table, filter, size, select)));
      results.push(answers);
    }
    expect(results[1]).toEqual(results[0]);
  });

  it('fails writes and transactions with the same statuses, and a failed transaction changes nothing', async () => {
    const both = await clients();
    const results: unknown[][] = [];
    for (const { table } of both) {
      const answers: unknown[] = [];
      const step = async (work: () => Promise<unknown>) => {
        const { value, counts } = await metered(async () => {
          await work();
          return 'ok';
        });
        answers.push([value, counts]);
      };
      await step(() => table.createEntity({ partitionKey: 's', rowKey: 'study', count: 1 }));
      await step(() => table.createEntity({ partitionKey: 's', rowKey: 'study', count: 2 }));
      const { etag } = await table.getEntity('s', 'study');
      await step(() => table.updateEntity({ partitionKey: 's', rowKey: 'study', count: 2 }, 'Replace', { etag }));
      await step(() => table.updateEntity({ partitionKey: 's', rowKey: 'study', count: 3 }, 'Merge', { etag }));
      await step(() => table.deleteEntity('s', 'study', { etag }));
      await step(() => table.upsertEntity({ partitionKey: 's', rowKey: 'series|1', count: 1 }, 'Replace'));
      await step(() => table.upsertEntity({ partitionKey: 's', rowKey: 'series|1', more: true }, 'Merge'));
      await step(() =>
        table.submitTransaction([
          ['create', { partitionKey: 's', rowKey: 'instance|1' }],
          [
            'update',
            { partitionKey: 's', rowKey: 'study', count: 9 },
            'Replace',
            { etag: 'W/"datetime\'2020-01-01T00%3A00%3A00Z\'"' },
          ],
        ]),
      );
      await step(() =>
        table.submitTransaction([
          ['create', { partitionKey: 's', rowKey: 'instance|1' }],
          ['create', { partitionKey: 's', rowKey: 'series|1' }],
        ]),
      );
      await step(() => table.submitTransaction([['delete', { partitionKey: 's', rowKey: 'missing' }]]));
      await step(() =>
        table.submitTransaction([
          ['create', { partitionKey: 's', rowKey: 'instance|1', n: 1 }],
          ['upsert', { partitionKey: 's', rowKey: 'series|1', n: 2 }, 'Merge'],
          ['delete', { partitionKey: 's', rowKey: 'study' }],
        ]),
      );
      answers.push(await metered(() => pages(table, odata`PartitionKey eq ${'s'}`, 1000)));
      answers.push(await metered(() => table.getEntity('s', 'gone')));
      results.push(answers);
    }
    expect(results[1]).toEqual(results[0]);
  });
});
