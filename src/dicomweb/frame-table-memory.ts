import type { FrameRanges } from '../dicom/frame-table.js';
import { instanceRowKey } from '../storage/keys.js';
import type { InstanceKey, InstanceRecord } from '../storage/ports.js';
import { SizedLru } from '../util/sized-lru.js';

/**
 * What a frame request needs of one stored version besides the index's word that it is still the
 * visible one: where its frames are and how they are stored. A version's blob and sidecar never
 * change (an upsert or a bulk update writes a new version), so this stays true for as long as
 * the index names that version.
 */
export interface RememberedFrames {
  readonly version: string;
  readonly blobName: string;
  readonly transferSyntaxUid: string;
  /** Only the attribute the frame path reads (BitsAllocated: byte swapping, decoder limits). */
  readonly instance: Readonly<Record<string, string>>;
  readonly frames: readonly FrameRanges[];
}

const MAX_ENTRIES = 4096;
const MAX_BYTES = 8 * 1024 * 1024;
/** One huge frame table (a whole-slide image) would push out thousands of ordinary ones. */
const MAX_ENTRY_BYTES = MAX_BYTES / 16;

/** Rough heap bytes of an entry: arrays of [offset, length] pairs and the strings beside them. */
function sizeOf(entry: RememberedFrames): number {
  let bytes = 256 + 2 * (entry.version.length + entry.blobName.length + entry.transferSyntaxUid.length);
  for (const ranges of entry.frames) bytes += 48 + 40 * ranges.length;
  return bytes;
}

/**
 * The frame tables of instance versions this process served frames of (at most 4,096, 8 MiB), so
 * the next frame request of the same instance can start its ranged read while the index is
 * asked which version is visible (docs/storage.md, "Frames"). An entry only says where to read
 * speculatively: bytes are served only when the index answers with the same version.
 */
export class FrameTableMemory {
  private readonly lru = new SizedLru<RememberedFrames>(MAX_ENTRIES, MAX_BYTES, sizeOf);

  get(key: InstanceKey): RememberedFrames | undefined {
    return this.lru.get(memoryKey(key));
  }

  remember(instance: InstanceRecord, frames: readonly FrameRanges[]): void {
    const bitsAllocated = instance.instance['BitsAllocated'];
    const entry: RememberedFrames = {
      version: instance.version,
      blobName: instance.blobName,
      transferSyntaxUid: instance.transferSyntaxUid,
      instance: bitsAllocated === undefined ? {} : { BitsAllocated: bitsAllocated },
      frames,
    };
    if (sizeOf(entry) <= MAX_ENTRY_BYTES) this.lru.set(memoryKey(instance), entry);
  }

  forget(key: InstanceKey): void {
    this.lru.delete(memoryKey(key));
  }
}

function memoryKey(key: InstanceKey): string {
  return `${key.studyInstanceUid}|${instanceRowKey(key)}`;
}
