/**
 * Rendered and thumbnail resources (BENCH_ONLY=r): a rendered JPEG of a 512×512 CT-like
 * instance and of one frame of a 100-frame instance, and study thumbnails cold (rendered and
 * cached) and cached, each next to the raw blob read of the same bytes with the SDK, taking turns.
 */
import { TableClient } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';
import type { Agent } from 'node:http';
import { instanceRowKey, studyThumbnailsName } from '../src/storage/keys.js';
import type { InstanceKey } from '../src/storage/ports.js';
import { buildInstance, newInstanceUids } from '../support/dicom-builder.js';
import { type BenchContext, freshStorage, stowAll, withServer } from './context.js';
import { call, expectStatus } from './http-client.js';
import { watchOtherLoad } from './machine-load.js';
import { MiB, timed } from './measure.js';
import {
  emptySection,
  perItem,
  timedResult,
  type SectionResult,
  type TargetCheck,
  type TimedResult,
} from './report.js';
import type { ServerChild, ServerStorage } from './server-child.js';
import { RSS_TARGET_MIB } from './wado.js';

const SIZE = 512;
const FRAME_BYTES = SIZE * SIZE * 2;
const FRAMES = 100;
const STUDIES = 30;
const CACHED_ROUNDS = 3;

const us = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return { vr: 'US', value: b };
};

/** A CT-like slice: air around a body disc of soft tissue with noise and a bone ring, in HU + 1024. */
function ctFrame(seed: number): Buffer {
  const pixels = Buffer.alloc(FRAME_BYTES);
  let state = seed * 2654435761;
  const noise = () => {
    state = (state * 1103515245 + 12345) >>> 0;
    return ((state >>> 16) % 41) - 20;
  };
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const r = Math.hypot(x - SIZE / 2, y - SIZE / 2);
      const hu = r > 220 ? -1000 : r > 205 ? 700 : 40 + 20 * Math.sin((x + seed) / 17) + noise();
      pixels.writeInt16LE(hu, (y * SIZE + x) * 2);
    }
  }
  return pixels;
}

function ctInstance(key: InstanceKey, frames: number): Buffer {
  // 16 distinct slices at most, repeated: a 1 GiB instance in seconds, not minutes.
  const slices = Array.from({ length: Math.min(frames, 16) }, (_, k) => ctFrame(k + 1));
  const pixels = Buffer.concat(Array.from({ length: frames }, (_, k) => slices[k % slices.length] as Buffer));
  return buildInstance({
    ...key,
    attributes: {
      '00280002': us(1),
      '00280004': { vr: 'CS', value: 'MONOCHROME2' },
      ...(frames > 1 ? { '00280008': { vr: 'IS', value: String(frames) } } : {}),
      '00280010': us(SIZE),
      '00280011': us(SIZE),
      '00280100': us(16),
      '00280101': us(16),
      '00280102': us(15),
      '00280103': us(1),
      '00281050': { vr: 'DS', value: '40' },
      '00281051': { vr: 'DS', value: '400' },
      '00281052': { vr: 'DS', value: '0' },
      '00281053': { vr: 'DS', value: '1' },
      '7FE00010': { vr: 'OW', value: pixels },
    },
  });
}

const instancePath = (key: InstanceKey) =>
  `/v2/studies/${key.studyInstanceUid}/series/${key.seriesInstanceUid}/instances/${key.sopInstanceUid}`;

async function drain(container: ContainerClient, name: string, offset = 0, count?: number): Promise<number> {
  const response = await container.getBlobClient(name).download(offset, count, { maxRetryRequests: 3 });
  let bytes = 0;
  for await (const chunk of response.readableStreamBody as AsyncIterable<Buffer>) bytes += chunk.byteLength;
  return bytes;
}

interface Located {
  readonly blobName: string;
  readonly pixelDataOffset: number;
}

/** Where the server stored an instance (its index row), for the raw reads. */
async function locate(storage: ServerStorage, key: InstanceKey): Promise<Located> {
  const table = TableClient.fromConnectionString(storage.connectionString, storage.table, {
    allowInsecureConnection: true,
  });
  return table.getEntity<Located>(key.studyInstanceUid, instanceRowKey(key));
}

interface Pair {
  readonly server: number[];
  readonly raw: number[];
}

async function jpegGet(agent: Agent, url: string): Promise<number> {
  const { ms, value } = await timed(() => call(agent, url, { headers: { accept: 'image/jpeg' } }));
  expectStatus(value, 200, url);
  return ms;
}

/**
 * The server's peak RSS while it renders frames of a BENCH_LARGE_MB multi-frame instance one by
 * one: each request reads and decodes one frame, so memory stays at one frame's worth.
 */
async function largeInstanceMemory(context: BenchContext, storage: ServerStorage): Promise<TargetCheck> {
  const frames = Math.max(1, Math.floor((context.settings.largeMiB * MiB) / FRAME_BYTES));
  const key = newInstanceUids();
  await withServer(storage, 1, async (server, agent) => {
    context.progress(`r5: storing a ${frames}-frame instance (${((frames * FRAME_BYTES) / MiB).toFixed(0)} MiB)`);
    await stowAll(agent, server.baseUrl, [ctInstance(key, frames)], 1, 1);
  });
  // A fresh server process renders, so the upload's memory is not in its figures.
  return withServer(storage, 1, async (server, agent) => {
    await jpegGet(agent, `${server.baseUrl}${instancePath(key)}/frames/1/rendered`); // warm-up
    const warm = await server.memory();
    await server.resetPeak();
    const requests = context.settings.frameRequests;
    let state = 11;
    for (let i = 0; i < requests; i++) {
      state = (state * 48271) % 2147483647;
      await jpegGet(agent, `${server.baseUrl}${instancePath(key)}/frames/${1 + (state % frames)}/rendered`);
    }
    const peakMiB = (await server.memory()).peakRssBytes / MiB;
    return {
      name: `r5 server peak RSS rendering ${requests} frames of a ${((frames * FRAME_BYTES) / MiB).toFixed(0)} MiB instance`,
      value: `${peakMiB.toFixed(0)} MiB (idle ${(server.baselineRssBytes / MiB).toFixed(0)}, after one render ${(warm.rssBytes / MiB).toFixed(0)})`,
      target: `≤ ${RSS_TARGET_MIB} MiB`,
      met: peakMiB <= RSS_TARGET_MIB,
    };
  });
}

export async function renderedSection(context: BenchContext): Promise<SectionResult> {
  const storage = freshStorage(context.target, 'render');
  const container = context.target.blobs.getContainerClient(storage.container);
  const requests = context.settings.frameRequests;
  const single = newInstanceUids();
  const multi = newInstanceUids();
  const studies = Array.from({ length: STUDIES }, () => newInstanceUids());
  const timings: TimedResult[] = [];
  const checks: TargetCheck[] = [];
  const otherLoad = watchOtherLoad();
  await withServer(storage, 1, async (server: ServerChild, agent: Agent) => {
    context.progress(
      `r: storing a ${SIZE}×${SIZE} CT slice, a ${FRAMES}-frame instance and ${STUDIES} one-slice studies`,
    );
    await stowAll(agent, server.baseUrl, [ctInstance(single, 1)], 1, 1);
    await stowAll(agent, server.baseUrl, [ctInstance(multi, FRAMES)], 1, 1);
    await stowAll(
      agent,
      server.baseUrl,
      studies.map((key) => ctInstance(key, 1)),
      10,
      2,
    );
    const singleAt = await locate(storage, single);
    const multiAt = await locate(storage, multi);
    // Warm-up (untimed): connections, JIT, sharp's first use.
    for (let i = 0; i < 3; i++) await jpegGet(agent, `${server.baseUrl}${instancePath(single)}/rendered`);
    await server.takeStorage();

    const slice: Pair = { server: [], raw: [] };
    const frame: Pair = { server: [], raw: [] };
    let state = 7;
    for (let i = 0; i < requests; i++) {
      slice.server.push(await jpegGet(agent, `${server.baseUrl}${instancePath(single)}/rendered`));
      slice.raw.push(
        (await timed(() => drain(container, singleAt.blobName, singleAt.pixelDataOffset, FRAME_BYTES))).ms,
      );
      state = (state * 48271) % 2147483647;
      const n = 1 + (state % FRAMES);
      frame.server.push(await jpegGet(agent, `${server.baseUrl}${instancePath(multi)}/frames/${n}/rendered`));
      const offset = multiAt.pixelDataOffset + (n - 1) * FRAME_BYTES;
      frame.raw.push((await timed(() => drain(container, multiAt.blobName, offset, FRAME_BYTES))).ms);
    }
    const renderOps = perItem(await server.takeStorage(), 2 * requests, 2 * requests);

    const cold: Pair = { server: [], raw: [] };
    const cached: Pair = { server: [], raw: [] };
    for (const key of studies) {
      const at = await locate(storage, key);
      cold.server.push(await jpegGet(agent, `${server.baseUrl}/v2/studies/${key.studyInstanceUid}/thumbnail`));
      cold.raw.push((await timed(() => drain(container, at.blobName, at.pixelDataOffset, FRAME_BYTES))).ms);
    }
    const coldOps = perItem(await server.takeStorage(), STUDIES, STUDIES);
    // Three rounds over the studies: 90 samples of a ~2 ms figure, so one stall moves the p50 less.
    for (let round = 0; round < CACHED_ROUNDS; round++) {
      for (const key of studies) {
        cached.server.push(await jpegGet(agent, `${server.baseUrl}/v2/studies/${key.studyInstanceUid}/thumbnail`));
        cached.raw.push((await timed(() => drain(container, studyThumbnailsName(key.studyInstanceUid)))).ms);
      }
    }
    const cachedOps = perItem(await server.takeStorage(), CACHED_ROUNDS * STUDIES, CACHED_ROUNDS * STUDIES);
    const load = otherLoad();
    const frameRaw = `raw = the frame's ${FRAME_BYTES / 1024} KiB byte range read with BlobClient.download(offset, count)`;
    timings.push(
      timedResult(
        {
          id: 'r1',
          title: `rendered JPEG of a ${SIZE}×${SIZE} CT slice`,
          method: `${requests} sequential GET .../instances/{uid}/rendered (Accept image/jpeg, the data set's window, quality 90), one keep-alive connection, taking turns with the raw read; ${frameRaw}`,
        },
        slice.server,
        slice.raw,
        load,
        undefined,
        renderOps,
      ),
      timedResult(
        {
          id: 'r2',
          title: `rendered JPEG of one frame of a ${FRAMES}-frame ${SIZE}×${SIZE} instance`,
          method: `${requests} sequential GET .../frames/{n}/rendered, n pseudo-random in 1–${FRAMES}; ${frameRaw}`,
        },
        frame.server,
        frame.raw,
        load,
      ),
      timedResult(
        {
          id: 'r3',
          title: 'study thumbnail, cold (rendered and cached)',
          method: `GET /studies/{uid}/thumbnail once for each of ${STUDIES} one-slice studies (128×128 JPEG); ${frameRaw}`,
        },
        cold.server,
        cold.raw,
        load,
        undefined,
        coldOps,
      ),
      timedResult(
        {
          id: 'r4',
          title: 'study thumbnail, cached',
          method: `the same ${STUDIES} thumbnails again, ${CACHED_ROUNDS} rounds; raw = the study’s thumbnails blob read whole with BlobClient.download()`,
        },
        cached.server,
        cached.raw,
        load,
        undefined,
        cachedOps,
      ),
    );
  });
  checks.push(await largeInstanceMemory(context, storage));
  const ratio = (id: string) => {
    const t = timings.find((timing) => timing.id === id);
    return t?.raw ? t.p50Ms / t.raw.p50Ms : Number.NaN;
  };
  checks.push(
    {
      name: 'r2 rendered frame p50 ÷ raw frame read p50',
      value: `${ratio('r2').toFixed(2)}×`,
      target: '≤ 4×',
      met: ratio('r2') <= 4,
    },
    {
      name: 'r4 cached thumbnail p50 ÷ raw cache blob read p50',
      value: `${ratio('r4').toFixed(2)}×`,
      target: '≤ 2×',
      met: ratio('r4') <= 2,
    },
  );
  context.progress(
    `r: rendered ${ratio('r1').toFixed(2)}×, frame ${ratio('r2').toFixed(2)}×, thumbnail cold ${ratio('r3').toFixed(2)}×, cached ${ratio('r4').toFixed(2)}× the raw read`,
  );
  return {
    ...emptySection(),
    timings,
    checks,
    notes: [
      'r: a rendered request reads the instance row (three point reads), the frame (one ranged Get Blob of the frame only), runs the pipeline and encodes with sharp; a study thumbnail reads the study revision and, unless this server process holds the study’s thumbnails blob in memory (it does after its first render: ThumbnailMemory), that blob in parallel; on a miss it lists the study, renders and rewrites the blob. The raw read is the same pixel bytes (or the cache blob) fetched with the SDK, without the index lookups, the rendering or the HTTP hop.',
    ],
  };
}
