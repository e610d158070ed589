import { describe, expect, it } from 'vitest';
import { MAX_ERRORS, runBulkUpdates, startBulkUpdate, withErrors } from '../../src/dicomweb/bulk-update.js';
import { storeInstances } from '../../src/dicomweb/store.js';
import { createMemoryStorage } from '../../src/storage/memory-storage.js';
import { buildInstance, newInstanceUids, testUid } from '../../support/dicom-builder.js';

describe('bulk update over the in-memory storage', () => {
  it('updates every instance once and keeps the original blob', async () => {
    const storage = createMemoryStorage();
    const study = testUid();
    const files = Array.from({ length: 40 }, () => buildInstance({ ...newInstanceUids(study), pixelBytes: 8 }));
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
    const before = await storage.index.listInstances(study);
    const operation = await startBulkUpdate(storage, {
      studyInstanceUids: [study],
      changes: [{ tag: '00100020', vr: 'LO', value: 'MRN-2' }],
    });
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
