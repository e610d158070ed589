/**
 * QIDO-RS at 1k to 1M studies, in storage operations and entities read: figures that do not
 * depend on the machine and carry over to Azure, where a query reads only its key range.
 * Azurite scans its whole table per query and cannot hold 100k studies, so the studies are
 * stored through the store layer (storeInstances, the meter on) into the production Table
 * adapters over an in-memory table that meters each call as the SDK pipeline policy would
 * (support/memory-table-client.ts, held to Azurite's counts by
 * test/integration/memory-table-contract.test.ts); then each query shape runs through the app's
 * QIDO handler, one request each under its storage meter. At the Azurite sizes the in-memory
 * table's rows are copied into Azurite and the same requests run over the real SDK pipeline, to
 * show the counts are the same.
 */
import { getHeapStatistics } from 'node:v8';
import { TableClient, type TransactionAction } from '@azure/data-tables';
import type { MemoryTableClient } from '../support/memory-table-client.js';
import { createApp, type App } from '../src/app.js';
import type { AuditRecord } from '../src/http/audit.js';
import { openAzureStorage } from '../src/storage/azure-storage.js';
import type { Storage } from '../src/storage/ports.js';
import { StorageMeter, withStorageMeter } from '../src/util/storage-meter.js';
import { freshStorage, type BenchContext } from './context.js';
import { azureAdaptersInMemory } from './memory-azure-storage.js';
import { mapPool, MiB, timed } from './measure.js';
import { storeAll } from './qido.js';
import { scaleInstances, scaleStudy } from './qido-scale-data.js';
import { scaleQueries } from './qido-scale-queries.js';
import {
  BOUND_SLACK,
  scaleRows,
  type ScaleLoad,
  type ScaleQueryResult,
  type ScaleResult,
} from './qido-scale-report.js';
import { emptySection, type SectionResult } from './report.js';

/** Studies per STOW request (one request, through the store layer, per batch). */
const BATCH = 50;
const LOAD_CONCURRENCY = 8;

/** Samples the heap (JS objects and Buffers) and RSS every second until stopped; returns the peaks. */
function watchMemory(): () => { peakHeapMiB: number; peakRssMiB: number } {
  let heap = 0;
  let rss = 0;
  const sample = (): void => {
    const usage = process.memoryUsage();
    heap = Math.max(heap, usage.heapUsed + usage.external);
    rss = Math.max(rss, usage.rss);
  };
  sample();
  const timer = setInterval(sample, 1000);
  return () => {
    clearInterval(timer);
    sample();
    return { peakHeapMiB: heap / MiB, peakRssMiB: rss / MiB };
  };
}

/** Heap in use after a full collection when the process allows one (node --expose-gc). */
function heapUsedMiB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  const usage = process.memoryUsage();
  return (usage.heapUsed + usage.external) / MiB;
}

/** Stores studies [from, to) through the store layer, BATCH studies per request; returns instances stored and operations made. */
async function load(
  context: BenchContext,
  storage: Storage,
  uidRoot: string,
  from: number,
  to: number,
  deadline: number,
): Promise<{ studies: number; instances: number; operations: number }> {
  const batches: number[] = [];
  for (let i = from; i < to; i += BATCH) batches.push(i);
  let instances = 0;
  let operations = 0;
  let studies = 0;
  let reported = Date.now();
  // Batches start in order and none after the deadline, so the studies stored are [from, from + studies).
  await mapPool(
    batches,
    LOAD_CONCURRENCY,
    async (start) => {
      const files: Buffer[] = [];
      for (let i = start; i < Math.min(start + BATCH, to); i++)
        files.push(...scaleInstances(scaleStudy(i, uidRoot), i));
      const meter = new StorageMeter();
      await withStorageMeter(meter, () => storeAll(storage, files, 'loading'));
      instances += files.length;
      operations += meter.counts().operations;
      studies += Math.min(BATCH, to - start);
      if (Date.now() - reported < 15_000) return;
      reported = Date.now();
      context.progress(`qs: ${from + studies} studies stored`);
    },
    deadline,
  );
  return { studies, instances, operations };
}

/** Runs each query shape through the app, one request each; its counts come from the request's audit record. */
async function runQueries(
  app: App,
  audits: Map<string, AuditRecord>,
  count: number,
  uidRoot: string,
): Promise<ScaleQueryResult[]> {
  const results: ScaleQueryResult[] = [];
  for (const query of scaleQueries(count, uidRoot)) {
    const correlationId = `qs-${query.id}-${count}`;
    const response = await app.handle(
      new Request(`http://127.0.0.1${query.path}`, {
        headers: { accept: 'application/dicom+json', 'x-correlation-id': correlationId },
      }),
    );
    const body = await response.text();
    const record = audits.get(correlationId);
    if (response.status !== 200 || !record) {
      throw new Error(`qs: ${query.path} answered ${response.status}: ${body.slice(0, 200)}`);
    }
    audits.delete(correlationId);
    const { operations, byKind, entitiesRead } = record.storage;
    results.push({ ...query, results: (JSON.parse(body) as unknown[]).length, operations, byKind, entitiesRead });
  }
  return results;
}

function appOver(storage: Storage): { app: App; audits: Map<string, AuditRecord> } {
  const audits = new Map<string, AuditRecord>();
  const app = createApp({
    storage,
    config: { publicBaseUrl: undefined, maxHeaderBytes: 8 * 1024 * 1024, emptySearchStatus: 200 },
    log: (message, error) => {
      console.error(`qs: ${message}`, error);
    },
    audit: (record) => {
      audits.set(record.correlationId, record);
    },
  });
  return { app, audits };
}

/**
 * Copies every row of the in-memory table into an Azurite table: entity-group transactions of up
 * to 100 upserts per partition. Azurite then holds exactly the rows the production adapters wrote
 * through the store layer, far faster than storing the studies into it again (its table scans
 * make each STOW slower as it grows).
 */
async function copyRows(from: MemoryTableClient, to: TableClient): Promise<number> {
  const transactions: TransactionAction[][] = [];
  let current: TransactionAction[] = [];
  let partition: string | undefined;
  for (const entity of from.entities()) {
    if (entity.partitionKey !== partition || current.length === 100) {
      if (current.length > 0) transactions.push(current);
      current = [];
      partition = entity.partitionKey;
    }
    current.push(['upsert', entity, 'Replace']);
  }
  if (current.length > 0) transactions.push(current);
  await mapPool(transactions, LOAD_CONCURRENCY, async (actions) => {
    await to.submitTransaction(actions);
  });
  return transactions.reduce((sum, actions) => sum + actions.length, 0);
}

interface AzuriteCopy {
  readonly table: TableClient;
  readonly app: App;
  readonly audits: Map<string, AuditRecord>;
}

async function openAzurite(context: BenchContext): Promise<AzuriteCopy> {
  const target = freshStorage(context.target, 'qidoscale');
  const storage = await openAzureStorage({
    target: { kind: 'connection-string', connectionString: target.connectionString },
    container: target.container,
    table: target.table,
  });
  const table = TableClient.fromConnectionString(target.connectionString, target.table, {
    allowInsecureConnection: true,
  });
  return { table, ...appOver(storage) };
}

export async function qidoScaleSection(context: BenchContext): Promise<SectionResult> {
  const { settings } = context;
  const uidRoot = `1.2.826.0.1.3680043.10.1234.8.${Date.now()}`;
  const notes: string[] = [];
  const heapLimitMiB = getHeapStatistics().heap_size_limit / MiB;
  const results: ScaleResult[] = [];
  const inMemory = azureAdaptersInMemory();
  const { app, audits } = appOver(inMemory.storage);
  let azurite: AzuriteCopy | undefined;
  const deadline = Date.now() + settings.qidoScaleLoadSeconds * 1000;
  const memory = watchMemory();
  let loaded = 0;
  let instances = 0;
  let seconds = 0;
  let operations = 0;
  for (const size of settings.qidoScale) {
    context.progress(`qs: storing studies ${loaded}–${size - 1}`);
    const { ms, value } = await timed(() => load(context, inMemory.storage, uidRoot, loaded, size, deadline));
    loaded += value.studies;
    instances += value.instances;
    operations += value.operations;
    seconds += ms / 1000;
    const figures: ScaleLoad = {
      studies: loaded,
      instances,
      seconds,
      operationsPerInstance: operations / Math.max(1, instances),
      tableRows: inMemory.table.size,
      heapUsedMiB: heapUsedMiB(),
      ...memory(),
    };
    context.progress(`qs: ${loaded} studies stored in ${seconds.toFixed(0)} s; measuring the query shapes`);
    results.push({ storage: 'memory', load: figures, queries: await runQueries(app, audits, loaded, uidRoot) });
    if (loaded === size && settings.qidoScaleAzurite.includes(size)) {
      azurite ??= await openAzurite(context);
      context.progress(`qs: copying ${inMemory.table.size} rows to Azurite`);
      const copy = await timed(() => copyRows(inMemory.table, (azurite as AzuriteCopy).table));
      const queries = await runQueries(azurite.app, azurite.audits, loaded, uidRoot);
      results.push({
        storage: 'azurite',
        load: { ...figures, seconds: copy.ms / 1000, tableRows: copy.value },
        queries,
      });
    }
    // Each size's figures as soon as they exist: a million studies take a while.
    for (const line of scaleRows(results)) context.progress(line);
    if (loaded < size) {
      notes.push(
        `qs: storing ${size} studies did not fit in BENCH_QIDO_SCALE_LOAD_SECONDS=${settings.qidoScaleLoadSeconds} (${seconds.toFixed(0)} s spent storing); measured with the ${loaded} stored.`,
      );
      break;
    }
  }
  notes.push(
    `qs: studies stored through the store layer (storeInstances, ${BATCH} studies per request, ${LOAD_CONCURRENCY} requests at once, each size on top of the last) into the production Table adapters over support/memory-table-client.ts (rows in key order; a query reads only its key range, as on Azure; continuations as Azurite gives them: exactly when more rows match) and in-memory blobs (unmetered: no search reads one); one study in ten has 3 series of 2 instances. Each shape is one request through the app (app.handle), its counts from the request's storage meter. ≤ page+${BOUND_SLACK}: entities read at every size ≤ offset + limit + ${BOUND_SLACK}; grows with N: read at the largest size > 2× the larger of the read at the size before and page+${BOUND_SLACK}. Heap limit ${heapLimitMiB.toFixed(0)} MiB (NODE_OPTIONS=--max-old-space-size=… raises it).`,
  );
  return { ...emptySection(), qidoScale: results, notes };
}
