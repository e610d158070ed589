import { metadataDocumentName } from '../storage/keys.js';
import type { Storage } from '../storage/ports.js';
import type { FailureLog } from './errors.js';

/**
 * Study and series metadata as one blob, built by the first read after a change and served
 * by later reads: a viewer opening a study asks for its metadata again and again, and one blob
 * read is several times faster than the query of the study's partition that builds it (Table
 * queries return the instance rows page by page, each with its compressed sidecar).
 *
 * The document names the study revision it was built at (InstanceIndex.studyRevision: the study
 * row's ETag, which every store, removal and deletion mark changes). A read takes it only while
 * the revision is still the same, so it never shows a removed instance or misses a new one;
 * a stale one is rebuilt and replaced by the next read.
 *
 * The blob holds the response body itself, links and all, with one placeholder for the versioned
 * base URL (which depends on the request), after a one-line header: serving it is one blob read
 * streamed through a byte scan, never a parse.
 */

/** A document as saved: the response body, with the version base URL still a placeholder. */
export interface MetadataDocument {
  /** The JSON array (UTF-8), every link starting with METADATA_BASE. */
  readonly body: string;
  /** The response's ETag (a digest of the instances' versions). */
  readonly etag: string;
  readonly instances: number;
}

/**
 * Stands for the versioned base URL in saved documents: a raw U+0001, which JSON text never holds
 * (JSON.stringify escapes control characters), so replacing it cannot touch a value.
 */
export const METADATA_BASE = '\u0001';
const BASE_BYTE = 0x01;

const CONTENT_TYPE = 'application/octet-stream';
/** First line: `md2\t{revision}\t{etag}\t{instances}\n`; then the body. (Format 1 documents read as stale.) */
const FORMAT = 'md2';
/** A header line longer than this is not one of ours. */
const MAX_HEADER = 1024;

/** The saved body, streamed with `base` put in for every METADATA_BASE. */
export async function* withVersionBase(
  chunks: AsyncIterable<Uint8Array>,
  base: string,
): AsyncGenerator<Uint8Array, void, undefined> {
  const baseBytes = Buffer.from(base, 'utf8');
  for await (const chunk of chunks) {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const parts: Buffer[] = [];
    let at = 0;
    for (let found = bytes.indexOf(BASE_BYTE); found >= 0; found = bytes.indexOf(BASE_BYTE, at)) {
      parts.push(bytes.subarray(at, found), baseBytes);
      at = found + 1;
    }
    if (at === 0) yield bytes;
    else {
      parts.push(bytes.subarray(at));
      yield Buffer.concat(parts);
    }
  }
}

/** A saved document that is current: its header, and its body still to stream. */
export interface CurrentDocument {
  readonly etag: string;
  readonly instances: number;
  /** The body's bytes (METADATA_BASE not yet replaced); read them to the end or cancel(). */
  readonly body: AsyncGenerator<Uint8Array, void, undefined>;
  readonly cancel: () => void;
}

export interface DocumentRead {
  /** The saved document, when it was built at the study's current revision. */
  readonly current: CurrentDocument | undefined;
  /** The study revision read alongside (undefined: no study row), for saving a rebuilt document. */
  readonly revision: string | undefined;
}

/** Reads chunks up to the header line's end; the header and the bytes after it. */
async function headerOf(
  chunks: AsyncGenerator<Uint8Array, void, undefined>,
): Promise<{ fields: string[]; rest: Buffer } | undefined> {
  let held = Buffer.alloc(0);
  for (;;) {
    const next = await chunks.next();
    if (next.done) return undefined;
    held = held.length === 0 ? Buffer.from(next.value) : Buffer.concat([held, next.value]);
    const end = held.indexOf(0x0a);
    if (end >= 0) return { fields: held.toString('utf8', 0, end).split('\t'), rest: held.subarray(end + 1) };
    if (held.length > MAX_HEADER) return undefined;
  }
}

async function* prepend(
  first: Uint8Array,
  rest: AsyncGenerator<Uint8Array, void, undefined>,
): AsyncGenerator<Uint8Array, void, undefined> {
  if (first.length > 0) yield first;
  yield* rest;
}

/** A blob kept for one study revision, read together with the study's revision now (in parallel). */
export function withStudyRevision(
  storage: Storage,
  studyInstanceUid: string,
  blobName: string,
): Promise<[string | undefined, Uint8Array | undefined]> {
  return Promise.all([storage.index.studyRevision(studyInstanceUid), storage.blobs.readSmall(blobName)]);
}

/**
 * The current document of a study or series, if there is one: the study's revision and the
 * document's first bytes are read at once (one point read, one blob download in parallel); the
 * body then streams, so a study of any size is served in bounded memory.
 */
export async function readMetadataDocument(
  storage: Storage,
  studyInstanceUid: string,
  seriesInstanceUid: string | undefined,
  signal?: AbortSignal,
): Promise<DocumentRead> {
  const name = metadataDocumentName(studyInstanceUid, seriesInstanceUid);
  const [revisionRead, opened] = await Promise.allSettled([
    storage.index.studyRevision(studyInstanceUid),
    storage.blobs.open(name, signal),
  ]);
  if (revisionRead.status === 'rejected') {
    if (opened.status === 'fulfilled') opened.value?.cancel();
    throw revisionRead.reason;
  }
  const revision = revisionRead.value;
  if (opened.status === 'rejected') throw opened.reason;
  const blob = opened.value;
  if (!blob) return { current: undefined, revision };
  try {
    const header = await headerOf(blob.chunks);
    const [format, builtAt, etag, count] = header?.fields ?? [];
    const instances = Number(count);
    if (!header || format !== FORMAT || revision === undefined || builtAt !== revision || !etag || !(instances > 0)) {
      blob.cancel();
      return { current: undefined, revision };
    }
    return { current: { etag, instances, body: prepend(header.rest, blob.chunks), cancel: blob.cancel }, revision };
  } catch (error) {
    blob.cancel();
    throw error;
  }
}

/**
 * Saves a document built from the index at `revision`, if the study is still at that revision
 * (otherwise the instances read may be a mix of two states). Best effort: a failure only means
 * the next read builds it again.
 */
export async function saveMetadataDocument(
  storage: Storage,
  studyInstanceUid: string,
  seriesInstanceUid: string | undefined,
  revision: string,
  document: MetadataDocument,
  log: FailureLog,
): Promise<void> {
  try {
    if ((await storage.index.studyRevision(studyInstanceUid)) !== revision) return;
    const header = `${FORMAT}\t${revision}\t${document.etag}\t${document.instances}\n`;
    const name = metadataDocumentName(studyInstanceUid, seriesInstanceUid);
    await storage.blobs.writeSmall(name, Buffer.from(header + document.body, 'utf8'), CONTENT_TYPE, {});
  } catch (error) {
    log(`saving the metadata document of ${studyInstanceUid} failed; the next read builds it again`, error);
  }
}
