/**
 * Uploading many files: small files are batched into one multipart STOW request (fewer round
 * trips, fewer index transactions on the server), requests run `concurrency` at once, and each
 * answer is matched back to its files by SOP Instance UID, read from each file's meta group
 * before sending.
 *
 * Upload sessions (issue #16) will plug in through `largeInstances`: files of at least its
 * threshold go to its `upload` instead of STOW. Without it, every file goes through STOW.
 */
import { DicomwebHttpError } from './errors.js';
import type { DicomFile } from './scan.js';
import { fileSource, type InstanceSource } from './sources.js';
import type { InstanceOutcome, StoreResult } from './stow-result.js';

export interface FileOutcome extends InstanceOutcome {
  readonly file: DicomFile;
}

/** What uploading needs of the client (DicomwebClient has it). */
export interface Stores {
  store(
    sources: readonly InstanceSource[],
    options: { study?: string | undefined; signal?: AbortSignal | undefined; onBytes?: (bytes: number) => void },
  ): Promise<StoreResult>;
}

/** The seam for instances too large for one request (upload sessions). */
export interface LargeInstanceUploader {
  /** Files of at least this many bytes go to `upload`. */
  readonly threshold: number;
  upload(
    file: DicomFile,
    options: { signal: AbortSignal; onBytes: (bytes: number) => void; study?: string | undefined },
  ): Promise<InstanceOutcome>;
}

export interface UploadOptions {
  /** Requests in flight at once (default 4). */
  readonly concurrency?: number;
  /** Files are grouped into one request up to this many bytes (default 8 MiB); a larger file goes alone. */
  readonly batchBytes?: number;
  /** And up to this many files per request (default 10). */
  readonly batchInstances?: number;
  /** Store into this study only (`POST /studies/{study}`): other studies' instances fail with 43265. */
  readonly study?: string;
  readonly signal?: AbortSignal;
  /** Instance bytes as they are read for sending. */
  readonly onBytes?: (bytes: number) => void;
  /** Each file's outcome as soon as its request has been answered. */
  readonly onFile?: (outcome: FileOutcome) => void | Promise<void>;
  readonly largeInstances?: LargeInstanceUploader;
}

/**
 * Small batches: the server holds a request's small parts until its envelope closes before
 * writing them, so ten files per request keep sending and storing overlapped (bench section u).
 */
export const DEFAULT_BATCH_BYTES = 8 * 1024 * 1024;
export const DEFAULT_BATCH_INSTANCES = 10;

/** Groups files in order into batches of at most `bytes` and `count` (a file over `bytes` alone). */
export function batchFiles<T extends { readonly size: number }>(
  files: readonly T[],
  bytes: number,
  count: number,
): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let currentBytes = 0;
  for (const file of files) {
    if (current.length > 0 && (currentBytes + file.size > bytes || current.length >= count)) {
      batches.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(file);
    currentBytes += file.size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** The server's outcomes given to the files of the request, by SOP Instance UID, in order. */
export function matchOutcomes(files: readonly DicomFile[], result: StoreResult): FileOutcome[] {
  const byUid = new Map<string, InstanceOutcome[]>();
  const unnamed: InstanceOutcome[] = [];
  for (const outcome of result.instances) {
    if (outcome.sopInstanceUid === undefined) unnamed.push(outcome);
    else byUid.set(outcome.sopInstanceUid, [...(byUid.get(outcome.sopInstanceUid) ?? []), outcome]);
  }
  return files.map((file) => {
    const uid = file.meta.sopInstanceUid;
    const outcome = (uid === undefined ? undefined : byUid.get(uid)?.shift()) ?? unnamed.shift();
    if (outcome) return { file, ...outcome, sopInstanceUid: outcome.sopInstanceUid ?? uid };
    return {
      file,
      status: 'failed',
      sopInstanceUid: uid,
      comments: [`The server's answer (${result.httpStatus}) did not mention this instance.`],
    };
  });
}

/**
 * A request that failed as a whole. 401 and 403 stop the upload, and so does a network error
 * that outlasted the retries (every other request would wait out the same retries); any other
 * answer (413, 400, 500) fails the request's files and the upload goes on.
 */
function requestFailed(files: readonly DicomFile[], error: unknown): FileOutcome[] {
  if (!(error instanceof DicomwebHttpError) || error.status === 401 || error.status === 403) throw error;
  const message = `HTTP ${error.status}: ${error.body.trim() || 'no message'}`;
  return files.map((file) => ({
    file,
    status: 'failed',
    sopInstanceUid: file.meta.sopInstanceUid,
    comments: [message],
  }));
}

export async function uploadFiles(
  client: Stores,
  files: readonly DicomFile[],
  options: UploadOptions = {},
): Promise<FileOutcome[]> {
  const large = options.largeInstances;
  const isLarge = (file: DicomFile): boolean => large !== undefined && file.size >= large.threshold;
  const batches = [
    ...files.filter(isLarge).map((file) => [file]),
    ...batchFiles(
      files.filter((file) => !isLarge(file)),
      options.batchBytes ?? DEFAULT_BATCH_BYTES,
      options.batchInstances ?? DEFAULT_BATCH_INSTANCES,
    ),
  ];
  // A fatal error (401/403, cancellation) stops the other requests too.
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const onBytes = options.onBytes ?? (() => undefined);
  const results: FileOutcome[] = [];
  const send = async (batch: DicomFile[]): Promise<FileOutcome[]> => {
    try {
      const [first] = batch;
      if (large && first && batch.length === 1 && isLarge(first)) {
        return [{ file: first, ...(await large.upload(first, { signal, onBytes, study: options.study })) }];
      }
      const sources = batch.map((file) => fileSource(file.path, file.size));
      return matchOutcomes(batch, await client.store(sources, { study: options.study, signal, onBytes }));
    } catch (error) {
      if (signal.aborted) throw error;
      return requestFailed(batch, error);
    }
  };
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < batches.length; index = next++) {
      signal.throwIfAborted();
      const outcomes = await send(batches[index] as DicomFile[]);
      for (const outcome of outcomes) {
        results.push(outcome);
        await options.onFile?.(outcome);
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 4, batches.length)) }, worker);
  try {
    await Promise.all(
      workers.map((running) =>
        running.catch((error: unknown) => {
          stop.abort(error);
          throw error;
        }),
      ),
    );
  } catch (error) {
    // Let the other workers notice the stop before the caller sees the first error.
    await Promise.allSettled(workers);
    throw error;
  }
  return results;
}
