/**
 * `DicomwebClient`: typed STOW-RS, WADO-RS, QIDO-RS, DELETE and change feed against one
 * DICOMweb base URL (this server's `/v1` or `/v2`, or any conformant server). Streams both ways;
 * retries 429, 503 and network errors (retry.ts); every call takes an AbortSignal.
 */
import {
  changeFeedEntry,
  CHANGE_FEED_PAGE,
  type ChangeFeedEntry,
  type ChangeFeedFollowOptions,
  type ChangeFeedPageOptions,
} from './change-feed.js';
import type { DicomJsonDataset } from './dicom-json.js';
import { downloadTo, type DownloadOptions, type DownloadResult, type InstanceRef } from './download.js';
import { multipartRelated } from './multipart-body.js';
import { boundaryOf, readParts, type ResponsePart } from './multipart-parts.js';
import { RESULT_READERS, type SearchLevel, type SearchResults } from './qido-results.js';
import { sleep } from './retry.js';
import { storeResult, type StoreResult } from './stow-result.js';
import { Transport, type TransportOptions } from './transport.js';
import type { DicomFile } from './scan.js';
import { sessionUploader, type SessionUploadOptions } from './upload-session.js';
import { fileSource, type InstanceSource } from './sources.js';
import {
  matchOutcomes,
  uploadFiles,
  type FileOutcome,
  type LargeInstanceUploader,
  type UploadOptions,
} from './upload.js';

export type ClientOptions = TransportOptions;

interface Signalled {
  readonly signal?: AbortSignal | undefined;
}

export interface StoreOptions extends Signalled {
  /** `POST /studies/{study}`: instances of other studies fail (43265). */
  readonly study?: string | undefined;
  readonly onBytes?: (bytes: number) => void;
}

export interface SearchQuery extends Signalled {
  /** Scope: `/studies/{study}/series`, `/studies/{study}/instances`, `/studies/{study}/series/{series}/instances`. */
  readonly study?: string | undefined;
  readonly series?: string | undefined;
  /** Attribute filters by keyword or tag: `{ PatientID: 'ID1', StudyDate: '20200101-' }`. */
  readonly filters?: Readonly<Record<string, string>>;
  readonly includeFields?: readonly string[];
  readonly fuzzyMatching?: boolean;
  readonly limit?: number;
  readonly offset?: number;
}

export interface SearchPage<L extends SearchLevel> {
  readonly results: SearchResults[L][];
  /** The server said more matches exist past this page (its Warning header). */
  readonly more: boolean;
}

export interface RetrieveOptions extends Signalled {
  /** `*` (default): as stored, byte for byte; or a transfer syntax UID to transcode to. */
  readonly transferSyntax?: string;
}

const DICOM_JSON = 'application/dicom+json';

function resourcePath(ref: InstanceRef): string {
  let path = `/studies/${encodeURIComponent(ref.study)}`;
  if (ref.series !== undefined) path += `/series/${encodeURIComponent(ref.series)}`;
  if (ref.instance !== undefined) {
    if (ref.series === undefined) throw new Error('An instance needs its series.');
    path += `/instances/${encodeURIComponent(ref.instance)}`;
  }
  return path;
}

function searchPath(level: SearchLevel, query: SearchQuery): string {
  if (query.series !== undefined) {
    if (query.study === undefined || level !== 'instances')
      throw new Error('A series scope needs a study and searches instances.');
    return `${resourcePath({ study: query.study, series: query.series })}/instances`;
  }
  if (query.study !== undefined) {
    if (level === 'studies') throw new Error('A study scope searches its series or instances.');
    return `${resourcePath({ study: query.study })}/${level}`;
  }
  return `/${level}`;
}

export class DicomwebClient {
  readonly transport: Transport;

  constructor(options: ClientOptions) {
    this.transport = new Transport(options);
  }

  get baseUrl(): string {
    return this.transport.baseUrl;
  }

  // STOW-RS

  /** Stores instances in one multipart/related request; the answer is one outcome per instance. */
  async store(sources: InstanceSource | readonly InstanceSource[], options: StoreOptions = {}): Promise<StoreResult> {
    const list = Array.isArray(sources) ? (sources as readonly InstanceSource[]) : [sources as InstanceSource];
    const body = multipartRelated(list);
    const response = await this.transport.send(options.study ? resourcePath({ study: options.study }) : '/studies', {
      method: 'POST',
      headers: { accept: DICOM_JSON, 'content-type': body.contentType },
      body: () => body.stream(options.onBytes),
      signal: options.signal,
      retry: list.every((source) => source.replayable),
      // 409 is an answer too: none stored, each failure in it.
      accept: (status) => status === 200 || status === 202 || status === 204 || status === 409,
    });
    const text = await response.text();
    return storeResult(response.status, text.trim() === '' ? undefined : (JSON.parse(text) as DicomJsonDataset));
  }

  /**
   * Uploads files (from `scanPaths`) in batched, concurrent STOW requests (upload.ts); files of
   * 64 MiB and more through upload sessions (upload-session.ts), or one STOW request each where
   * the server has none. `largeInstances` replaces that choice.
   */
  upload(files: readonly DicomFile[], options: UploadOptions = {}): Promise<FileOutcome[]> {
    return uploadFiles(this, files, { largeInstances: this.sessions(), ...options });
  }

  /** The session uploader `upload` uses, falling back to one STOW request per file. */
  sessions(options: Omit<SessionUploadOptions, 'fallback'> = {}): LargeInstanceUploader {
    return sessionUploader(this.transport, {
      ...options,
      fallback: async (file, { signal, onBytes, study }) => {
        const result = await this.store(fileSource(file.path, file.size), { signal, onBytes, study });
        const [outcome] = matchOutcomes([file], result);
        if (!outcome) throw new Error(`No outcome for ${file.path}.`);
        return outcome;
      },
    });
  }

  // WADO-RS

  async retrieveMetadata(ref: InstanceRef, options: Signalled = {}): Promise<DicomJsonDataset[]> {
    const response = await this.transport.send(`${resourcePath(ref)}/metadata`, {
      headers: { accept: DICOM_JSON },
      signal: options.signal,
    });
    return (await response.json()) as DicomJsonDataset[];
  }

  /** The instances of a study, series or instance as multipart parts, each to be read before the next. */
  async *retrieveParts(ref: InstanceRef, options: RetrieveOptions = {}): AsyncGenerator<ResponsePart> {
    yield* this.multipart(resourcePath(ref), 'application/dicom', options);
  }

  /** One instance as a stream of its Part 10 bytes. */
  async retrieveInstance(
    ref: Required<InstanceRef>,
    options: RetrieveOptions = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const response = await this.transport.send(resourcePath(ref), {
      headers: { accept: `application/dicom; transfer-syntax=${options.transferSyntax ?? '*'}` },
      signal: options.signal,
    });
    if (!response.body) throw new Error('The instance response had no body.');
    return response.body;
  }

  /** Frames (numbered from 1) as multipart parts of pixel data. */
  async *retrieveFrames(
    ref: Required<InstanceRef>,
    frames: readonly number[],
    options: RetrieveOptions = {},
  ): AsyncGenerator<ResponsePart> {
    yield* this.multipart(`${resourcePath(ref)}/frames/${frames.join(',')}`, 'application/octet-stream', options);
  }

  /** Writes a study, series or instance to `{dir}/{study}/{series}/{sop}.dcm`: download.ts. */
  download(ref: InstanceRef, dir: string, options: DownloadOptions = {}): Promise<DownloadResult> {
    return downloadTo(this, ref, dir, options);
  }

  private async *multipart(path: string, type: string, options: RetrieveOptions): AsyncGenerator<ResponsePart> {
    const response = await this.transport.send(path, {
      headers: { accept: `multipart/related; type="${type}"; transfer-syntax=${options.transferSyntax ?? '*'}` },
      signal: options.signal,
    });
    const boundary = boundaryOf(response.headers.get('content-type'));
    if (!response.body || boundary === undefined) {
      await response.body?.cancel();
      throw new Error(
        `${path} did not answer multipart/related (Content-Type ${response.headers.get('content-type') ?? 'none'}).`,
      );
    }
    yield* readParts(response.body, boundary);
  }

  // QIDO-RS

  async search<L extends SearchLevel>(level: L, query: SearchQuery = {}): Promise<SearchPage<L>> {
    const params = new URLSearchParams(Object.entries(query.filters ?? {}));
    if (query.includeFields?.length) params.set('includefield', query.includeFields.join(','));
    if (query.fuzzyMatching !== undefined) params.set('fuzzymatching', String(query.fuzzyMatching));
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.offset !== undefined) params.set('offset', String(query.offset));
    const search = params.size > 0 ? `?${params.toString()}` : '';
    const response = await this.transport.send(`${searchPath(level, query)}${search}`, {
      headers: { accept: DICOM_JSON },
      signal: query.signal,
    });
    // 204: a server configured as Azure's (DICOMWEB_QIDO_EMPTY_STATUS=204) has no match.
    const datasets = response.status === 204 ? [] : ((await response.json()) as DicomJsonDataset[]);
    const more = /more results than the limit/i.test(response.headers.get('warning') ?? '');
    const read = RESULT_READERS[level] as (dataset: DicomJsonDataset) => SearchResults[L];
    return { results: datasets.map(read), more };
  }

  /** Every match, page after page (`limit` per request, default 100). */
  async *searchAll<L extends SearchLevel>(level: L, query: SearchQuery = {}): AsyncGenerator<SearchResults[L]> {
    const limit = query.limit ?? 100;
    for (let offset = query.offset ?? 0; ; offset += limit) {
      const page = await this.search(level, { ...query, limit, offset });
      yield* page.results;
      if (!page.more || page.results.length === 0) return;
    }
  }

  // Delete

  /** Deletes a study, series or instance: true when this request deleted it, false when nothing matched (404). */
  async delete(ref: InstanceRef, options: Signalled = {}): Promise<boolean> {
    const response = await this.transport.send(resourcePath(ref), {
      method: 'DELETE',
      signal: options.signal,
      accept: (status) => (status >= 200 && status < 300) || status === 404,
    });
    await response.body?.cancel();
    return response.status !== 404;
  }

  // Change feed

  /** One page of entries after `after` (a Sequence). */
  async readChangeFeed(options: ChangeFeedPageOptions = {}): Promise<ChangeFeedEntry[]> {
    // v1's offset is the last Sequence seen; v2's is entries of the (all-time) window to skip,
    // which is the same number since Sequences start at 1 without gaps.
    const params = new URLSearchParams({
      offset: String(options.after ?? 0),
      limit: String(options.limit ?? CHANGE_FEED_PAGE),
      includemetadata: String(options.includeMetadata ?? false),
    });
    const response = await this.transport.send(`/changefeed?${params.toString()}`, {
      headers: { accept: 'application/json' },
      signal: options.signal,
    });
    return ((await response.json()) as unknown[]).map(changeFeedEntry);
  }

  /** The newest entry, or undefined when the feed is empty. */
  async latestChange(options: Signalled & { includeMetadata?: boolean } = {}): Promise<ChangeFeedEntry | undefined> {
    const response = await this.transport.send(
      `/changefeed/latest?includemetadata=${String(options.includeMetadata ?? false)}`,
      { headers: { accept: 'application/json' }, signal: options.signal },
    );
    if (response.status === 204) return undefined;
    return changeFeedEntry(await response.json());
  }

  /**
   * Entries in Sequence order, page after page; with `follow`, keeps polling at the end of the
   * feed until the signal aborts (then the iteration throws the abort reason).
   */
  async *changes(options: ChangeFeedFollowOptions = {}): AsyncGenerator<ChangeFeedEntry> {
    const limit = options.limit ?? CHANGE_FEED_PAGE;
    let after = options.after ?? 0;
    for (;;) {
      const page = await this.readChangeFeed({ ...options, after, limit });
      for (const entry of page) {
        yield entry;
        after = entry.sequence;
      }
      if (page.length === limit) continue;
      if (!options.follow) return;
      await sleep(options.pollIntervalMs ?? 2000, options.signal);
    }
  }
}
