/**
 * A process that remembers an instance's frame table starts the frame's ranged read with the
 * index read (docs/storage.md, "Frames"). These scenarios check it never serves what it
 * remembers once the instance changed under it: another app over the same storage (a second
 * Functions instance) replaces the instance by PUT, rewrites it by bulk update, or deletes it,
 * and the first app must answer with the new bytes, or 404.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBulkUpdates } from '../../src/dicomweb/bulk-update.js';
import { StorageUnavailableError, type BlobStore, type InstanceKey, type Storage } from '../../src/storage/ports.js';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';
import { stowRequestInit } from '../../support/multipart.js';
import { serveStorage } from './server.js';

const OCTET = 'application/octet-stream; transfer-syntax=*';
const FRAME_BYTES = 8;

/** A 2×2 16-bit image whose one frame is FRAME_BYTES bytes of `fill`. */
function image(uids: InstanceKey, fill: number, patientName = 'Before^Change'): Buffer {
  const us = (value: number) => ({ vr: 'US', value: Buffer.from([value, 0]) });
  const file = buildInstance({
    ...uids,
    attributes: {
      '00100010': { vr: 'PN', value: patientName },
      '00280002': us(1),
      '00280004': { vr: 'CS', value: 'MONOCHROME2' },
      '00280010': us(2),
      '00280011': us(2),
      '00280100': us(16),
      '00280101': us(16),
      '00280102': us(15),
    },
    pixelBytes: FRAME_BYTES,
  });
  // Pixel Data is the last element: its value is the file's last bytes.
  return file.fill(fill, file.length - FRAME_BYTES);
}

/** The reader's storage, recording which blobs it reads and which versions it asks the index for. */
function watched(storage: Storage): {
  storage: Storage;
  reads: string[];
  versionChecks: number;
  failReads: number;
} {
  const seen = { reads: [] as string[], versionChecks: 0, failReads: 0 };
  const blobs = Object.create(storage.blobs) as BlobStore;
  blobs.read = (name, range, signal) => {
    seen.reads.push(name);
    if (seen.failReads > 0) {
      seen.failReads -= 1;
      return (async function* failing(): AsyncGenerator<Uint8Array> {
        await Promise.resolve();
        if (Date.now() > 0) throw new StorageUnavailableError('Storage did not complete a blob download.');
        yield new Uint8Array(0);
      })();
    }
    return storage.blobs.read(name, range, signal);
  };
  const index = Object.create(storage.index) as Storage['index'];
  index.visibleVersion = (key) => {
    seen.versionChecks += 1;
    return storage.index.visibleVersion(key);
  };
  return Object.assign(seen, { storage: { ...storage, blobs, index } });
}

/** The same storage, except that deleting blobs fails: a delete that stops after removing the index row. */
function blobDeletesFail(storage: Storage): Storage {
  const blobs = Object.create(storage.blobs) as BlobStore;
  const outage = () => Promise.reject(new StorageUnavailableError('Storage did not complete a blob delete.'));
  blobs.delete = outage;
  blobs.deleteMany = outage;
  return { ...storage, blobs };
}

export function describeFrameStaleness(label: string, open: () => Promise<Storage>): void {
  describe(`frames from a remembered frame table never go stale (${label})`, () => {
    let storage: Storage;
    let watch: ReturnType<typeof watched>;
    let reader: Awaited<ReturnType<typeof serveStorage>>;
    let writer: Awaited<ReturnType<typeof serveStorage>>;
    beforeAll(async () => {
      storage = await open();
      watch = watched(storage);
      reader = await serveStorage(watch.storage);
      writer = await serveStorage(storage);
    });
    afterAll(async () => {
      await reader.close();
      await writer.close();
    });

    const path = (uids: InstanceKey) =>
      `/v2/studies/${uids.studyInstanceUid}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`;
    const store = async (base: string, method: 'POST' | 'PUT', file: Buffer) => {
      const response = await fetch(`${base}/v2/studies`, { ...stowRequestInit([file]), method });
      expect(response.status).toBe(200);
    };
    const frame = async (uids: InstanceKey) => {
      const response = await fetch(`${reader.baseUrl}${path(uids)}/frames/1`, { headers: { accept: OCTET } });
      return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
    };
    /** Stores the instance through the writer and reads its frame twice through the reader: the second read is from memory. */
    const storeAndRemember = async (uids: InstanceKey, fill: number) => {
      await store(writer.baseUrl, 'POST', image(uids, fill));
      expect(await frame(uids)).toEqual({ status: 200, body: Buffer.alloc(FRAME_BYTES, fill) });
      const checks = watch.versionChecks;
      expect(await frame(uids)).toEqual({ status: 200, body: Buffer.alloc(FRAME_BYTES, fill) });
      expect(watch.versionChecks).toBe(checks + 1);
    };
    /** What the reader's next frame request read, and its answer. */
    const readAfterChange = async (uids: InstanceKey) => {
      watch.reads.length = 0;
      const answer = await frame(uids);
      return { ...answer, reads: [...watch.reads] };
    };

    it('an instance replaced by PUT: the new pixels, read from the new version', async () => {
      const uids = newInstanceUids();
      await storeAndRemember(uids, 0x11);
      const old = (await storage.index.getInstance(uids))?.blobName;
      await store(writer.baseUrl, 'PUT', image(uids, 0x22));
      const current = (await storage.index.getInstance(uids))?.blobName;
      expect(current).not.toBe(old);
      const answer = await readAfterChange(uids);
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual(Buffer.alloc(FRAME_BYTES, 0x22));
      expect(answer.reads.at(-1)).toBe(current);
      // The next request remembers the new version.
      expect((await readAfterChange(uids)).reads).toEqual([current]);
    });

    it('an instance rewritten by a bulk update: read from the new version, not the kept original', async () => {
      const uids = newInstanceUids();
      await storeAndRemember(uids, 0x33);
      const before = await storage.index.getInstance(uids);
      const response = await fetch(`${writer.baseUrl}/v2/studies/$bulkUpdate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          studyInstanceUids: [uids.studyInstanceUid],
          // A longer name moves Pixel Data: the remembered offset is wrong for the new blob.
          changeDataset: { '00100010': { vr: 'PN', Value: [{ Alphabetic: 'After^A^Much^Longer^Name' }] } },
        }),
      });
      expect(response.status).toBe(202);
      expect(await runBulkUpdates(storage, { owner: 'frame-staleness' })).toBeGreaterThanOrEqual(1);
      const after = await storage.index.getInstance(uids);
      expect(after?.originalBlobName).toBe(before?.blobName);
      expect(after?.pixelDataOffset).not.toBe(before?.pixelDataOffset);
      const answer = await readAfterChange(uids);
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual(Buffer.alloc(FRAME_BYTES, 0x33));
      expect(answer.reads.at(-1)).toBe(after?.blobName);
    });

    it('a deleted instance whose blob is still there (the delete stopped after the index): 404', async () => {
      const uids = newInstanceUids();
      await storeAndRemember(uids, 0x44);
      const blobName = (await storage.index.getInstance(uids))?.blobName ?? '';
      const halfDeleter = await serveStorage(blobDeletesFail(storage));
      try {
        const response = await fetch(`${halfDeleter.baseUrl}${path(uids)}`, { method: 'DELETE' });
        expect(response.status).toBe(503);
      } finally {
        await halfDeleter.close();
      }
      expect(await storage.index.getInstance(uids)).toBeUndefined();
      expect(await storage.blobs.readSmall(blobName)).toBeDefined();
      const answer = await readAfterChange(uids);
      expect(answer.status).toBe(404);
      // Asked again, the memory holds nothing for it: the index alone answers.
      expect(await readAfterChange(uids)).toMatchObject({ status: 404, reads: [] });
    });

    it('a deleted instance (DELETE completed): 404', async () => {
      const uids = newInstanceUids();
      await storeAndRemember(uids, 0x55);
      const response = await fetch(`${writer.baseUrl}${path(uids)}`, { method: 'DELETE' });
      expect(response.status).toBe(204);
      expect((await readAfterChange(uids)).status).toBe(404);
    });

    it('a deleted instance asked for in a media type it cannot have: 404, as without the memory', async () => {
      const uids = newInstanceUids();
      await storeAndRemember(uids, 0x77);
      const response = await fetch(`${writer.baseUrl}${path(uids)}`, { method: 'DELETE' });
      expect(response.status).toBe(204);
      const refused = await fetch(`${reader.baseUrl}${path(uids)}/frames/1`, { headers: { accept: 'text/plain' } });
      expect(refused.status).toBe(404);
    });

    it('a read that fails while the index still names the version: read again the usual way', async () => {
      const uids = newInstanceUids();
      await storeAndRemember(uids, 0x88);
      const blobName = (await storage.index.getInstance(uids))?.blobName;
      watch.failReads = 1;
      const answer = await readAfterChange(uids);
      expect(answer).toEqual({ status: 200, body: Buffer.alloc(FRAME_BYTES, 0x88), reads: [blobName, blobName] });
    });

    it('an instance of a study being deleted (marked, rows not yet removed): 404', async () => {
      const uids = newInstanceUids();
      await storeAndRemember(uids, 0x66);
      expect(await storage.index.markDeleting(uids.studyInstanceUid, undefined)).toBe('marked');
      const answer = await readAfterChange(uids);
      expect(answer.status).toBe(404);
    });
  });
}
