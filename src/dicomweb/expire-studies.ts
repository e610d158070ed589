import type { Storage } from '../storage/ports.js';
import { deleteExpiredStudy } from './delete.js';

export interface ExpirySweepResult {
  /** Studies this sweep deleted because their expiry had passed. */
  readonly deletedStudies: number;
  /** Expiry index rows handled (stale ones included: the study was stored again or deleted). */
  readonly clearedRows: number;
}

/** How often the hosts run the expiry sweep: a study is deleted at most this long after it expires. */
export const EXPIRY_SWEEP_INTERVAL_MS = 5 * 60 * 1000;

/**
 * Deletes the studies whose expiry (msdicom-expiry headers, docs/conformance.md "Study expiry")
 * is at or before `now`, each as a DELETE of the study would (change feed `delete` entries
 * included), never one whose study row says it expires later. Reads only the expiry index rows
 * due by `now` (docs/storage.md "Study expiry"), and removes each once handled; a crash leaves it
 * for the next sweep, and a delete it started is also resumed by the orphan sweep.
 */
export async function sweepExpiredStudies(storage: Storage, now = new Date()): Promise<ExpirySweepResult> {
  let deletedStudies = 0;
  let clearedRows = 0;
  for await (const pointer of storage.index.expiredBy(now)) {
    if (await deleteExpiredStudy(storage, pointer.studyInstanceUid, now)) deletedStudies += 1;
    await storage.index.dropExpiry(pointer);
    clearedRows += 1;
  }
  return { deletedStudies, clearedRows };
}
