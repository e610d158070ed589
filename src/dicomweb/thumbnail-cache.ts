import { studyThumbnailsName, thumbnailCacheBlobName } from '../storage/keys.js';
import type { InstanceRecord, Storage } from '../storage/ports.js';
import type { FailureLog } from './errors.js';
import { withStudyRevision } from './metadata-document.js';
import { SizedLru } from '../util/sized-lru.js';

/**
 * Rendered thumbnails kept beside the instance: one append blob per stored version holding every
 * thumbnail rendered from it (one per frame, viewport and media type), so a worklist of 100
 * studies costs 100 small blob reads instead of 100 decodes. The blob is named after the version
 * (a re-stored instance never shows an older picture) and deleted with the instance's blobs.
 *
 * Entry layout: key length (uint16 BE), key (UTF-8), image length (uint32 BE), image bytes.
 * Appends are atomic blocks, so concurrent renders never interleave; two that race both append,
 * and the first entry of a key wins (the renders are identical).
 */

/** A cache blob past this size takes no more entries (a client cycling through viewports). */
export const THUMBNAIL_CACHE_LIMIT = 1024 * 1024;

/**
 * Cache blobs this process has read or written, kept in memory (at most 16 MiB, 4,096 blobs) so a
 * thumbnail asked for again costs no blob read: an instance version's blob is keyed by that
 * version (a replaced or deleted instance's is never asked for again: the index read comes first),
 * a study's or series' by the study revision it holds, which the request reads anyway. Another
 * process's entries are found in the blob as before.
 */
export class ThumbnailMemory {
  private readonly lru = new SizedLru<{ readonly revision: string; readonly cached: CachedThumbnails }>(
    4096,
    16 * 1024 * 1024,
    (entry) => entry.cached.size + 256,
  );

  get(name: string): { readonly revision: string; readonly cached: CachedThumbnails } | undefined {
    return this.lru.get(name);
  }

  set(name: string, revision: string, cached: CachedThumbnails): void {
    this.lru.set(name, { revision, cached });
  }
}

export interface CachedThumbnails {
  /** Bytes of the cache blob (0 when it does not exist yet). */
  readonly size: number;
  find(key: string): Uint8Array | undefined;
  /** Every entry, first of each key, in blob order. */
  readonly entries: ReadonlyMap<string, Uint8Array>;
}

function parse(raw: Uint8Array | undefined): CachedThumbnails {
  const entries = new Map<string, Uint8Array>();
  const bytes = raw ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength) : Buffer.alloc(0);
  let at = 0;
  while (at + 2 <= bytes.length) {
    const keyLength = bytes.readUInt16BE(at);
    const lengthAt = at + 2 + keyLength;
    if (lengthAt + 4 > bytes.length) break;
    const key = bytes.toString('utf8', at + 2, lengthAt);
    const imageLength = bytes.readUInt32BE(lengthAt);
    const end = lengthAt + 4 + imageLength;
    if (end > bytes.length) break;
    if (!entries.has(key)) entries.set(key, bytes.subarray(lengthAt + 4, end));
    at = end;
  }
  return { size: bytes.length, find: (key) => entries.get(key), entries };
}

/** The instance version's cached thumbnails: from memory, else one blob read. */
export async function readThumbnails(
  storage: Storage,
  instance: InstanceRecord,
  memory?: ThumbnailMemory,
): Promise<CachedThumbnails> {
  const name = thumbnailCacheBlobName(instance.blobName);
  const held = memory?.get(name);
  if (held) return held.cached;
  const cached = parse(await storage.blobs.readSmall(name));
  if (cached.size > 0) memory?.set(name, '', cached);
  return cached;
}

function entry(key: string, image: Uint8Array): Buffer {
  const keyBytes = Buffer.from(key, 'utf8');
  const header = Buffer.alloc(2 + keyBytes.length + 4);
  header.writeUInt16BE(keyBytes.length, 0);
  keyBytes.copy(header, 2);
  header.writeUInt32BE(image.length, 2 + keyBytes.length);
  return Buffer.concat([header, image]);
}

/**
 * Adds a thumbnail to the instance version's cache. A delete that removed the instance while it
 * was rendered may have deleted the blobs before this append created the cache blob: when the
 * index no longer refers to the version afterwards, the blob is removed again (a delete that
 * comes later deletes it with the instance's blobs).
 */
export async function cacheThumbnail(
  storage: Storage,
  instance: InstanceRecord,
  cached: CachedThumbnails,
  key: string,
  image: Uint8Array,
  memory?: ThumbnailMemory,
): Promise<void> {
  const bytes = entry(key, image);
  if (cached.size + bytes.length > THUMBNAIL_CACHE_LIMIT) return;
  const name = thumbnailCacheBlobName(instance.blobName);
  await storage.blobs.append(name, bytes, 'application/octet-stream', { likelyNew: cached.size === 0 });
  if (!(await storage.index.isReferenced(instance, instance.version))) {
    await storage.blobs.delete(name);
    return;
  }
  // What the blob holds now, as far as this process knows (a concurrent append is found in the blob by others).
  const entries = new Map(cached.entries);
  if (!entries.has(key)) entries.set(key, image);
  memory?.set(name, '', { size: cached.size + bytes.length, find: (wanted) => entries.get(wanted), entries });
}

/**
 * Study and series thumbnails: the pictures of their representative instance, kept in one blob
 * per study or series (`{study}/thumbnails`, `{study}/{series}/thumbnails`) that names the study
 * revision it was written at (InstanceIndex.studyRevision: every store, removal and deletion mark
 * changes it), read together with the revision (one point read and one blob read, in parallel;
 * the point read alone when this process holds the blob in memory, see ThumbnailMemory).
 * Entries of another revision are never served, so a new series, a removed instance or a delete
 * in progress is seen at once; the next render rewrites the blob. Study and series deletes
 * remove it with the metadata documents.
 */
const REVISION_KEY = '';

export interface LevelThumbnails {
  /** The study's revision now (undefined: no study row). */
  readonly revision: string | undefined;
  /** The blob's entries when it was written at that revision. */
  readonly current: CachedThumbnails | undefined;
}

export async function readLevelThumbnails(
  storage: Storage,
  studyInstanceUid: string,
  seriesInstanceUid: string | undefined,
  memory?: ThumbnailMemory,
): Promise<LevelThumbnails> {
  const name = studyThumbnailsName(studyInstanceUid, seriesInstanceUid);
  const held = memory?.get(name);
  if (held) {
    // Held in memory: the revision alone says whether it is still current (one point read).
    const revision = await storage.index.studyRevision(studyInstanceUid);
    if (revision !== undefined && revision === held.revision) return { revision, current: held.cached };
    return { revision, current: revision === undefined ? undefined : currentAt(revision, await readBlob()) };
  }
  const [revision, raw] = await withStudyRevision(storage, studyInstanceUid, name);
  return { revision, current: revision === undefined ? undefined : currentAt(revision, parse(raw)) };

  async function readBlob(): Promise<CachedThumbnails> {
    return parse(await storage.blobs.readSmall(name));
  }
  /** The blob's entries when it was written at `revision` (and kept in memory for the next request). */
  function currentAt(revision: string, cached: CachedThumbnails): CachedThumbnails | undefined {
    const written = cached.find(REVISION_KEY);
    if (!written || Buffer.from(written).toString('utf8') !== revision) return undefined;
    memory?.set(name, revision, cached);
    return cached;
  }
}

/**
 * Adds a picture to a study's or series' thumbnails, if the study is still at the revision the
 * picture was chosen at (otherwise it may show an instance that is gone). Best effort: a failure
 * only means the next request renders it again.
 */
export async function saveLevelThumbnail(
  storage: Storage,
  studyInstanceUid: string,
  seriesInstanceUid: string | undefined,
  read: LevelThumbnails,
  key: string,
  image: Uint8Array,
  log: FailureLog,
  memory?: ThumbnailMemory,
): Promise<void> {
  const { revision } = read;
  if (revision === undefined) return;
  try {
    if ((await storage.index.studyRevision(studyInstanceUid)) !== revision) return;
    const kept = [...(read.current?.entries ?? [])].filter(([name]) => name !== REVISION_KEY && name !== key);
    const parts = [entry(REVISION_KEY, Buffer.from(revision, 'utf8'))];
    let size = parts[0]?.length ?? 0;
    for (const [name, bytes] of [[key, image] as const, ...kept]) {
      const next = entry(name, bytes);
      if (size + next.length > THUMBNAIL_CACHE_LIMIT) break;
      parts.push(next);
      size += next.length;
    }
    const name = studyThumbnailsName(studyInstanceUid, seriesInstanceUid);
    const bytes = Buffer.concat(parts);
    await storage.blobs.writeSmall(name, bytes, 'application/octet-stream', {});
    memory?.set(name, revision, parse(bytes));
  } catch (error) {
    log(`saving the thumbnails of ${studyInstanceUid} failed; the next request renders them again`, error);
  }
}
