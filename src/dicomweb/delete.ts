import { newPendingGroup, newVersion, sidecarBlobName, thumbnailCacheBlobName } from '../storage/keys.js';
import {
  REMOVE_BATCH,
  type ChangeAction,
  type ChangeInput,
  type InstanceKey,
  type InstanceRecord,
  type MarkOutcome,
  type PendingBlob,
  type Storage,
  type VersionKey,
} from '../storage/ports.js';
import { DicomwebError } from './errors.js';
import type { RetrieveTarget } from './retrieve.js';
import { deleteSeriesMetadataBlobs } from './series-metadata.js';

const JOB = 'job-';

function noteOf(instance: InstanceRecord, createdAt: Date, group: string): PendingBlob {
  return {
    kind: 'delete',
    key: instance,
    version: instance.version,
    blobName: instance.blobName,
    originalBlobName: instance.originalBlobName,
    createdAt,
    group,
  };
}

/**
 * Instance blobs with their sidecars (those not kept in the index row) and thumbnail caches, for
 * one deleteMany; and the original a bulk update kept (with whatever sidecar it had).
 */
function withSidecars(
  instances: readonly Pick<InstanceRecord, 'blobName' | 'inlineSidecar' | 'originalBlobName'>[],
): string[] {
  return instances.flatMap(({ blobName, inlineSidecar, originalBlobName }) => [
    blobName,
    ...(inlineSidecar ? [] : [sidecarBlobName(blobName)]),
    thumbnailCacheBlobName(blobName),
    ...(originalBlobName
      ? [originalBlobName, sidecarBlobName(originalBlobName), thumbnailCacheBlobName(originalBlobName)]
      : []),
  ]);
}

/**
 * Removes an instance blob, its sidecar and its thumbnail cache (one request), and the original
 * a bulk update kept. The note covering them stays until all are gone, so a failure that leaves
 * one is finished by whoever takes up the note.
 */
export async function deleteInstanceBlobs(
  storage: Storage,
  blobName: string,
  originalBlobName?: string,
): Promise<void> {
  await storage.blobs.deleteMany(withSidecars([{ blobName, originalBlobName }]));
}

/**
 * The `delete` entries of removed versions, each after the entry that stored it (`create`, or
 * `update` for a version an upsert wrote). The store appends that entry when its request ends,
 * which may be after a concurrent delete has removed the version; so a missing one is appended
 * here first (the feed drops the store's later duplicate), and the feed never shows a deleted
 * instance as stored last.
 */
type Removed = VersionKey & Pick<InstanceRecord, 'replaces'>;

const actionOf = (key: Removed): ChangeAction => (key.replaces === undefined ? 'create' : 'update');

/**
 * Which of the versions' storing entries the feed has. Read while the rows are being removed: an
 * entry a store appends after this read is not lost, since appending it again here finds its
 * marker and the feed drops the duplicate.
 */
async function loggedStores(storage: Storage, removed: readonly Removed[]): Promise<Set<string>> {
  const logged = new Set<string>();
  for (const action of new Set(removed.map(actionOf))) {
    const versions = removed.filter((key) => actionOf(key) === action).map((key) => key.version);
    for (const version of await storage.changeFeed.logged(action, versions)) logged.add(version);
  }
  return logged;
}

async function logDeletes(storage: Storage, removed: readonly Removed[], logged: ReadonlySet<string>): Promise<void> {
  const changes: ChangeInput[] = [
    ...removed.flatMap((key) =>
      logged.has(key.version) ? [] : [{ action: actionOf(key), key: keyOf(key), version: key.version }],
    ),
    ...removed.map((key) => ({ action: 'delete' as const, key: keyOf(key), version: key.version })),
  ];
  await storage.changeFeed.append(changes);
}

function keyOf(key: VersionKey): InstanceKey {
  return {
    studyInstanceUid: key.studyInstanceUid,
    seriesInstanceUid: key.seriesInstanceUid,
    sopInstanceUid: key.sopInstanceUid,
  };
}

/**
 * Deletes instances in the order of docs/storage.md: a pending note per instance, the index rows
 * (one transaction per batch, counts kept exact), the change feed entries, the blobs, the notes.
 * A crash anywhere leaves notes from which sweepOrphans finishes the work. Every step is
 * idempotent, so concurrent deletes of the same instances each finish safely; the entries,
 * blobs and notes are handled for the whole batch (whoever removed the rows), and the number of
 * rows this call removed is returned. The listed versions were hidden (`hiddenOnly`) or visible
 * when read, and a hidden row cannot become visible again: after removeInstances none is left.
 */
async function deleteBatch(
  storage: Storage,
  studyInstanceUid: string,
  instances: readonly InstanceRecord[],
  hiddenOnly: boolean,
): Promise<number> {
  // The batch's notes share one partition (one creation time, one group), so they are written in
  // one transaction and removed in one.
  const createdAt = new Date();
  const group = newPendingGroup();
  const notes = instances.map((instance) => noteOf(instance, createdAt, group));
  await storage.pending.addAll(notes);
  const [removed, logged] = await Promise.all([
    storage.index.removeInstances(studyInstanceUid, instances, { hiddenOnly }),
    loggedStores(storage, instances),
  ]);
  // Every listed version is gone now, removed by this call or a concurrent one. The rest is done
  // in full either way: a concurrent delete may have written notes of its own for these versions
  // and removes them only once the work they stand for is done, whoever did it. No reader can
  // reach the versions any more, so their entries and their blobs go at once; the notes stay
  // until both are done.
  await Promise.all([logDeletes(storage, instances, logged), storage.blobs.deleteMany(withSidecars(instances))]);
  await storage.pending.removeAll(notes);
  return removed;
}

/**
 * Removes what a deletion mark hides, batch by batch, until nothing is left, then the series
 * metadata logs and the emptied rows (with the mark). Only hidden rows are removed, each
 * conditionally on the mark still being there: once the rows are dropped and the study is stored
 * again, a slow deleter can no longer touch the new instances.
 */
async function emptyMarked(storage: Storage, studyInstanceUid: string, seriesInstanceUid?: string): Promise<void> {
  const series = new Set<string>(seriesInstanceUid ? [seriesInstanceUid] : []);
  for (;;) {
    const instances = await storage.index.listForDeletion(studyInstanceUid, seriesInstanceUid);
    if (instances.length === 0) break;
    for (const instance of instances) series.add(instance.seriesInstanceUid);
    for (let i = 0; i < instances.length; i += REMOVE_BATCH) {
      await deleteBatch(storage, studyInstanceUid, instances.slice(i, i + REMOVE_BATCH), true);
    }
  }
  await deleteSeriesMetadataBlobs(storage, studyInstanceUid, series);
  await storage.index.dropEmpty(studyInstanceUid, seriesInstanceUid);
}

/**
 * DELETE of a study, series or instance (the Azure service's API), linearizable with stores and
 * other deletes. A study or series delete takes effect when its mark is set (one conditional
 * write): readers stop seeing it at once and no store into it commits; it is then emptied in
 * batches, and a job note lets the sweep resume a delete that was interrupted. Of concurrent
 * deletes of one resource exactly one sets the mark and answers 204; the others help empty it
 * and answer 404, as they would after it. 404 when nothing visible matched.
 */
export async function deleteResource(storage: Storage, target: RetrieveTarget): Promise<void> {
  const { studyInstanceUid, seriesInstanceUid, sopInstanceUid } = target;
  if (seriesInstanceUid && sopInstanceUid) {
    const instance = await storage.index.getInstance({ studyInstanceUid, seriesInstanceUid, sopInstanceUid });
    // Removed by this call, or by a concurrent delete of it (which answers 204 itself).
    if (!instance || (await deleteBatch(storage, studyInstanceUid, [instance], false)) === 0) {
      throw new DicomwebError('NotFound', 'The instance was not found.');
    }
    return;
  }
  const what = seriesInstanceUid ? 'series' : 'study';
  const outcome = await deleteMarked(storage, studyInstanceUid, seriesInstanceUid);
  if (outcome !== 'marked') throw new DicomwebError('NotFound', `The ${what} was not found.`);
}

/**
 * Deletes a study whose expiry (msdicom-expiry headers) is at or before `now`, as a DELETE would
 * (the same mark, steps and change feed entries); true when this call's mark took effect. A study
 * whose row no longer expires by then (stored again since, without or with a later expiry) or is
 * gone is left alone.
 */
export async function deleteExpiredStudy(storage: Storage, studyInstanceUid: string, now: Date): Promise<boolean> {
  return (await deleteMarked(storage, studyInstanceUid, undefined, { expiredBy: now })) === 'marked';
}

/**
 * A study or series delete: its job note (so the sweep resumes it), the mark, the emptying, and
 * the job note's removal. Hidden by another delete: helps it finish (it may have been interrupted).
 */
async function deleteMarked(
  storage: Storage,
  studyInstanceUid: string,
  seriesInstanceUid: string | undefined,
  options?: { readonly expiredBy?: Date },
): Promise<MarkOutcome> {
  const job: PendingBlob = {
    kind: 'delete',
    key: { studyInstanceUid, seriesInstanceUid: seriesInstanceUid ?? '', sopInstanceUid: '' },
    version: `${JOB}${newVersion()}`,
    blobName: '',
    createdAt: new Date(),
  };
  await storage.pending.add(job);
  const outcome = await storage.index.markDeleting(studyInstanceUid, seriesInstanceUid, options);
  if (outcome !== 'missing') await emptyMarked(storage, studyInstanceUid, seriesInstanceUid);
  await storage.pending.remove(job);
  return outcome;
}

/** Completes a delete from its pending note (sweepOrphans). */
export async function finishDelete(storage: Storage, note: PendingBlob): Promise<void> {
  if (note.version.startsWith(JOB)) {
    const { studyInstanceUid, seriesInstanceUid } = note.key;
    await emptyMarked(storage, studyInstanceUid, seriesInstanceUid || undefined);
    await storage.pending.remove(note);
    return;
  }
  const key: VersionKey = { ...note.key, version: note.version };
  await storage.index.removeInstances(key.studyInstanceUid, [key]);
  await logDeletes(storage, [key], await loggedStores(storage, [key]));
  await deleteInstanceBlobs(storage, note.blobName, note.originalBlobName);
  // A study or series delete interrupted before its last step has also left the series metadata
  // log and documents, and once the rows are gone its resumed job no longer knows the series: the
  // instance's note does. They are never needed for correctness, so they go whenever the series is
  // not visible (gone, emptied or still marked).
  const { studyInstanceUid, seriesInstanceUid } = note.key;
  if (!(await storage.index.getSeries(studyInstanceUid, seriesInstanceUid))) {
    await deleteSeriesMetadataBlobs(storage, studyInstanceUid, [seriesInstanceUid]);
  }
  await storage.pending.remove(note);
}
