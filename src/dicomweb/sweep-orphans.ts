import { deleteInstanceBlobs, finishDelete } from './delete.js';
import type { Storage } from '../storage/ports.js';

export interface SweepResult {
  /** Blobs deleted because no index row refers to them. */
  readonly deletedBlobs: number;
  /** Pending notes cleared (including those of instances that were stored after all). */
  readonly clearedNotes: number;
}

/** A store that has not reached its index rows after this long has died (see docs/storage.md). */
export const DEFAULT_ORPHAN_AGE_MS = 15 * 60 * 1000;

/**
 * Finishes what crashed or failed stores left behind: for each old pending note, the blob is
 * deleted unless the index refers to exactly that version, then the note is cleared.
 */
export async function sweepOrphans(
  storage: Storage,
  olderThanMs = DEFAULT_ORPHAN_AGE_MS,
  now = new Date(),
): Promise<SweepResult> {
  let deletedBlobs = 0;
  let clearedNotes = 0;
  for await (const note of storage.pending.olderThan(new Date(now.getTime() - olderThanMs))) {
    if (note.kind === 'delete') {
      await finishDelete(storage, note);
    } else if (await storage.index.isReferenced(note.key, note.version)) {
      // Stored, but the request ended before its change feed entry was written.
      if (!(await storage.changeFeed.has('create', note.version))) {
        await storage.changeFeed.append([{ action: 'create', key: note.key, version: note.version }]);
      }
    } else {
      await deleteInstanceBlobs(storage, note.blobName);
      deletedBlobs += 1;
    }
    await storage.pending.remove(note);
    clearedNotes += 1;
  }
  return { deletedBlobs, clearedNotes };
}
