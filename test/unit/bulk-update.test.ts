import { describe, expect, it } from 'vitest';
import {
  MAX_ERRORS,
  runBulkUpdate,
  runBulkUpdates,
  startBulkUpdate,
  withErrors,
} from '../../src/dicomweb/bulk-update.js';
import { storeInstances } from '../../src/dicomweb/store.js';
import { createMemoryStorage } from '../../src/storage/memory-storage.js';
import type { Storage } from '../../src/storage/ports.js';
import { buildInstance, newInstanceUids, testUid } from '../../support/dicom-builder.js';

/** A study of `count` small instances stored in `storage`. */
async function storeStudy(storage: Storage, count: number): Promise<string> {
  const study = testUid();
  const files = Array.from({ length: count }, () => buildInstance({ ...newInstanceUids(study), pixelBytes: 8 }));
  async function* parts() {
    await Promise.resolve();
    for (const file of files) {
      yield {
        mediaType: 'application/dicom',
        body: (async function* () {
          await Promise.resolve();
          yield file;
        })(),
      };
    }
  }
  await storeInstances(storage, parts(), { apiVersion: 'v2', maxHeaderBytes: 1 << 20 });
  return study;
}

const newId = { tag: '00100020', vr: 'LO', value: 'MRN-2' };

describe('bulk update over the in-memory storage', () => {
  it('updates every instance once and keeps the original blob', async () => {
    const storage = createMemoryStorage();
    const study = await storeStudy(storage, 40);
    const before = await storage.index.listInstances(study);
    const operation = await startBulkUpdate(storage, { studyInstanceUids: [study], changes: [newId] });
    expect(await runBulkUpdates(storage, { owner: 'a' })).toBe(1);
    const after = await storage.index.listInstances(study);
    expect(after.map((each) => each.study['PatientID'])).toEqual(after.map(() => 'MRN-2'));
    expect(after.map((each) => each.updatedBy)).toEqual(after.map(() => operation.id));
    const originals = new Map(before.map((each) => [each.sopInstanceUid, each.blobName]));
    for (const instance of after) {
      expect(instance.originalBlobName).toBe(originals.get(instance.sopInstanceUid));
      expect(await storage.blobs.readSmall(instance.originalBlobName ?? '')).toBeDefined();
    }
    const entries = await storage.changeFeed.after(0, 1000);
    expect(entries.filter((entry) => entry.action === 'update')).toHaveLength(40);
    expect(await storage.operations.get(operation.id)).toMatchObject({ status: 'completed', instancesUpdated: 40 });
  });

  it('pauses at stopAt after a batch, gives up its lease and queues itself again; the next run finishes it', async () => {
    const queued: string[] = [];
    const storage = {
      ...createMemoryStorage(),
      operationQueue: {
        name: 'ops',
        send: (id: string) => Promise.resolve(void queued.push(id)),
        receive: () => Promise.resolve([]),
      },
    };
    const study = await storeStudy(storage, 70);
    const operation = await startBulkUpdate(storage, { studyInstanceUids: [study], changes: [newId] });
    expect(queued).toEqual([operation.id]);
    expect(await runBulkUpdate(storage, operation.id, { owner: 'a', stopAt: 0 })).toBe('paused');
    expect(queued).toEqual([operation.id, operation.id]);
    const paused = await storage.operations.get(operation.id);
    expect(paused).toMatchObject({ status: 'running', owner: '', leaseUntil: 0, instancesUpdated: 32 });
    // Another worker goes on at once (no lease to wait out); a round past its stopAt takes nothing.
    expect(await runBulkUpdates(storage, { owner: 'c', stopAt: 0 })).toBe(0);
    expect(await runBulkUpdate(storage, operation.id, { owner: 'b' })).toBe('finished');
    expect(await storage.operations.get(operation.id)).toMatchObject({ status: 'completed', instancesUpdated: 70 });
    const updates = (await storage.changeFeed.after(0, 1000)).filter((entry) => entry.action === 'update');
    expect(updates).toHaveLength(70);
  });
});

describe('withErrors', () => {
  it('keeps at most MAX_ERRORS, the last counting the rest, across saves', () => {
    const first = withErrors(
      [],
      Array.from({ length: 60 }, (_, i) => `e${i}`),
    );
    expect(first).toHaveLength(MAX_ERRORS);
    expect(first.at(-1)).toBe('… and 11 more errors.');
    const second = withErrors(first, ['x', 'y']);
    expect(second).toHaveLength(MAX_ERRORS);
    expect(second.at(-1)).toBe('… and 13 more errors.');
    expect(withErrors(['a'], ['b'])).toEqual(['a', 'b']);
    expect(withErrors([], ['z'.repeat(1000)])[0]?.length).toBe(300);
  });
});
