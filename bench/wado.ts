/**
 * WADO-RS: a CT series retrieved as one multipart response next to the same blobs downloaded
 * with the SDK; single-frame latency from a 1,000-frame and a 1-frame instance; study metadata
 * of a 1,000-instance study; and the server's RSS while it streams the 1 GiB instance back.
 */
import { buffer } from 'node:stream/consumers';
import { TableClient } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';
import { MultipartReader } from '../src/http/multipart-reader.js';
import { instanceRowKey, isInstanceBlobName, seriesRowKey, StudyRowKey } from '../src/storage/keys.js';
import type { InstanceKey } from '../src/storage/ports.js';
import { newInstanceUids } from '../support/dicom-builder.js';
import { type BenchContext, stowAll, withServer } from './context.js';
import { multiFrameInstance, tinyStudy } from './datasets.js';
import { call, expectStatus, type Answer } from './http-client.js';
import { deleteStudyTiming } from './delete-study.js';
import { watchOtherLoad } from './machine-load.js';
import { MiB, takingTurns, timed } from './measure.js';
import {
  perItem,
  summarize,
  timedResult,
  type SectionResult,
  type ServerRun,
  type TargetCheck,
  type OperationsFigure,
  type TimedResult,
  type WorkloadResult,
} from './report.js';
import type { ServerStorage, StorageTally } from './server-child.js';
import { syntheticSeries } from './workloads.js';

const ALL_SYNTAXES_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*';
const ALL_SYNTAXES_FRAMES = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';
const SINGLE_DICOM = 'application/dicom; transfer-syntax=*';
export const RSS_TARGET_MIB = 200;

/** The data the read sections share: stored once through the server, in their own container and table. */
export interface ReadData {
  readonly storage: ServerStorage;
  readonly series: { readonly key: InstanceKey; readonly count: number; readonly bytes: number } | undefined;
  readonly frames: { readonly multi: InstanceKey; readonly single: InstanceKey; readonly frames: number } | undefined;
  /** The 1,000-instance study of tiny instances (metadata latency, then the DELETE). */
  readonly bigStudy: { readonly studyInstanceUid: string; readonly count: number } | undefined;
  /** Instances stored in this table, i.e. change feed entries to expect. */
  readonly created: number;
}

/** Where the STOW workload left the large instance. */
export interface LargeStored {
  readonly storage: ServerStorage;
  readonly key: InstanceKey;
  readonly bytes: number;
}

const instanceUrl = (base: string, key: InstanceKey): string =>
  `${base}/v2/studies/${key.studyInstanceUid}/series/${key.seriesInstanceUid}/instances/${key.sopInstanceUid}`;

/** Drains a blob download, returning its byte count. */
async function downloadBlob(container: ContainerClient, name: string, offset = 0, count?: number): Promise<number> {
  const response = await container.getBlobClient(name).download(offset, count, { maxRetryRequests: 3 });
  let bytes = 0;
  for await (const chunk of response.readableStreamBody as AsyncIterable<Buffer>) bytes += chunk.byteLength;
  return bytes;
}

/** A whole blob in one GET. */
async function downloadBytes(container: ContainerClient, name: string): Promise<Buffer> {
  const response = await container.getBlobClient(name).download(0, undefined, { maxRetryRequests: 3 });
  return response.readableStreamBody ? buffer(response.readableStreamBody) : Buffer.alloc(0);
}

/** Instance blob names (not sidecars) under a prefix. */
async function instanceBlobs(container: ContainerClient, prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of container.listBlobsFlat({ prefix })) {
    if (isInstanceBlobName(blob.name)) names.push(blob.name);
  }
  return names;
}

/** The parts of a multipart answer (its boundary from Content-Type), for checks. */
async function partsOf(answer: Answer): Promise<Buffer[]> {
  const boundary = /boundary="?([^";]+)"?/.exec(String(answer.headers['content-type']))?.[1];
  if (!boundary || !answer.body) throw new Error(`not a multipart answer: ${String(answer.headers['content-type'])}`);
  const body = answer.body;
  async function* once(): AsyncGenerator<Uint8Array> {
    await Promise.resolve();
    yield body;
  }
  const parts: Buffer[] = [];
  for await (const part of new MultipartReader(once(), boundary).parts()) {
    const chunks: Uint8Array[] = [];
    for await (const chunk of part.body) chunks.push(chunk);
    parts.push(Buffer.concat(chunks));
  }
  return parts;
}

/** Stores the read sections' data through one server: the series, the two frame instances, the big study. */
export async function loadReadData(
  context: BenchContext,
  storage: ServerStorage,
  parts: { series: boolean; frames: boolean; bigStudy: boolean },
): Promise<{ data: ReadData; timings: TimedResult[] }> {
  const { settings } = context;
  return withServer(storage, settings.concurrency, async (server, agent) => {
    let created = 0;
    const timings: TimedResult[] = [];
    let series: ReadData['series'];
    if (parts.series) {
      context.progress(`w: storing a ${settings.seriesInstances}-instance CT series`);
      const key = newInstanceUids();
      const files = syntheticSeries(settings.seriesInstances, key);
      await stowAll(agent, server.baseUrl, files, 10, settings.concurrency);
      series = { key, count: files.length, bytes: files.reduce((sum, file) => sum + file.byteLength, 0) };
      created += files.length;
    }
    let frames: ReadData['frames'];
    if (parts.frames) {
      context.progress('w: storing a 1,000-frame and a 1-frame instance');
      const multi = newInstanceUids();
      const single = newInstanceUids();
      const files = [multiFrameInstance(multi, 1000).bytes, multiFrameInstance(single, 1).bytes];
      await stowAll(agent, server.baseUrl, files, 1, 1);
      frames = { multi, single, frames: 1000 };
      created += 2;
    }
    let bigStudy: ReadData['bigStudy'];
    if (parts.bigStudy) {
      const count = settings.bigStudyInstances;
      context.progress(`w: storing a ${count}-instance study (multipart ×50, ${settings.concurrency} clients)`);
      const study = tinyStudy(count);
      const otherLoad = watchOtherLoad();
      const seconds = await stowAll(agent, server.baseUrl, study.files, 50, settings.concurrency);
      timings.push(
        timedResult(
          {
            id: 'w0',
            title: `STOW ${count} tiny instances into one study`,
            method: `${count} instances of ~1 KiB (no Pixel Data) of one study, multipart/related requests of 50, ${settings.concurrency} concurrent clients: all writers race for the same study row (optimistic concurrency), so this is the contended case`,
          },
          [seconds * 1000],
          undefined,
          otherLoad(),
          { value: count / seconds, unit: 'inst/s' },
        ),
      );
      bigStudy = { studyInstanceUid: study.studyInstanceUid, count };
      created += count;
    }
    return { data: { storage, series, frames, bigStudy, created }, timings };
  });
}

/** A deterministic pseudo-random sequence (frame numbers), so runs ask for the same frames. */
function lcg(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return Math.floor((state / 2147483648) * n);
  };
}

async function seriesRetrieve(
  context: BenchContext,
  data: ReadData,
  container: ContainerClient,
): Promise<{ workload: WorkloadResult; check: TargetCheck }> {
  const series = data.series as NonNullable<ReadData['series']>;
  const { settings } = context;
  const otherLoad = watchOtherLoad();
  const prefix = `${series.key.studyInstanceUid}/${series.key.seriesInstanceUid}/`;
  const names = await instanceBlobs(container, prefix);
  if (names.length !== series.count) throw new Error(`${prefix} holds ${names.length} instances, not ${series.count}`);
  const runs: ServerRun[] = [];
  const rawSeconds: number[] = [];
  await withServer(data.storage, 1, async (server, agent) => {
    const url = `${server.baseUrl}/v2/studies/${series.key.studyInstanceUid}/series/${series.key.seriesInstanceUid}`;
    const headers = { accept: ALL_SYNTAXES_DICOM };
    // Untimed: warms the connection and checks every instance comes back whole.
    const check = expectStatus(await call(agent, url, { headers, keep: true }), 200, 'the series retrieve');
    const parts = await partsOf(check);
    const partBytes = parts.reduce((sum, part) => sum + part.byteLength, 0);
    if (parts.length !== series.count || partBytes !== series.bytes) {
      throw new Error(
        `the series retrieve gave ${parts.length} parts of ${partBytes} bytes, not ${series.count} of ${series.bytes}`,
      );
    }
    const server1 = async (): Promise<void> => {
      await server.resetPeak();
      const { ms, value } = await timed(() => call(agent, url, { headers }));
      expectStatus(value, 200, 'the series retrieve');
      const memory = await server.memory();
      runs.push({
        seconds: ms / 1000,
        baselineRssBytes: server.baselineRssBytes,
        peakRssBytes: memory.peakRssBytes,
        otherBlobs: 0,
        otherBlobBytes: 0,
      });
    };
    const raw1 = async (): Promise<void> => {
      const { ms, value } = await timed(async () => {
        let bytes = 0;
        for (const name of names) bytes += await downloadBlob(container, name);
        return bytes;
      });
      if (value !== series.bytes) throw new Error(`raw series download gave ${value} bytes, not ${series.bytes}`);
      rawSeconds.push(ms / 1000);
    };
    for (let run = 1; run <= settings.readRepeats; run++) {
      await takingTurns(run - 1, server1, raw1);
      context.progress(
        `w1 run ${run}/${settings.readRepeats}: server ${runs.at(-1)?.seconds.toFixed(3) ?? '?'} s, raw ${rawSeconds.at(-1)?.toFixed(3) ?? '?'} s`,
      );
    }
  });
  const workload = summarize(
    {
      id: 'w1',
      title: 'WADO series retrieve, multipart',
      method: `GET of the whole ${series.count}-instance CT series (the b-workload's kind of instances, stored here through the server) as ${ALL_SYNTAXES_DICOM}, one client, body counted and dropped; raw = the same ${series.count} instance blobs downloaded one after another with BlobClient.download (the server also streams them one at a time); median of ${settings.readRepeats}, taking turns; bytes are instance bytes (multipart framing excluded)`,
      concurrency: 1,
    },
    series.count,
    series.bytes,
    runs,
    rawSeconds,
    otherLoad(),
  );
  return {
    workload,
    check: {
      name: 'w1 WADO series retrieve vs raw',
      value: `ratio ${workload.ratio.toFixed(2)}`,
      target: '≥ 0.8',
      met: workload.ratio >= 0.8,
    },
  };
}

async function frameLatency(
  context: BenchContext,
  data: ReadData,
  table: TableClient,
  container: ContainerClient,
): Promise<{ timings: TimedResult[]; checks: TargetCheck[] }> {
  const frames = data.frames as NonNullable<ReadData['frames']>;
  const requests = context.settings.frameRequests;
  const otherLoad = watchOtherLoad();
  const pixelOffset = async (key: InstanceKey): Promise<{ blobName: string; offset: number }> => {
    const row = await table.getEntity<{ blobName: string; pixelDataOffset: number }>(
      key.studyInstanceUid,
      instanceRowKey(key),
    );
    return { blobName: row.blobName, offset: row.pixelDataOffset };
  };
  const multiBlob = await pixelOffset(frames.multi);
  const singleBlob = await pixelOffset(frames.single);
  const frameBytes = 64 * 64 * 2;
  let frameOps: OperationsFigure | undefined;
  const samples = {
    multi: [] as number[],
    single: [] as number[],
    rawMulti: [] as number[],
    rawSingle: [] as number[],
    floor: [] as number[],
  };
  // The floor of any server that keeps the visibility rule: the three point reads a remembered
  // frame needs (docs/storage.md, "Frames") and the ranged read, all at once from this client.
  const visibleFloor = async (key: InstanceKey, blob: { blobName: string; offset: number }): Promise<number> => {
    const select = (name: string) => ({ queryOptions: { select: [name] } });
    const { ms, value } = await timed(async () => {
      const [bytes] = await Promise.all([
        downloadBlob(container, blob.blobName, blob.offset, frameBytes),
        table.getEntity(key.studyInstanceUid, instanceRowKey(key), select('version')),
        table.getEntity(key.studyInstanceUid, seriesRowKey(key.seriesInstanceUid), select('deleting')),
        table.getEntity(key.studyInstanceUid, StudyRowKey, select('deleting')),
      ]);
      return bytes;
    });
    if (value !== frameBytes) throw new Error(`the floor's frame read gave ${value} bytes`);
    return ms;
  };
  await withServer(data.storage, 1, async (server, agent) => {
    const headers = { accept: ALL_SYNTAXES_FRAMES };
    const get = async (key: InstanceKey, frame: number): Promise<number> => {
      const { ms, value } = await timed(() =>
        call(agent, `${instanceUrl(server.baseUrl, key)}/frames/${frame}`, { headers }),
      );
      expectStatus(value, 200, `frame ${frame}`);
      if (value.bytes < frameBytes) throw new Error(`frame ${frame} came back with ${value.bytes} bytes`);
      return ms;
    };
    const raw = async (blob: { blobName: string; offset: number }, frame: number): Promise<number> => {
      const { ms, value } = await timed(() =>
        downloadBlob(container, blob.blobName, blob.offset + (frame - 1) * frameBytes, frameBytes),
      );
      if (value !== frameBytes) throw new Error(`raw frame read gave ${value} bytes`);
      return ms;
    };
    // Untimed: one frame of each checked whole, and the connections warmed.
    for (const key of [frames.multi, frames.single]) {
      const answer = expectStatus(
        await call(agent, `${instanceUrl(server.baseUrl, key)}/frames/1`, { headers, keep: true }),
        200,
        'frame 1',
      );
      const parts = await partsOf(answer);
      if (parts.length !== 1 || parts[0]?.byteLength !== frameBytes) {
        throw new Error(`frame 1 came back as ${parts.length} parts of ${parts[0]?.byteLength ?? 0} bytes`);
      }
      await raw(key === frames.multi ? multiBlob : singleBlob, 1);
    }
    const next = lcg(42);
    await server.takeStorage();
    for (let i = 0; i < requests; i++) {
      const frame = 1 + next(frames.frames);
      samples.multi.push(await get(frames.multi, frame));
      samples.single.push(await get(frames.single, 1));
      samples.rawMulti.push(await raw(multiBlob, frame));
      samples.rawSingle.push(await raw(singleBlob, 1));
      samples.floor.push(await visibleFloor(frames.single, singleBlob));
    }
    frameOps = perItem(await server.takeStorage(), 2 * requests, 2 * requests); // the floor: one ranged Get Blob
  });
  const load = otherLoad();
  const method = (what: string) =>
    `${requests} sequential GET .../frames/{n} (${what}) with Accept ${ALL_SYNTAXES_FRAMES}, 64×64×16-bit frames (8 KiB), one keep-alive connection, taking turns with the other instance; raw = the frame's byte range read with BlobClient.download(offset, 8192)`;
  const multi = timedResult(
    {
      id: 'w2a',
      title: `frame of a ${frames.frames}-frame instance`,
      method: method(`n random in 1–${frames.frames}`),
    },
    samples.multi,
    samples.rawMulti,
    load,
    undefined,
    frameOps,
  );
  const single = timedResult(
    { id: 'w2b', title: 'frame of a 1-frame instance', method: method('n = 1') },
    samples.single,
    samples.rawSingle,
    load,
  );
  const floor = timedResult(
    {
      id: 'w2c',
      title: 'floor: 3 point reads + the range, at once',
      method: `${requests} times, from the bench's own clients: the frame's ranged read (as raw) together with the three point reads a server keeping the visibility rule needs (instance row's version, series and study rows' deletion marks, docs/storage.md "Frames"), all started at once; raw = the ranged read alone. What no server over this storage can beat`,
    },
    samples.floor,
    samples.rawSingle,
    load,
  );
  const p50 = multi.p50Ms / single.p50Ms;
  const p95 = multi.p95Ms / single.p95Ms;
  const ofRaw = single.raw ? single.p50Ms / single.raw.p50Ms : Number.NaN;
  return {
    timings: [multi, single, floor],
    checks: [
      {
        name: `w2 frame latency, ${frames.frames}-frame ÷ 1-frame`,
        value: `p50 ${p50.toFixed(2)}×, p95 ${p95.toFixed(2)}×`,
        target: '≤ 2×',
        met: p50 <= 2 && p95 <= 2,
      },
      {
        name: 'w2b frame of a 1-frame instance ÷ raw',
        value: `p50 ${ofRaw.toFixed(2)}× (floor w2c ${floor.raw ? (floor.p50Ms / floor.raw.p50Ms).toFixed(2) : '?'}×)`,
        target: '≤ 2× (issue #15)',
        met: ofRaw <= 2,
      },
    ],
  };
}

async function studyMetadata(
  context: BenchContext,
  data: ReadData,
  table: TableClient,
  container: ContainerClient,
): Promise<{ timing: TimedResult; check: TargetCheck }> {
  const study = data.bigStudy as NonNullable<ReadData['bigStudy']>;
  const runs = context.settings.metadataRuns;
  const otherLoad = watchOtherLoad();
  const server: number[] = [];
  const raw: number[] = [];
  let tally: StorageTally | undefined;
  await withServer(data.storage, 1, async (child, agent) => {
    const url = `${child.baseUrl}/v2/studies/${study.studyInstanceUid}/metadata`;
    const headers = { accept: 'application/dicom+json' };
    const check = expectStatus(await call(agent, url, { headers, keep: true }), 200, 'study metadata');
    const json = JSON.parse(check.body?.toString('utf8') ?? '[]') as unknown[];
    if (json.length !== study.count)
      throw new Error(`study metadata gave ${json.length} instances, not ${study.count}`);
    // The floor: the same response as one pre-built blob, read whole (the yardstick:
    // a study-level document maintained on write would cost exactly this).
    const document = `raw-study-metadata-${study.studyInstanceUid}.json`;
    await container.getBlockBlobClient(document).upload(check.body ?? Buffer.alloc(0), check.body?.length ?? 0);
    const rawRead = async (): Promise<number> => (await downloadBytes(container, document)).length;
    if ((await rawRead()) !== check.body?.length) throw new Error('the raw metadata document did not read back whole');
    await child.takeStorage();
    for (let run = 0; run < runs; run++) {
      const { ms, value } = await timed(() => call(agent, url, { headers }));
      expectStatus(value, 200, 'study metadata');
      server.push(ms);
      raw.push((await timed(rawRead)).ms);
    }
    tally = await child.takeStorage();
  });
  const timing = timedResult(
    {
      id: 'w4',
      title: `study metadata, ${study.count} instances`,
      method: `${runs} sequential GET /v2/studies/{study}/metadata (application/dicom+json) of a ${study.count}-instance study of tiny instances (checked once: ${study.count} objects); raw = the same response as one pre-built blob, downloaded whole (the floor a study-level document would reach); the server reads the study revision (one point read) and streams the saved document that its first read built (docs/storage.md, Metadata documents)`,
    },
    server,
    raw,
    otherLoad(),
    undefined,
    perItem(tally, runs, runs), // the floor: one Get Blob per request
  );
  return {
    timing,
    check: {
      name: `w4 study metadata (${study.count} instances)`,
      value: `p50 ${timing.p50Ms.toFixed(0)} ms, p95 ${timing.p95Ms.toFixed(0)} ms`,
      target: '< 1 s (p95), p50 ≤ 3× one blob read',
      met: timing.p95Ms < 1000 && timing.raw !== undefined && timing.p50Ms <= 3 * timing.raw.p50Ms,
    },
  };
}

async function largeRetrieve(
  context: BenchContext,
  large: LargeStored,
): Promise<{ workload: WorkloadResult; check: TargetCheck }> {
  const otherLoad = watchOtherLoad();
  const container = context.target.blobs.getContainerClient(large.storage.container);
  const [name] = await instanceBlobs(
    container,
    `${large.key.studyInstanceUid}/${large.key.seriesInstanceUid}/${large.key.sopInstanceUid}/`,
  );
  if (!name) throw new Error('the large instance blob is missing');
  let run: ServerRun | undefined;
  await withServer(large.storage, 1, async (server, agent) => {
    const url = instanceUrl(server.baseUrl, large.key);
    // Untimed warm-up: the same code path with a tiny answer.
    expectStatus(
      await call(agent, `${url}/metadata`, { headers: { accept: 'application/dicom+json' } }),
      200,
      'metadata',
    );
    await server.resetPeak();
    const { ms, value } = await timed(() => call(agent, url, { headers: { accept: SINGLE_DICOM } }));
    expectStatus(value, 200, 'the large retrieve');
    if (value.bytes !== large.bytes)
      throw new Error(`the large retrieve gave ${value.bytes} bytes, not ${large.bytes}`);
    const memory = await server.memory();
    run = {
      seconds: ms / 1000,
      baselineRssBytes: server.baselineRssBytes,
      peakRssBytes: memory.peakRssBytes,
      otherBlobs: 0,
      otherBlobBytes: 0,
    };
  });
  context.progress(`w3: server ${run?.seconds.toFixed(3) ?? '?'} s; raw download next`);
  const raw = await timed(() => downloadBlob(container, name));
  if (raw.value !== large.bytes) throw new Error(`raw large download gave ${raw.value} bytes`);
  const server = run as ServerRun;
  const workload = summarize(
    {
      id: 'w3',
      title: `retrieve the ${(large.bytes / MiB).toFixed(0)} MiB instance`,
      method: `GET of workload c's instance with Accept ${SINGLE_DICOM} from a fresh server process (warmed with one metadata GET, then the peak RSS reset), body counted and dropped as it arrived; raw = BlobClient.download of the blob, drained; one run each`,
      concurrency: 1,
    },
    1,
    large.bytes,
    [server],
    [raw.ms / 1000],
    otherLoad(),
  );
  const peakMiB = server.peakRssBytes / MiB;
  return {
    workload,
    check: {
      name: `w3 server peak RSS, ${(large.bytes / MiB).toFixed(0)} MiB retrieve`,
      value: `${peakMiB.toFixed(0)} MiB (idle ${(server.baselineRssBytes / MiB).toFixed(0)})`,
      target: `≤ ${RSS_TARGET_MIB} MiB`,
      met: peakMiB <= RSS_TARGET_MIB,
    },
  };
}

/** The WADO section over data loaded by loadReadData (and the STOW run's large instance). */
export async function wadoSection(
  context: BenchContext,
  data: ReadData,
  large: LargeStored | undefined,
): Promise<SectionResult> {
  const table = TableClient.fromConnectionString(context.target.connectionString, data.storage.table, {
    allowInsecureConnection: true,
  });
  const container = context.target.blobs.getContainerClient(data.storage.container);
  const workloads: WorkloadResult[] = [];
  const timings: TimedResult[] = [];
  const checks: TargetCheck[] = [];
  const notes: string[] = [];
  if (data.series) {
    context.progress('w1: series retrieve');
    const result = await seriesRetrieve(context, data, container);
    workloads.push(result.workload);
    checks.push(result.check);
  }
  if (data.frames) {
    context.progress('w2: frame latency');
    const result = await frameLatency(context, data, table, container);
    timings.push(...result.timings);
    checks.push(...result.checks);
  }
  if (large) {
    context.progress('w3: retrieve the large instance');
    const result = await largeRetrieve(context, large);
    workloads.push(result.workload);
    checks.push(result.check);
  } else {
    notes.push('w3 (retrieve of the large instance) needs workload c in the same run; skipped.');
  }
  if (data.series) {
    context.progress(`w5: DELETE of a ${context.settings.seriesInstances}-instance study`);
    const result = await deleteStudyTiming(context);
    timings.push(result.timing);
    checks.push(result.check);
  }
  if (data.bigStudy) {
    context.progress('w4: study metadata');
    const result = await studyMetadata(context, data, table, container);
    timings.push(result.timing);
    checks.push(result.check);
  }
  return { workloads, timings, qido: [], checks, notes };
}
