/**
 * Change feed and DELETE: the feed paged through (v1, limit 100) with and without metadata over
 * the entries the read data created, next to the same Table and blob reads done with the SDK;
 * then DELETE of the 1,000-instance study, timed and checked to leave nothing behind.
 */
import type { Agent } from 'node:http';
import { TableClient, odata } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';
import { ChangeFeedKeys, instanceRowKey, sidecarBlobName } from '../src/storage/keys.js';
import { type BenchContext, withServer } from './context.js';
import { call, expectStatus, getJson } from './http-client.js';
import { watchOtherLoad } from './machine-load.js';
import { mapPool, median, takingTurns, timed } from './measure.js';
import { perItem, timedResult, type SectionResult, type TargetCheck, type TimedResult } from './report.js';
import type { StorageTally } from './server-child.js';
import type { ReadData } from './wado.js';

const PAGE = 100;
/** Point reads in flight while describing a page: the server starts them all at once. */
const PAGE_PARALLELISM = PAGE;

interface FeedEntry {
  readonly Sequence: number;
  readonly StudyInstanceUid: string;
  readonly SeriesInstanceUid: string;
  readonly SopInstanceUid: string;
  readonly Action: string;
  readonly State: string;
  readonly Metadata?: unknown;
}

interface EntryRow {
  sequence: number;
  study: string;
  series: string;
  sop: string;
  version: string;
}

interface Pass {
  readonly seconds: number;
  readonly pagesMs: number[];
  readonly entries: number;
}

/** Pages the whole feed through the server: `/v1/changefeed?offset=…&limit=100&includemetadata=…`. */
async function serverPass(agent: Agent, baseUrl: string, metadata: boolean, expected: number): Promise<Pass> {
  const pagesMs: number[] = [];
  let offset = 0;
  let entries = 0;
  const started = performance.now();
  for (;;) {
    const url = `${baseUrl}/v1/changefeed?offset=${offset}&limit=${PAGE}&includemetadata=${metadata}`;
    const { ms, value } = await timed(() => getJson<FeedEntry[]>(agent, url, 'a change feed page'));
    pagesMs.push(ms);
    for (const [i, entry] of value.entries()) {
      if (entry.Sequence !== offset + i + 1) throw new Error(`change feed gap: ${entry.Sequence} after ${offset + i}`);
      if (metadata && entry.State === 'current' && entry.Metadata === undefined) {
        throw new Error(`entry ${entry.Sequence} has no metadata`);
      }
    }
    entries += value.length;
    if (value.length < PAGE) break;
    offset += value.length;
  }
  const seconds = (performance.now() - started) / 1000;
  if (entries !== expected) throw new Error(`the change feed has ${entries} entries, not ${expected}`);
  return { seconds, pagesMs, entries };
}

/** The same pages straight from the Table (entry rows, then each instance's row, which holds its metadata). */
async function rawPass(
  table: TableClient,
  container: ContainerClient,
  metadata: boolean,
  expected: number,
): Promise<Pass> {
  const pagesMs: number[] = [];
  let after = 0;
  let entries = 0;
  const started = performance.now();
  for (;;) {
    const { ms, value } = await timed(async () => {
      const filter = odata`PartitionKey eq ${ChangeFeedKeys.partition} and RowKey gt ${ChangeFeedKeys.entry(after)} and RowKey lt ${ChangeFeedKeys.entriesEnd}`;
      const page = await table
        .listEntities<EntryRow>({ queryOptions: { filter } })
        .byPage({ maxPageSize: PAGE })
        .next();
      const rows = page.done ? [] : page.value.slice(0, PAGE);
      await mapPool(rows, PAGE_PARALLELISM, async (row) => {
        const key = { studyInstanceUid: row.study, seriesInstanceUid: row.series, sopInstanceUid: row.sop };
        try {
          // The instance row carries the metadata (its inline sidecar); an older instance's sidecar is a blob.
          const instance = await table.getEntity<{ blobName: string; sidecar0?: Uint8Array }>(
            row.study,
            instanceRowKey(key),
          );
          if (metadata && !instance.sidecar0) {
            await container.getBlobClient(sidecarBlobName(instance.blobName)).downloadToBuffer();
          }
        } catch (error) {
          if ((error as { statusCode?: number }).statusCode !== 404) throw error;
        }
      });
      return rows;
    });
    pagesMs.push(ms);
    entries += value.length;
    if (value.length < PAGE) break;
    after = value.at(-1)?.sequence ?? after;
  }
  const seconds = (performance.now() - started) / 1000;
  if (entries !== expected) throw new Error(`the raw change feed read found ${entries} entries, not ${expected}`);
  return { seconds, pagesMs, entries };
}

async function feedThroughput(context: BenchContext, data: ReadData, table: TableClient, container: ContainerClient) {
  const repeats = context.settings.readRepeats;
  const timings: TimedResult[] = [];
  await withServer(data.storage, 1, async (server, agent) => {
    for (const metadata of [false, true]) {
      const otherLoad = watchOtherLoad();
      const passes: Pass[] = [];
      const raws: Pass[] = [];
      for (let run = 1; run <= repeats; run++) {
        await takingTurns(
          run - 1,
          async () => void passes.push(await serverPass(agent, server.baseUrl, metadata, data.created)),
          async () => void raws.push(await rawPass(table, container, metadata, data.created)),
        );
      }
      const seconds = median(passes.map((pass) => pass.seconds));
      const rawSeconds = median(raws.map((pass) => pass.seconds));
      context.progress(
        `c1 includemetadata=${metadata}: ${(data.created / seconds).toFixed(0)} entries/s (raw ${(data.created / rawSeconds).toFixed(0)})`,
      );
      timings.push(
        timedResult(
          {
            id: metadata ? 'c1b' : 'c1a',
            title: `change feed pages, includemetadata=${metadata}`,
            method: `all ${data.created} entries the read data created, paged with GET /v1/changefeed?offset={last}&limit=${PAGE}&includemetadata=${metadata}, ${repeats} passes taking turns with raw; p50/p95 per page, rate = entries ÷ median pass time (raw ${(data.created / rawSeconds).toFixed(0)} entries/s); raw = the entry-row range query (top ${PAGE}) and a point read of each entry's instance row (it holds the metadata), a page at a time`,
          },
          passes.flatMap((pass) => pass.pagesMs),
          raws.flatMap((pass) => pass.pagesMs),
          otherLoad(),
          { value: data.created / seconds, unit: 'entries/s' },
        ),
      );
    }
  });
  return timings;
}

async function deleteStudy(
  context: BenchContext,
  data: ReadData,
  table: TableClient,
  container: ContainerClient,
): Promise<{ timing: TimedResult; check: TargetCheck; notes: string[] }> {
  const study = data.bigStudy as NonNullable<ReadData['bigStudy']>;
  const uid = study.studyInstanceUid;
  const otherLoad = watchOtherLoad();
  const notes: string[] = [];
  let deleteMs = 0;
  let tally: StorageTally | undefined;
  const found: string[] = [];
  let clean = true;
  await withServer(data.storage, 1, async (server, agent) => {
    const base = `${server.baseUrl}/v2`;
    const before = await getJson<unknown[]>(agent, `${base}/studies?StudyInstanceUID=${uid}`, 'the study search');
    if (before.length !== 1) throw new Error(`the study is not searchable before the DELETE (${before.length})`);
    await server.takeStorage();
    const { ms, value } = await timed(() => call(agent, `${base}/studies/${uid}`, { method: 'DELETE', keep: true }));
    expectStatus(value, 204, 'DELETE of the study');
    deleteMs = ms;
    tally = await server.takeStorage();
    const retrieve = await call(agent, `${base}/studies/${uid}`, {
      headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
    });
    found.push(`GET study ${retrieve.status}`);
    if (retrieve.status !== 404) clean = false;
    const search = await call(agent, `${base}/studies?StudyInstanceUID=${uid}`, {
      headers: { accept: 'application/dicom+json' },
      keep: true,
    });
    const hits = search.status === 204 ? [] : (JSON.parse(search.body?.toString('utf8') ?? 'null') as unknown[]);
    found.push(`search ${JSON.stringify(hits)}`);
    if (search.status !== 200 && search.status !== 204) clean = false;
    if (!Array.isArray(hits) || hits.length > 0) clean = false;
    const latest = await getJson<{ Sequence: number }>(agent, `${server.baseUrl}/v1/changefeed/latest`, 'latest');
    if (latest.Sequence !== data.created + study.count) {
      notes.push(
        `d1: the change feed ends at ${latest.Sequence}, not ${data.created + study.count} (creates + deletes).`,
      );
      clean = false;
    }
  });
  let blobs = 0;
  for await (const blob of container.listBlobsFlat({ prefix: `${uid}/` })) {
    blobs += blob.name === '' ? 0 : 1;
  }
  found.push(`${blobs} blobs under {study}/`);
  if (blobs > 0) clean = false;
  let partitionRows = 0;
  for await (const row of table.listEntities({ queryOptions: { filter: odata`PartitionKey eq ${uid}` } })) {
    partitionRows += row.partitionKey === uid ? 1 : 0;
  }
  found.push(`${partitionRows} rows in its partition`);
  if (partitionRows > 0) clean = false;
  let pointers = 0;
  // Rows naming the study outside its partition, the change feed's own entries aside: search pointers.
  const pointerFilter = odata`study eq ${uid} and PartitionKey ne ${ChangeFeedKeys.partition}`;
  for await (const row of table.listEntities<{ study?: string }>({ queryOptions: { filter: pointerFilter } })) {
    if (row.study === uid) pointers += 1;
  }
  found.push(`${pointers} pointer rows`);
  if (pointers > 0) {
    notes.push(
      `d1: after the DELETE, ${pointers} search pointer rows naming the study are still in the table (by design, docs/storage.md: pointers are checked against the study partition on read, so they match nothing; they are never cleaned up).`,
    );
  }
  const seconds = deleteMs / 1000;
  return {
    timing: timedResult(
      {
        id: 'd1',
        title: `DELETE a ${study.count}-instance study (ops per instance)`,
        method: `DELETE /v2/studies/{study} of the ${study.count}-instance study (after its metadata and the change feed were read), one request; then checked: GET of the study, a search by StudyInstanceUID, the blobs under its prefix, its index partition, the change feed's last sequence`,
      },
      [deleteMs],
      undefined,
      otherLoad(),
      { value: study.count / seconds, unit: 'inst/s' },
      // Per instance; the floor: one blob delete each (as many as 256 in one Blob Batch on Azure).
      perItem(tally, study.count, study.count),
    ),
    check: {
      name: 'd1 DELETE leaves nothing',
      value: found.join(', '),
      target: '404, [], 0 blobs, 0 rows',
      met: clean,
    },
    notes,
  };
}

export async function changeFeedSection(context: BenchContext, data: ReadData): Promise<SectionResult> {
  const table = TableClient.fromConnectionString(context.target.connectionString, data.storage.table, {
    allowInsecureConnection: true,
  });
  const container = context.target.blobs.getContainerClient(data.storage.container);
  context.progress(`c1: change feed over ${data.created} entries`);
  const timings = await feedThroughput(context, data, table, container);
  const checks: TargetCheck[] = [];
  const notes: string[] = [];
  if (data.bigStudy) {
    context.progress(`d1: DELETE of the ${data.bigStudy.count}-instance study`);
    const result = await deleteStudy(context, data, table, container);
    timings.push(result.timing);
    checks.push(result.check);
    notes.push(...result.notes);
  }
  return { workloads: [], timings, qido: [], checks, notes };
}
