/**
 * What each workload sends. The server and the raw ceiling get the same instance bytes: the
 * server as STOW requests, the raw uploader as one blob per instance.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { buildInstance, newInstanceUids } from '../support/dicom-builder.js';
import { dicomParts, multipartBody } from '../support/multipart.js';
import type { InstanceKey } from '../src/storage/ports.js';
import { MiB } from './measure.js';
import type { BenchSettings } from './settings.js';

/** Bytes to send: held in memory, or a file streamed from disk. */
export type Body =
  | { readonly kind: 'buffer'; readonly bytes: Buffer }
  | { readonly kind: 'file'; readonly path: string; readonly size: number };

export function bodySize(body: Body): number {
  return body.kind === 'buffer' ? body.bytes.byteLength : body.size;
}

export interface StowRequest {
  readonly body: Body;
  readonly contentType: string;
  /** Instances the server must report as stored. */
  readonly instances: number;
}

export interface PreparedWorkload {
  readonly requests: readonly StowRequest[];
  /** The instances inside the requests, one raw blob each. */
  readonly instances: readonly Body[];
  /** Their UIDs, when a later section reads them back (the large instance). */
  readonly keys?: readonly InstanceKey[];
  dispose(): Promise<void>;
}

export interface WorkloadPlan {
  readonly id: string;
  readonly title: string;
  /** How it is sent and measured, printed with the results. */
  readonly method: string;
  readonly repeats: number;
  readonly concurrency: number;
  prepare(): Promise<PreparedWorkload>;
}

const SINGLE = 'application/dicom';
/** The workload whose server memory the report singles out. */
export const LARGE_WORKLOAD = 'c';
const TUTORIAL_FILES = ['blue-circle', 'green-square', 'red-triangle'];
const TUTORIAL_DIR = join(import.meta.dirname, '..', 'test', 'fixtures', 'azure-samples');
/** 512 × 512 pixels of 16 bits: one CT slice. */
const SLICE_BYTES = 512 * 512 * 2;

const inMemory = (bytes: Buffer): Body => ({ kind: 'buffer', bytes });
const nothingToDispose = (): Promise<void> => Promise.resolve();

export function multipartRequest(files: readonly Buffer[]): StowRequest {
  const boundary = `bench${randomBytes(12).toString('hex')}`;
  return {
    body: inMemory(multipartBody(dicomParts(files), boundary)),
    contentType: `multipart/related; type="application/dicom"; boundary=${boundary}`,
    instances: files.length,
  };
}

async function tutorialFiles(): Promise<Buffer[]> {
  return Promise.all(TUTORIAL_FILES.map((name) => readFile(join(TUTORIAL_DIR, `${name}.dcm`))));
}

/**
 * A CT series with fresh UIDs, so it can be stored next to every other run's. Its SOP Instance
 * UIDs are the series UID and the instance number, as many modalities make them (so their search
 * pointers share a partition: docs/storage.md "Access paths for search").
 */
export function syntheticSeries(
  count: number,
  { studyInstanceUid, seriesInstanceUid }: { studyInstanceUid: string; seriesInstanceUid: string } = newInstanceUids(),
): Buffer[] {
  return Array.from({ length: count }, (_, i) =>
    buildInstance({
      studyInstanceUid,
      seriesInstanceUid,
      sopInstanceUid: `${seriesInstanceUid}.${i + 1}`,
      attributes: { '00200013': { vr: 'IS', value: String(i + 1) } },
      pixelBytes: SLICE_BYTES,
    }),
  );
}

/**
 * Writes a multi-frame instance of `pixelBytes` Pixel Data to `path` without holding it in
 * memory: the builder's header with an empty Pixel Data element, its length patched, then zeros.
 */
async function writeLargeInstance(path: string, pixelBytes: number): Promise<{ size: number; key: InstanceKey }> {
  const key = newInstanceUids();
  const header = buildInstance({
    ...key,
    attributes: { '00280008': { vr: 'IS', value: String(Math.ceil(pixelBytes / SLICE_BYTES)) } },
    pixelBytes: 0,
  });
  // The last element is (7FE0,0010) OW with a 4-byte length: 12 bytes of element header.
  const pixelHeader = header.subarray(header.length - 12);
  if (pixelHeader.readUInt16LE(0) !== 0x7fe0 || pixelHeader.readUInt16LE(2) !== 0x0010) {
    throw new Error('buildInstance no longer ends with the Pixel Data element; update writeLargeInstance.');
  }
  header.writeUInt32LE(pixelBytes, header.length - 4);
  const zeros = Buffer.alloc(16 * MiB);
  const file = await open(path, 'w');
  try {
    await file.write(header);
    for (let left = pixelBytes; left > 0; left -= zeros.length) {
      await file.write(zeros, 0, Math.min(left, zeros.length));
    }
  } finally {
    await file.close();
  }
  return { size: (await stat(path)).size, key };
}

export function workloadPlans(settings: BenchSettings, tempDir: string): WorkloadPlan[] {
  const { seriesInstances, largeMiB, tutorialRepeats, concurrency } = settings;
  const batch = 10;
  const fixedUids =
    `median of ${tutorialRepeats} runs, each against a fresh server process and a fresh container` +
    ' and table (the files have fixed UIDs, so a second store would be a 409)';
  return [
    {
      id: 'a1',
      title: 'tutorial files, 1 multipart request',
      method: `the 3 Azure tutorial files in one multipart/related request; ${fixedUids}`,
      repeats: tutorialRepeats,
      concurrency: 1,
      prepare: async () => {
        const files = await tutorialFiles();
        return { requests: [multipartRequest(files)], instances: files.map(inMemory), dispose: nothingToDispose };
      },
    },
    {
      id: 'a2',
      title: 'tutorial files, 3 single-part requests',
      method: `the 3 Azure tutorial files as 3 sequential application/dicom requests; ${fixedUids}`,
      repeats: tutorialRepeats,
      concurrency: 1,
      prepare: async () => {
        const files = await tutorialFiles();
        return {
          requests: files.map((bytes) => ({ body: inMemory(bytes), contentType: SINGLE, instances: 1 })),
          instances: files.map(inMemory),
          dispose: nothingToDispose,
        };
      },
    },
    {
      id: 'b1',
      title: `CT series, single-part, ${concurrency} clients`,
      method:
        `${seriesInstances} synthetic CT instances (512×512×16 bit, fresh UIDs), one application/dicom` +
        ` request each, ${concurrency} concurrent clients`,
      repeats: 1,
      concurrency,
      prepare: () => {
        const files = syntheticSeries(seriesInstances);
        const requests = files.map((bytes) => ({ body: inMemory(bytes), contentType: SINGLE, instances: 1 }));
        return Promise.resolve({ requests, instances: files.map(inMemory), dispose: nothingToDispose });
      },
    },
    {
      id: 'b2',
      title: `CT series, multipart ×${batch}, ${concurrency} clients`,
      method:
        `another ${seriesInstances} synthetic CT instances (fresh UIDs) in multipart/related requests of` +
        ` ${batch}, ${concurrency} concurrent clients`,
      repeats: 1,
      concurrency,
      prepare: () => {
        const files = syntheticSeries(seriesInstances);
        const requests: StowRequest[] = [];
        for (let i = 0; i < files.length; i += batch) requests.push(multipartRequest(files.slice(i, i + batch)));
        return Promise.resolve({ requests, instances: files.map(inMemory), dispose: nothingToDispose });
      },
    },
    {
      id: LARGE_WORKLOAD,
      title: `one ${largeMiB} MiB instance`,
      method:
        `one instance with ${largeMiB} MiB of Pixel Data, streamed from a temp file as one application/dicom` +
        ' request (Content-Length known)',
      repeats: 1,
      concurrency: 1,
      prepare: async () => {
        const path = join(tempDir, `large-${largeMiB}MiB.dcm`);
        const { size, key } = await writeLargeInstance(path, largeMiB * MiB);
        const body: Body = { kind: 'file', path, size };
        return {
          requests: [{ body, contentType: SINGLE, instances: 1 }],
          instances: [body],
          keys: [key],
          dispose: () => rm(path, { force: true }),
        };
      },
    },
  ];
}

/** A small instance sent before each timed run, so connection set-up and JIT warm-up are not timed. */
export function warmUpRequest(): StowRequest {
  return {
    body: inMemory(buildInstance({ ...newInstanceUids(), pixelBytes: 1024 })),
    contentType: SINGLE,
    instances: 1,
  };
}
