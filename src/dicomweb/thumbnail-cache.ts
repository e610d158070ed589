import { thumbnailCacheBlobName } from '../storage/keys.js';
import type { InstanceRecord, Storage } from '../storage/ports.js';

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

export interface CachedThumbnails {
  /** Bytes of the cache blob (0 when it does not exist yet). */
  readonly size: number;
  find(key: string): Uint8Array | undefined;
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
  return { size: bytes.length, find: (key) => entries.get(key) };
}

/** The instance version's cached thumbnails: one blob read. */
export async function readThumbnails(storage: Storage, instance: InstanceRecord): Promise<CachedThumbnails> {
  return parse(await storage.blobs.readSmall(thumbnailCacheBlobName(instance.blobName)));
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
): Promise<void> {
  const bytes = entry(key, image);
  if (cached.size + bytes.length > THUMBNAIL_CACHE_LIMIT) return;
  const name = thumbnailCacheBlobName(instance.blobName);
  await storage.blobs.append(name, bytes, 'application/octet-stream', { likelyNew: cached.size === 0 });
  if (!(await storage.index.isReferenced(instance, instance.version))) await storage.blobs.delete(name);
}
