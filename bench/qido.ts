/**
 * QIDO-RS at growing data set sizes: N single-instance studies with varied patients (a quarter
 * Japanese, with ideographic and phonetic groups), accession numbers, dates over 2024 and
 * modalities; then each query's latency next to the raw Table reads the answer needs (the
 * access-path query the server uses, keys.ts AccessPathKeys, and the study rows it names).
 */
import { TableClient, odata, type TableEntity } from '@azure/data-tables';
import { foldName, nameTokens } from '../src/dicom/person-name.js';
import { storeInstances, type IncomingInstance } from '../src/dicomweb/store.js';
import {
  AccessPathKeys,
  instanceRowRange,
  NewestFirstKeys,
  RECENT_SHARDS,
  SeriesRowRange,
  StudyRowKey,
} from '../src/storage/keys.js';
import { openAzureStorage } from '../src/storage/azure-storage.js';
import type { Storage } from '../src/storage/ports.js';
import { compareText } from '../src/util/compare.js';
import { createMemoryStorage } from '../src/storage/memory-storage.js';
import { type BenchContext, freshStorage, stowAll, withServer } from './context.js';
import { qidoInstance, qidoStudy, type QidoStudy } from './datasets.js';
import { call, expectStatus } from './http-client.js';
import { watchOtherLoad } from './machine-load.js';
import { mapPool, median, percentile, takingTurns, timed } from './measure.js';
import type { QidoQueryResult, QidoResult, SectionResult, TargetCheck } from './report.js';
import type { ServerStorage } from './server-child.js';

const BATCH = 50;
const LOAD_METHODS = {
  bulk: 'through the store layer into in-memory storage (storeInstances: the same validation and rows), whose index and pointer rows were then written with entity-group transactions of up to 100 per partition (no blobs or change feed rows: no search reads them)',
  store:
    'through the store layer in the bench process (storeInstances over openAzureStorage: the server’s own write path without the HTTP hop)',
  http: 'through the server (POST multipart/related)',
} as const;
const LOAD_CONCURRENCY = 8;
/** The server checks candidates with this many point reads at once (search.ts PARALLEL_READS). */
const POINT_READS = 16;
const MAX_HEADER_BYTES = 8 * 1024 * 1024;
/** Timed runs a query gets even when it is over its time budget. */
const MIN_RUNS = 5;

interface QueryPlan {
  readonly id: string;
  readonly title: string;
  readonly path: string;
  readonly expected: number;
  /** The raw reads; resolves to the candidate rows the access path gave. */
  readonly raw: () => Promise<number>;
}

interface PointerRow {
  study?: string;
  rowKey?: string;
  partitionKey?: string;
  created?: string;
  PatientName?: string;
}

async function rows<T extends object>(table: TableClient, filter: string, pageSize = 1000): Promise<T[]> {
  const found: T[] = [];
  for await (const page of table.listEntities<T>({ queryOptions: { filter } }).byPage({ maxPageSize: pageSize })) {
    found.push(...page);
  }
  return found;
}

/** Point reads of study rows, as the server checks candidates; returns how many exist. */
async function studyRows(table: TableClient, uids: readonly string[]): Promise<number> {
  const found = await mapPool([...new Set(uids)], POINT_READS, async (uid) => {
    try {
      await table.getEntity(uid, StudyRowKey);
      return 1;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return 0;
      throw error;
    }
  });
  return found.reduce((sum: number, n) => sum + n, 0);
}

/** A pointer partition read whole, then the studies it names. */
async function pointerQuery(table: TableClient, filter: string): Promise<number> {
  const pointers = await rows<PointerRow>(table, filter);
  await studyRows(
    table,
    pointers.flatMap((row) => (row.study ? [row.study] : [])),
  );
  return pointers.length;
}

/**
 * Stores instances through the store layer into in-memory storage (the same validation and the
 * same rows the Table adapter writes), then writes those rows to the table in entity-group
 * transactions of up to 100 per partition: far fewer requests than the store layer over Azurite
 * (Azurite still slows as its table grows: ~110 studies/s at 1k, ~11/s at 40k).
 * What it leaves out: blobs and change feed rows, which no search reads.
 */
async function bulkLoad(table: TableClient, files: readonly Uint8Array[]): Promise<void> {
  const memory = createMemoryStorage();
  await storeAll(memory, files, 'bulk loading');
  const byPartition = new Map<string, TableEntity[]>();
  for (const entity of memory.index.tableEntities()) {
    const group = byPartition.get(entity.partitionKey);
    if (group) group.push(entity);
    else byPartition.set(entity.partitionKey, [entity]);
  }
  const transactions: TableEntity[][] = [];
  for (const group of byPartition.values()) {
    for (let i = 0; i < group.length; i += 100) transactions.push(group.slice(i, i + 100));
  }
  await mapPool(transactions, 4, async (entities) => {
    await table.submitTransaction(entities.map((entity) => ['upsert', entity, 'Replace']));
  });
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  await Promise.resolve();
  yield bytes;
}

/** One STOW through the store layer (no HTTP), as one request of `files`; throws unless all are stored. */
export async function storeAll(storage: Storage, files: readonly Uint8Array[], doing: string): Promise<void> {
  async function* parts(): AsyncGenerator<IncomingInstance> {
    for (const file of files) {
      await Promise.resolve();
      yield { mediaType: 'application/dicom', body: once(file) };
    }
  }
  const result = await storeInstances(storage, parts(), { apiVersion: 'v2', maxHeaderBytes: MAX_HEADER_BYTES });
  if (result.failed.length > 0 || result.stored.length !== files.length) {
    throw new Error(`${doing} QIDO studies: ${result.failed.length} failed: ${JSON.stringify(result.failed[0])}`);
  }
}

/** Loads studies [from, to) of the data set; stops starting batches at `deadline`. Returns the indices stored. */
async function load(
  context: BenchContext,
  storage: ServerStorage,
  uidRoot: string,
  from: number,
  to: number,
  deadline: number,
): Promise<number[]> {
  const batches: number[][] = [];
  for (let i = from; i < to; i += BATCH) {
    batches.push(Array.from({ length: Math.min(BATCH, to - i) }, (_, k) => i + k));
  }
  const stored: number[] = [];
  let reported = Date.now();
  /** Loads the batches with LOAD_CONCURRENCY at once, starting none after the deadline. */
  const loadAll = async (loadBatch: (files: Buffer[]) => Promise<void>): Promise<number[]> => {
    await mapPool(
      batches,
      LOAD_CONCURRENCY,
      async (batch) => {
        await loadBatch(batch.map((i) => qidoInstance(qidoStudy(i, uidRoot), i)));
        stored.push(...batch);
        if (Date.now() - reported < 15_000) return;
        reported = Date.now();
        context.progress(`q: ${from + stored.length} studies loaded`);
      },
      deadline,
    );
    return stored;
  };
  if (context.settings.qidoLoad === 'http') {
    return withServer(storage, LOAD_CONCURRENCY, (server, agent) =>
      loadAll((files) => stowAll(agent, server.baseUrl, files, BATCH, 1).then(() => undefined)),
    );
  }
  if (context.settings.qidoLoad === 'bulk') {
    const table = TableClient.fromConnectionString(storage.connectionString, storage.table, {
      allowInsecureConnection: true,
    });
    await table.createTable();
    return loadAll((files) => bulkLoad(table, files));
  }
  const store = await openAzureStorage({
    target: { kind: 'connection-string', connectionString: storage.connectionString },
    container: storage.container,
    table: storage.table,
  });
  return loadAll((files) => storeAll(store, files, 'loading'));
}

function queryPlans(table: TableClient, studies: readonly QidoStudy[]): QueryPlan[] {
  const byIndex = (i: number): QidoStudy => studies[Math.min(i, studies.length - 1)] as QidoStudy;
  const count = (predicate: (study: QidoStudy) => boolean): number => studies.filter(predicate).length;
  const limited = (n: number, limit = 100): number => Math.min(n, limit);
  const byPatient = byIndex(123);
  const byAccession = byIndex(456);
  // A Western and a Japanese patient (every fourth patient is Japanese: patient 3 is studies 6–7).
  const western = studies.find((study, i) => i >= 789 && !study.patientName.includes('=')) ?? byIndex(0);
  const japanese = studies.find((study, i) => i >= 300 && study.patientName.includes('=')) ?? byIndex(6);
  const ideographic = japanese.patientName.split('=')[1] ?? japanese.patientName;
  const prefix = 'nak';
  const exactName = (value: string) => {
    const wanted = foldName(value);
    return (name: string) => [name, ...name.split('=')].some((group) => foldName(group) === wanted);
  };
  // The name-word partition read whole; for an exact name only the pointers whose PatientName
  // matches; newest first by the createdAt each pointer carries; then the study rows of the first
  // limit + 1 (to know the answer is cut).
  const nameQuery = async (value: string, exact: boolean): Promise<number> => {
    const token = nameTokens(value)[0] ?? '';
    const { from, to } = AccessPathKeys.nameTokenRows(token);
    const all = await rows<PointerRow>(
      table,
      odata`PartitionKey eq ${NewestFirstKeys.nameWord(token)} and RowKey ge ${from} and RowKey lt ${to}`,
    );
    const matches = exactName(value);
    const pointers = exact ? all.filter((row) => matches(row.PatientName ?? '')) : all;
    pointers.sort((a, b) => compareText(b.created ?? '', a.created ?? ''));
    await studyRows(
      table,
      pointers.slice(0, 101).flatMap((row) => (row.study ? [row.study] : [])),
    );
    return all.length;
  };
  const scoped = byIndex(42);
  return [
    {
      id: 'q1',
      title: 'by PatientID',
      path: `/v2/studies?PatientID=${byPatient.patientId}`,
      expected: count((study) => study.patientId === byPatient.patientId),
      raw: () => pointerQuery(table, odata`PartitionKey eq ${AccessPathKeys.patientId(byPatient.patientId)}`),
    },
    {
      id: 'q2',
      title: 'by AccessionNumber',
      path: `/v2/studies?AccessionNumber=${byAccession.accessionNumber}`,
      expected: count((study) => study.accessionNumber === byAccession.accessionNumber),
      raw: () => pointerQuery(table, odata`PartitionKey eq ${AccessPathKeys.accession(byAccession.accessionNumber)}`),
    },
    {
      id: 'q3',
      title: `by PatientName prefix "${prefix}", fuzzy`,
      path: `/v2/studies?PatientName=${prefix}&fuzzymatching=true`,
      expected: limited(count((study) => study.nameWords.some((word) => word.startsWith(prefix)))),
      raw: () => nameQuery(prefix, false),
    },
    {
      id: 'q4',
      title: 'by PatientName exact',
      path: `/v2/studies?PatientName=${encodeURIComponent(western.patientName)}`,
      expected: limited(count((study) => exactName(western.patientName)(study.patientName))),
      raw: () => nameQuery(western.patientName, true),
    },
    {
      id: 'q5',
      title: 'by PatientName exact, ideographic',
      path: `/v2/studies?PatientName=${encodeURIComponent(ideographic)}`,
      expected: limited(count((study) => exactName(ideographic)(study.patientName))),
      raw: () => nameQuery(ideographic, true),
    },
    {
      id: 'q6',
      title: 'by StudyDate over 2024',
      path: '/v2/studies?StudyDate=20240101-20241231',
      expected: limited(studies.length),
      raw: async () => {
        // Months newest first, until the answer (limit + 1 to know it is truncated) is complete.
        const found: PointerRow[] = [];
        for (let month = 12; month >= 1 && found.length <= 100; month--) {
          const mm = String(month).padStart(2, '0');
          const batch = await rows<PointerRow>(
            table,
            odata`PartitionKey ge ${NewestFirstKeys.day(`2024${mm}31`)} and PartitionKey le ${NewestFirstKeys.day(`2024${mm}01`)}`,
          );
          // Day partitions sort latest day first.
          batch.sort((a, b) => compareText(a.partitionKey ?? '', b.partitionKey ?? ''));
          found.push(...batch);
        }
        await studyRows(
          table,
          found.slice(0, 101).flatMap((row) => (row.study ? [row.study] : [])),
        );
        return found.length;
      },
    },
    {
      id: 'q7',
      title: 'OHIF worklist, limit 101',
      path: '/v2/studies?limit=101&offset=0&fuzzymatching=false&includefield=00081030%2C00080060',
      expected: limited(studies.length, 101),
      raw: async () => {
        // The 101 newest: the first 101 rows of each recency shard, merged.
        const heads = await Promise.all(
          RECENT_SHARDS.map(async (shard) => {
            const page = await table
              .listEntities<PointerRow>({
                queryOptions: { filter: odata`PartitionKey eq ${AccessPathKeys.recent(shard)}` },
              })
              .byPage({ maxPageSize: 101 })
              .next();
            return page.done ? [] : page.value.slice(0, 101);
          }),
        );
        const merged = heads.flat().sort((a, b) => compareText(a.rowKey ?? '', b.rowKey ?? ''));
        await studyRows(
          table,
          merged.slice(0, 101).flatMap((row) => (row.study ? [row.study] : [])),
        );
        return heads.reduce((sum, head) => sum + head.length, 0);
      },
    },
    {
      id: 'q8',
      title: 'series of one study',
      path: `/v2/studies/${scoped.key.studyInstanceUid}/series`,
      expected: 1,
      raw: async () => {
        const uid = scoped.key.studyInstanceUid;
        const [series] = await Promise.all([
          rows(
            table,
            odata`PartitionKey eq ${uid} and RowKey ge ${SeriesRowRange.from} and RowKey lt ${SeriesRowRange.to}`,
          ),
          studyRows(table, [uid]),
        ]);
        return series.length;
      },
    },
    {
      id: 'q9',
      title: 'instances of one series',
      path: `/v2/studies/${scoped.key.studyInstanceUid}/series/${scoped.key.seriesInstanceUid}/instances`,
      expected: 1,
      raw: async () => {
        const { studyInstanceUid: uid, seriesInstanceUid: series } = scoped.key;
        const { from, to } = instanceRowRange(series);
        const [instances] = await Promise.all([
          rows(table, odata`PartitionKey eq ${uid} and RowKey ge ${from} and RowKey lt ${to}`),
          studyRows(table, [uid]),
        ]);
        return instances.length;
      },
    },
  ];
}

async function measureQueries(
  context: BenchContext,
  storage: ServerStorage,
  table: TableClient,
  studies: readonly QidoStudy[],
): Promise<QidoQueryResult[]> {
  const plans = queryPlans(table, studies);
  const runs = context.settings.qidoRuns;
  const budgetMs = context.settings.qidoQuerySeconds * 1000;
  const samples = plans.map(() => ({ server: [] as number[], raw: [] as number[], candidates: 0 }));
  await withServer(storage, 1, async (server, agent) => {
    const headers = { accept: 'application/dicom+json' };
    // Untimed: each answer checked against the data set, and the connection and caches warmed.
    for (const [i, plan] of plans.entries()) {
      const answer = expectStatus(
        await call(agent, `${server.baseUrl}${plan.path}`, { headers, keep: true }),
        200,
        `${plan.id} ${plan.path}`,
      );
      const results = (JSON.parse(answer.body?.toString('utf8') ?? '[]') as unknown[]).length;
      if (results !== plan.expected) {
        throw new Error(`${plan.id} ${plan.path} gave ${results} results, not the ${plan.expected} in the data set`);
      }
      (samples[i] as { candidates: number }).candidates = await plan.raw();
    }
    // Each query's runs in a row, server and raw taking turns; a slow query stops after its time
    // budget once it has MIN_RUNS (on a large table a run can take seconds).
    for (const [i, plan] of plans.entries()) {
      const sample = samples[i] as { server: number[]; raw: number[] };
      const started = performance.now();
      for (let run = 0; run < runs; run++) {
        if (run >= MIN_RUNS && performance.now() - started > budgetMs) break;
        const serverRun = async (): Promise<void> => {
          const { ms, value } = await timed(() => call(agent, `${server.baseUrl}${plan.path}`, { headers }));
          expectStatus(value, 200, plan.id);
          sample.server.push(ms);
        };
        const rawRun = async (): Promise<void> => {
          sample.raw.push((await timed(plan.raw)).ms);
        };
        await takingTurns(run, serverRun, rawRun);
      }
    }
  });
  return plans.map((plan, i) => {
    const sample = samples[i] as { server: number[]; raw: number[]; candidates: number };
    return {
      id: plan.id,
      title: plan.title,
      query: plan.path,
      results: plan.expected,
      candidates: sample.candidates,
      runs: sample.server.length,
      p50Ms: median(sample.server),
      p95Ms: percentile(sample.server, 95),
      rawP50Ms: median(sample.raw),
      rawP95Ms: percentile(sample.raw, 95),
      samplesMs: sample.server,
      rawSamplesMs: sample.raw,
    };
  });
}

export async function qidoSection(context: BenchContext): Promise<SectionResult> {
  const { settings } = context;
  const storage = freshStorage(context.target, 'qido');
  const table = TableClient.fromConnectionString(context.target.connectionString, storage.table, {
    allowInsecureConnection: true,
  });
  const uidRoot = `1.2.826.0.1.3680043.10.1234.9.${Date.now()}`;
  const results: QidoResult[] = [];
  const notes: string[] = [];
  const loaded: number[] = [];
  let loadSeconds = 0;
  for (const requested of settings.qidoStudies) {
    const otherLoad = watchOtherLoad();
    const from = loaded.length === 0 ? 0 : Math.max(...loaded) + 1;
    context.progress(`q: loading studies ${from}–${requested - 1} (${settings.qidoLoad})`);
    // The budget counts loading only, not the queries measured in between.
    const deadline = Date.now() + settings.qidoLoadSeconds * 1000 - loadSeconds * 1000;
    const { ms, value } = await timed(() => load(context, storage, uidRoot, from, requested, deadline));
    loadSeconds += ms / 1000;
    loaded.push(...value);
    loaded.sort((a, b) => a - b);
    const complete = loaded.length === requested;
    if (!complete) {
      notes.push(
        `q: loading ${requested} studies did not fit in BENCH_QIDO_LOAD_SECONDS=${settings.qidoLoadSeconds} (${loadSeconds.toFixed(0)} s spent loading); measured with the ${loaded.length} that were stored.`,
      );
    }
    const studies = loaded.map((i) => qidoStudy(i, uidRoot));
    context.progress(`q: ${studies.length} studies; ${settings.qidoRuns} runs of each query`);
    const queries = await measureQueries(context, storage, table, studies);
    results.push({
      requested,
      studies: studies.length,
      load: { seconds: ms / 1000, studiesPerSecond: value.length / (ms / 1000), loaded: value.length },
      otherCpuShare: otherLoad(),
      queries,
    });
    if (!complete) break;
  }
  const checks: TargetCheck[] = [];
  const first = results[0];
  const last = results.at(-1);
  if (first && last && last !== first) {
    const growth = last.studies / first.studies;
    for (const query of first.queries) {
      const end = last.queries.find((candidate) => candidate.id === query.id);
      if (!end) continue;
      const factor = end.p95Ms / query.p95Ms;
      checks.push({
        name: `${query.id} ${query.title}: p95 ${first.studies}→${last.studies}`,
        value: `${factor.toFixed(2)}× (raw ${(end.rawP95Ms / query.rawP95Ms).toFixed(2)}×)`,
        target: `sub-linear (< ${growth.toFixed(0)}×)`,
        met: factor < growth,
      });
    }
  }
  notes.push(
    `q1–q9: up to ${settings.qidoRuns} sequential runs of each query per size (fewer, but at least ${MIN_RUNS}, once a query has used BENCH_QIDO_QUERY_SECONDS=${settings.qidoQuerySeconds} s: the runs column), one keep-alive connection, server and raw taking turns; loaded ${LOAD_METHODS[settings.qidoLoad]} in batches of ${BATCH}, ${LOAD_CONCURRENCY} at once, each size on top of the last; hits = results returned (checked against the data set, default limit 100), cand = rows the access path gave; raw = the same access-path Table query (keys.ts AccessPathKeys) plus point reads of the study rows it names, ${POINT_READS} at once (q3–q5: of the 101 newest by the pointers' createdAt, q4–q5 only pointers whose PatientName matches; q6: month partitions newest first until 101 pointers; q7: the first 101 rows of each of the 16 recency shards, merged).`,
  );
  notes.push(
    'q: Azurite answers every Table query by scanning the whole table (LokiTableMetadataStore.queryTableEntities filters all entities with a predicate; only point reads use its PartitionKey/RowKey index), and this table holds every study’s index and pointer rows (about 13 per study; with BENCH_QIDO_LOAD=store also 3 change feed rows), so the raw ceiling grows with the table as well: compare the server’s growth with the raw growth, and the server with raw at the same size. Name searches read their name-word partition whole (cand rows: small pointer rows carrying the study createdAt and PatientName), drop pointers whose name fails the filter, sort newest first and read study rows only until the page is full.',
  );
  return { workloads: [], timings: [], qido: results, checks, notes };
}
