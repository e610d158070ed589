/**
 * Downloading a study, series or instance to a folder, as files named by UID:
 * `{dir}/{study}/{series}/{sop}.dcm`. The metadata says which instances to expect (and their
 * series); then each series is retrieved as one multipart stream (a study's series `concurrency`
 * at once: on Azure a response must finish within 230 s, so series are the safer unit), each part
 * written straight to disk under a temporary name and renamed once whole.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { Tags, text, type DicomJsonDataset } from './dicom-json.js';
import type { ResponsePart } from './multipart-parts.js';
import { META_PROBE_BYTES, readFileMeta } from './part10-meta.js';

export interface InstanceRef {
  readonly study: string;
  readonly series?: string | undefined;
  readonly instance?: string | undefined;
}

export interface DownloadedFile {
  readonly path: string;
  readonly seriesInstanceUid: string;
  readonly sopInstanceUid: string;
  readonly bytes: number;
}

export interface DownloadOptions {
  /** Series retrieved at once (default 2). */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  /** The number of instances the metadata lists, before the first byte is retrieved. */
  readonly onExpected?: (count: number) => void;
  readonly onBytes?: (bytes: number) => void;
  readonly onFile?: (file: DownloadedFile) => void;
}

export interface DownloadResult {
  /** Instances the metadata listed. */
  readonly expected: number;
  readonly files: readonly DownloadedFile[];
}

/** What downloading needs of the client (DicomwebClient has it). */
export interface Retrieves {
  retrieveMetadata(ref: InstanceRef, options?: { signal?: AbortSignal | undefined }): Promise<DicomJsonDataset[]>;
  retrieveParts(ref: InstanceRef, options?: { signal?: AbortSignal | undefined }): AsyncGenerator<ResponsePart>;
}

/** Writes one part to `dir`, named by the SOP Instance UID of its meta group. */
async function savePart(
  part: ResponsePart,
  dir: string,
  seriesInstanceUid: string,
  onBytes: (bytes: number) => void,
  signal: AbortSignal | undefined,
): Promise<DownloadedFile> {
  const temporary = join(dir, `.download-${randomBytes(6).toString('hex')}`);
  let head = Buffer.alloc(0);
  let bytes = 0;
  const watch = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (head.length < META_PROBE_BYTES)
        head = Buffer.concat([head, chunk.subarray(0, META_PROBE_BYTES - head.length)]);
      bytes += chunk.length;
      onBytes(chunk.length);
      callback(null, chunk);
    },
  });
  try {
    const body = Readable.fromWeb(part.body as import('node:stream/web').ReadableStream<Uint8Array>);
    await pipeline(body, watch, createWriteStream(temporary), signal ? { signal } : {});
    const check = readFileMeta(head);
    const sopInstanceUid = check.ok ? check.meta.sopInstanceUid : undefined;
    if (!sopInstanceUid)
      throw new Error(`A part of series ${seriesInstanceUid} is no DICOM file with a SOP Instance UID.`);
    const path = join(dir, `${sopInstanceUid}.dcm`);
    await rename(temporary, path);
    return { path, seriesInstanceUid, sopInstanceUid, bytes };
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

export async function downloadTo(
  client: Retrieves,
  ref: InstanceRef,
  dir: string,
  options: DownloadOptions = {},
): Promise<DownloadResult> {
  // The first failing series stops the others.
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const metadata = await client.retrieveMetadata(ref, { signal });
  const series = new Map<string, number>();
  for (const dataset of metadata) {
    const uid = text(dataset, Tags.SeriesInstanceUID) ?? ref.series ?? '';
    series.set(uid, (series.get(uid) ?? 0) + 1);
  }
  options.onExpected?.(metadata.length);
  const files: DownloadedFile[] = [];
  const onBytes = options.onBytes ?? (() => undefined);
  const fetchSeries = async (seriesInstanceUid: string): Promise<void> => {
    const target = join(dir, ref.study, seriesInstanceUid);
    await mkdir(target, { recursive: true });
    const parts = client.retrieveParts(
      { study: ref.study, series: seriesInstanceUid, instance: ref.instance },
      { signal },
    );
    for await (const part of parts) {
      const file = await savePart(part, target, seriesInstanceUid, onBytes, signal);
      files.push(file);
      options.onFile?.(file);
    }
  };
  const queue = [...series.keys()];
  const worker = async (): Promise<void> => {
    try {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) await fetchSeries(next);
    } catch (error) {
      stop.abort(error);
      throw error;
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 2, queue.length)) }, worker);
  const settled = await Promise.allSettled(workers);
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  return { expected: metadata.length, files };
}
