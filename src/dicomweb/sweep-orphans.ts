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
 * Finishes what crashed or failed stores left behind, and removes the versions upserts replaced:
 * for each old pending note, the blob is deleted unless the index refers to exactly that version,
 * then the note is cleared. A replaced version's note waits like the others (`olderThanMs`), so a
 * reader that found that version just before the upsert can still read its blob.
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
      // Stored, but the request ended before its change feed entry was written. (A replace note
      // whose version is still referenced: the upsert did not replace it, and its blobs stay.)
      const action = note.action ?? 'create';
      if (note.kind !== 'replace' && !(await storage.changeFeed.has(action, note.version))) {
        await storage.changeFeed.append([{ action, key: note.key, version: note.version }]);
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
