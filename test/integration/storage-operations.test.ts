/**
 * The storage round trips each kind of request makes today, pinned (docs/storage.md, "Operations
 * per request"). They are what Azure bills and what carries over from Azurite to Azure, so a
 * change that adds a round trip must fail here and update the table in the docs. One client and
 * fresh UIDs: no ETag race, so every count is exact. The steps run in order (the later ones read
 * and delete what the earlier ones stored).
 */
import { describe, expect, it } from 'vitest';
import { buildInstance, newInstanceUids, testUid } from '../../support/dicom-builder.js';
import { stowRequestInit } from '../../support/multipart.js';
import type { StorageCounts } from '../../src/util/storage-meter.js';
import { serveMetered, useMeteredServer } from '../helpers/server.js';

const server = useMeteredServer();

type Uids = ReturnType<typeof newInstanceUids>;

/** A 2×2 16-bit image with PatientName Test^Patient (two name words) and AccessionNumber, StudyDate, Modality set. */
const instance = (uids: Uids, patientId: string) =>
  buildInstance({
    ...uids,
    attributes: {
      '00100020': { vr: 'LO', value: patientId },
      '00280010': { vr: 'US', value: Buffer.from([2, 0]) },
      '00280011': { vr: 'US', value: Buffer.from([2, 0]) },
      '00280100': { vr: 'US', value: Buffer.from([16, 0]) },
    },
    pixelBytes: 8,
  });

async function stow(files: Buffer[]): Promise<StorageCounts> {
  const result = await server().call('/v2/studies', stowRequestInit(files));
  expect(result.status).toBe(200);
  return result.storage;
}

async function get(path: string, accept: string, status = 200): Promise<StorageCounts> {
  const result = await server().call(path, { headers: { accept } });
  expect(result.status).toBe(status);
  return result.storage;
}

async function remove(path: string): Promise<StorageCounts> {
  const result = await server().call(path, { method: 'DELETE' });
  expect(result.status).toBe(204);
  return result.storage;
}

const sum = (byKind: Readonly<Record<string, number>>) => Object.values(byKind).reduce((a, b) => a + b, 0);

/** Exact counts; bytes vary with UID lengths, so only their presence is checked. */
function expectCounts(
  counts: StorageCounts,
  expected: {
    byKind: Record<string, number>;
    batchEntities: number;
    entitiesRead: number;
    wrote: boolean;
    /**
     * Round trips in sequence (StorageCounts.inSequence): the request's storage latency. Left out
     * for a streaming retrieve, whose blob reads overlap or not as the client reads the body.
     */
    inSequence?: number;
  },
): void {
  expect(counts.byKind).toEqual(expected.byKind);
  expect(counts.operations).toBe(sum(expected.byKind));
  if (expected.inSequence !== undefined) expect(counts.inSequence).toBe(expected.inSequence);
  expect(counts.batchEntities).toBe(expected.batchEntities);
  expect(counts.entitiesRead).toBe(expected.entitiesRead);
  expect(counts.bytesRead).toBeGreaterThan(0);
  if (expected.wrote) expect(counts.bytesWritten).toBeGreaterThan(0);
  else expect(counts.bytesWritten).toBe(0);
}

const patientId = `PID-${testUid().slice(-12)}`;
const first = newInstanceUids();
const second = newInstanceUids(first.studyInstanceUid, first.seriesInstanceUid);
const bigStudy = testUid();
const bigSeries = testUid();
const instancePath = (uids: Uids) =>
  `/v2/studies/${uids.studyInstanceUid}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`;
const DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*';
const JSON_TYPE = 'application/dicom+json';

describe('storage operations per request (Azurite)', () => {
  it('STOW of one instance into a new study: 16', async () => {
    expectCounts(await stow([instance(first, patientId)]), {
      byKind: {
        'blob.put-blob': 1, // the instance's bytes, held until the envelope closed, in one Put Blob
        'table.query': 1, // prepareStudy: study, series and instance rows in one filter (none exist)
        'table.insert': 1, // the pending note
        'table.upsert': 9, // search pointers: PatientID, accession, 2 name words, StudyDate, recency, series, modality, SOP
        'table.get-entity': 1, // the feed counter
        'table.batch': 2, // the study partition's transaction (instance, series, study rows); the change feed append
        'table.delete': 1, // the pending note
      },
      batchEntities: 7, // 3 index rows + feed counter, entry, marker, time row
      entitiesRead: 0, // nothing existed; the feed counter is new too
      inSequence: 6, // [prepare ∥ note] [blob ∥ 9 pointers] [index] [feed counter] [feed] [note removal]
      wrote: true,
    });
  });

  it('STOW of one instance into an existing series: 7', async () => {
    expectCounts(await stow([instance(second, patientId)]), {
      byKind: {
        'blob.put-blob': 1,
        'table.query': 1, // the study and series rows and the duplicate check, in one filter
        'table.insert': 1,
        'table.upsert': 1, // the SOP pointer only: the other pointers exist
        // (no feed counter read: this process wrote the counter last, so its ETag is known)
        'table.batch': 2,
        'table.delete': 1,
      },
      batchEntities: 7,
      entitiesRead: 2, // study and series rows (the instance row is not there)
      inSequence: 5, // [prepare ∥ note] [blob ∥ SOP pointer] [index] [feed] [note removal]; 7 before
      wrote: true,
    });
  });

  it('PUT replacing one stored instance (same attributes): 6', async () => {
    const result = await server().call('/v2/studies', {
      ...stowRequestInit([instance(second, patientId)]),
      method: 'PUT',
    });
    expect(result.status).toBe(200);
    expectCounts(result.storage, {
      byKind: {
        'blob.put-blob': 1,
        'table.query': 1, // study, series and instance rows: the version to replace
        'table.batch': 3, // the store and replace notes (one partition); the index transaction; the feed append
        'table.delete': 1, // the store note (the replace note stays for the sweep, which deletes the old blob)
      },
      batchEntities: 9, // 2 notes + 3 index rows (instance replaced) + 4 feed rows
      entitiesRead: 3,
      inSequence: 6, // prepare, then the notes (the replaced version is in them), then as a STOW
      wrote: true,
    });
  });

  it('STOW of one instance into a new study with expiry headers: 17 (16 and the expiry index row)', async () => {
    const init = stowRequestInit([instance(newInstanceUids(), `PID-${testUid().slice(-12)}`)]);
    const headers = { ...(init.headers as Record<string, string>), 'msdicom-expiry-time-milliseconds': '86400000' };
    const result = await server().call('/v2/studies', { ...init, headers });
    expect(result.status).toBe(200);
    expectCounts(result.storage, {
      byKind: {
        'blob.put-blob': 1,
        'table.query': 1,
        'table.insert': 1,
        'table.upsert': 10, // the 9 search pointers of a new study and the expiry index row
        'table.batch': 2,
        'table.delete': 1,
      },
      batchEntities: 7,
      entitiesRead: 0,
      inSequence: 5, // the expiry row goes with the pointers; the feed counter is known by now
      wrote: true,
    });
  });

  it('STOW of 50 instances into one new series: 65, 1.3 per instance', async () => {
    // SOP Instance UIDs as many modalities make them: the series UID and the instance number.
    const files = Array.from({ length: 50 }, (_, i) =>
      instance(
        { studyInstanceUid: bigStudy, seriesInstanceUid: bigSeries, sopInstanceUid: `${bigSeries}.${i + 1}` },
        patientId,
      ),
    );
    const counts = await stow(files);
    expect(await server().storage.index.listInstances(bigStudy, bigSeries)).toHaveLength(50);
    expectCounts(counts, {
      byKind: {
        'blob.put-blob': 50, // each part in one Put Blob
        'table.query': 1, // the study and series rows: the series is new, so no instance can exist yet
        'table.upsert': 8, // the first instance's study and series pointers
        // the 50 SOP pointers in one transaction (their UIDs share the series prefix: one partition),
        // the 50 notes in one (they share a partition), the index in one (50 instance rows, series
        // and study rows), 2 change feed appends (at most 49 entries each), the notes' removal
        'table.batch': 6,
      },
      // SOP pointers, notes, index rows, feed rows (entry and marker each; a counter and a time row per append), notes again
      batchEntities: 50 + 50 + 52 + 50 * 2 + 2 * 2 + 50,
      entitiesRead: 0, // nothing of the study existed; the feed counter's ETag is known
      inSequence: 9, // [prepare ∥ notes] 4 waves of 16 blob commits (pointers beside the first) [index] 2 feed appends [notes removal]
      wrote: true,
    });
    // 615 before issue #15, 480 after its first slice, 114 before the SOP pointers were grouped.
  });

  it('STOW of one instance into a new series of an existing study: 9', async () => {
    expectCounts(await stow([instance(newInstanceUids(bigStudy, testUid()), patientId)]), {
      byKind: {
        'blob.put-blob': 1,
        'table.query': 1,
        'table.insert': 1,
        'table.upsert': 3, // series, modality and SOP pointers
        'table.batch': 2,
        'table.delete': 1,
      },
      batchEntities: 7,
      entitiesRead: 1, // the study row
      inSequence: 5,
      wrote: true,
    });
  });

  it('QIDO by PatientID (2 studies): 3', async () => {
    expectCounts(await get(`/v2/studies?PatientID=${patientId}`, JSON_TYPE), {
      // the PatientID pointer partition; each candidate's study row (read 16 at a time)
      byKind: { 'table.query': 1, 'table.get-entity': 2 },
      batchEntities: 0,
      entitiesRead: 4, // 2 pointers, 2 study rows
      inSequence: 2, // the pointers, then both study rows at once
      wrote: false,
    });
  });

  it('QIDO by StudyInstanceUID: 1', async () => {
    expectCounts(await get(`/v2/studies?StudyInstanceUID=${first.studyInstanceUid}`, JSON_TYPE), {
      byKind: { 'table.get-entity': 1 }, // the study row
      batchEntities: 0,
      entitiesRead: 1,
      inSequence: 1,
      wrote: false,
    });
  });

  it('WADO instance retrieve: 4', async () => {
    expectCounts(await get(instancePath(first), DICOM), {
      byKind: { 'table.get-entity': 3, 'blob.get': 1 }, // getInstance (instance, series, study rows); the blob
      batchEntities: 0,
      entitiesRead: 3,
      inSequence: 2, // the 3 index reads at once, then the blob
      wrote: false,
    });
  });

  it('WADO frame retrieve: 4', async () => {
    const path = `${instancePath(first)}/frames/1`;
    expectCounts(await get(path, 'multipart/related; type="application/octet-stream"; transfer-syntax=*'), {
      // getInstance (the frame table is in the instance row); one ranged read of the frame
      byKind: { 'table.get-entity': 3, 'blob.get-range': 1 },
      batchEntities: 0,
      entitiesRead: 3,
      inSequence: 2,
      wrote: false,
    });
  });

  it('WADO frame retrieve again, the frame table remembered: 4, the ranged read started with the index reads', async () => {
    const path = `${instancePath(first)}/frames/1`;
    const accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';
    const again = await get(path, accept);
    expectCounts(again, {
      // visibleVersion (instance, series, study rows, in parallel with the read); the frame's range
      byKind: { 'table.get-entity': 3, 'blob.get-range': 1 },
      batchEntities: 0,
      entitiesRead: 3,
      inSequence: 1, // the ranged read beside the index reads
      wrote: false,
    });
    // The index reads ask only for the version and the marks, not the rows with their sidecar.
    const fresh = await serveMetered(server().storage);
    try {
      const firstRead = await fresh.call(path, { headers: { accept } });
      expect(firstRead.status).toBe(200);
      expect(again.bytesRead).toBeLessThan(firstRead.storage.bytesRead / 2);
    } finally {
      await fresh.close();
    }
  });

  it('study metadata, first read after a change: 5 (it saves the document)', async () => {
    expectCounts(await get(`/v2/studies/${first.studyInstanceUid}/metadata`, JSON_TYPE), {
      byKind: {
        'table.get-entity': 2, // the study revision, with the document read; again before saving
        'blob.get': 1, // the study's metadata document (none yet: 404)
        'table.query': 1, // the study's partition: the instance rows hold the metadata
        'blob.put-blob': 1, // the document, for the next reads
      },
      batchEntities: 0,
      entitiesRead: 6, // the study row twice; 2 instance rows, the series row, the study row
      inSequence: 4,
      wrote: true,
    });
  });

  it('study metadata, unchanged since: 2', async () => {
    expectCounts(await get(`/v2/studies/${first.studyInstanceUid}/metadata`, JSON_TYPE), {
      byKind: { 'table.get-entity': 1, 'blob.get': 1 }, // the study revision and the document, at once
      batchEntities: 0,
      entitiesRead: 1,
      inSequence: 1,
      wrote: false,
    });
  });

  it('WADO study retrieve of 51 instances: 52, the blob reads that stream the body included', async () => {
    expectCounts(await get(`/v2/studies/${bigStudy}`, DICOM), {
      byKind: { 'table.query': 1, 'blob.get': 51 }, // the study's partition; each instance's blob
      batchEntities: 0,
      entitiesRead: 54, // 51 instance rows, 2 series rows, the study row
      wrote: false,
    });
  });

  it('DELETE of one instance: 11', async () => {
    expectCounts(await remove(instancePath(first)), {
      byKind: {
        'table.get-entity': 3, // getInstance: the instance, series and study rows
        'table.upsert': 1, // the delete note (alone in its partition: a plain write)
        // removeInstances: the series rows with the study row, and the instance row (a range of
        // one); the feed's create marker (logged('create'))
        'table.query': 3,
        'table.batch': 2, // the removal (instance row deleted, series and study counts); the feed's delete entry
        'blob.batch': 1, // the blob and its thumbnail cache (its sidecar is in the index row) in one Blob Batch
        'table.delete': 1, // the delete note
      },
      batchEntities: 9, // 3 index rows; feed counter, entry, marker, time row; the 2 blob deletes
      entitiesRead: 7, // getInstance's 3; the series and study rows and the instance row again; the create marker
      inSequence: 5, // getInstance, the note, [removal ∥ marker query], [feed append ∥ blob batch], the note's removal; 8 before
      wrote: true,
    });
    // 14 before: 2 blob deletes, the create marker and the instance row read one by one, and the feed counter read.
  });

  it('DELETE of a 51-instance study (2 series): 31, 0.61 per instance', async () => {
    // Batches of 48 and 3 instance rows (key order). Each batch's delete notes share one partition
    // (one creation time and one group), so they are written in one transaction and removed in one.
    expectCounts(await remove(`/v2/studies/${bigStudy}`), {
      byKind: {
        'table.upsert': 1, // the job note
        'table.get-entity': 2, // the study row before the mark; dropEmpty's last look at it (gone)
        'table.merge': 1, // the mark
        // 2 listings of the hidden rows (the second finds none); per batch, removeInstances' 2 (series
        // and study rows; the batch's instance rows, one key range) and the create markers (12 per
        // query: 4 + 1); dropEmpty's series range
        'table.query': 12,
        // per batch: the notes written, the removal, the notes removed, the feed append
        'table.batch': 8,
        'blob.batch': 3, // per batch its blobs (48, 3; their sidecars are in the index rows); the series logs and metadata documents
        // the 2 series rows and the study row left at zero (conditionally on the ETag the removal
        // gave them: no read), the job note
        'table.delete': 4,
      },
      // 51 instance rows + 5 series/study count updates; 51 × 2 feed rows + 2 counters and 2 time rows; 51 notes
      // written and removed; 110 blob deletes (51 instances and their 51 thumbnail caches, 2 series
      // logs, 3 metadata documents, 3 study and series thumbnails)
      batchEntities: 374,
      // the first listing (54 rows); removeInstances (3 + 48, 3 + 3); 51 create markers; the study row
      entitiesRead: 163,
      inSequence: 18, // per batch the removal beside the marker query, the feed append beside the blob batch; 24 before
      wrote: true,
    });
    // About 300 before (334 before issue #15): per instance a delete note written alone, the
    // instance row read again, the create marker read, 2 blob deletes; notes removed per shard.
  });
});
