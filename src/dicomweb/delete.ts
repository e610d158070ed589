import { newVersion, sidecarBlobName } from '../storage/keys.js';
import {
  REMOVE_BATCH,
  type InstanceKey,
  type InstanceRecord,
  type PendingBlob,
  type Storage,
} from '../storage/ports.js';
import { DicomwebError } from './errors.js';
import type { RetrieveTarget } from './retrieve.js';
import { deleteSeriesLog } from './series-metadata.js';

const JOB = 'job-';

function noteOf(instance: InstanceRecord): PendingBlob {
  return {
    kind: 'delete',
    key: instance,
    version: instance.version,
    blobName: instance.blobName,
    createdAt: new Date(),
  };
}

async function deleteBlobs(storage: Storage, blobName: string): Promise<void> {
  await storage.blobs.delete(blobName);
  await storage.blobs.delete(sidecarBlobName(blobName));
}

/**
 * Deletes instances in the order of docs/storage.md: a pending note per instance, the index rows
 * (one transaction per batch, counts kept exact), the change feed entries, the blobs, the notes.
 * A crash anywhere leaves notes from which sweepOrphans finishes the work.
 */
async function deleteBatch(
  storage: Storage,
  studyInstanceUid: string,
  instances: readonly InstanceRecord[],
): Promise<void> {
  const notes = instances.map(noteOf);
  await Promise.all(notes.map((note) => storage.pending.add(note)));
  await storage.index.removeInstances(studyInstanceUid, instances);
  await storage.changeFeed.append(
    instances.map((instance) => ({ action: 'delete', key: instance, version: instance.version })),
  );
  await Promise.all(instances.map((instance) => deleteBlobs(storage, instance.blobName)));
  await Promise.all(notes.map((note) => storage.pending.remove(note)));
}

/**
 * DELETE of a study, series or instance (the Azure service's API). A study or series is first
 * marked, so readers stop seeing it at once, then emptied in batches; a job note lets the sweep
 * resume a delete that was interrupted. 404 when nothing matched.
 */
export async function deleteResource(storage: Storage, target: RetrieveTarget): Promise<void> {
  const { studyInstanceUid, seriesInstanceUid, sopInstanceUid } = target;
  if (seriesInstanceUid && sopInstanceUid) {
    const instance = await storage.index.getInstance({ studyInstanceUid, seriesInstanceUid, sopInstanceUid });
    if (!instance) throw new DicomwebError('NotFound', 'The instance was not found.');
    await deleteBatch(storage, studyInstanceUid, [instance]);
    return;
  }
  const what = seriesInstanceUid ? 'series' : 'study';
  // Rows under a deletion mark count: a second DELETE finishes an interrupted one.
  let instances = await storage.index.listForDeletion(studyInstanceUid, seriesInstanceUid);
  if (instances.length === 0) throw new DicomwebError('NotFound', `The ${what} was not found.`);
  const job: PendingBlob = {
    kind: 'delete',
    key: { studyInstanceUid, seriesInstanceUid: seriesInstanceUid ?? '', sopInstanceUid: '' },
    version: `${JOB}${newVersion()}`,
    blobName: '',
    createdAt: new Date(),
  };
  await storage.pending.add(job);
  await storage.index.markDeleting(studyInstanceUid, seriesInstanceUid);
  const series = new Set<string>();
  while (instances.length > 0) {
    for (const instance of instances) series.add(instance.seriesInstanceUid);
    for (let i = 0; i < instances.length; i += REMOVE_BATCH) {
      await deleteBatch(storage, studyInstanceUid, instances.slice(i, i + REMOVE_BATCH));
    }
    // Anything stored just before the mark took effect is removed too.
    instances = await storage.index.listForDeletion(studyInstanceUid, seriesInstanceUid);
  }
  await Promise.all([...series].map((uid) => deleteSeriesLog(storage, studyInstanceUid, uid)));
  await storage.pending.remove(job);
}

/** Completes a delete from its pending note (sweepOrphans). */
export async function finishDelete(storage: Storage, note: PendingBlob): Promise<void> {
  if (note.version.startsWith(JOB)) {
    const { studyInstanceUid, seriesInstanceUid } = note.key;
    try {
      await deleteResource(storage, { studyInstanceUid, seriesInstanceUid: seriesInstanceUid || undefined });
    } catch (error) {
      if (!(error instanceof DicomwebError && error.status === 404)) throw error;
    }
    await storage.pending.remove(note);
    return;
  }
  const key: InstanceKey = note.key;
  if (await storage.index.isReferenced(key, note.version))
    await storage.index.removeInstances(key.studyInstanceUid, [key]);
  if (!(await storage.changeFeed.has('delete', note.version))) {
    await storage.changeFeed.append([{ action: 'delete', key, version: note.version }]);
  }
  await deleteBlobs(storage, note.blobName);
  await storage.pending.remove(note);
}
