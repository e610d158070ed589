/**
 * The storage round trips each kind of request makes today, pinned (docs/storage.md, "Operations
 * per request"). They are what Azure bills and what carries over from Azurite to Azure, so a
 * change that adds a round trip must fail here and update the table in the docs. One client and
 * fresh UIDs: no ETag race, so every count is exact. The steps run in order (the later ones read
 * and delete what the earlier ones stored).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildInstance, newInstanceUids, testUid } from '../../support/dicom-builder.js';
import { dicomParts, multipartBody } from '../../support/multipart.js';
import type { StorageCounts } from '../../src/util/storage-meter.js';
import { pendingPartitionKey } from '../../src/storage/keys.js';
import { startMeteredServer, type MeteredServer } from '../helpers/server.js';

let server: MeteredServer;
beforeAll(async () => {
  server = await startMeteredServer();
});
afterAll(async () => {
  await server.close();
});

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
  const result = await server.call('/v2/studies', {
    method: 'POST',
    headers: {
      'content-type': 'multipart/related; type="application/dicom"; boundary=m',
      accept: 'application/dicom+json',
    },
    body: multipartBody(dicomParts(files), 'm') as Uint8Array<ArrayBuffer>,
  });
  expect(result.status).toBe(200);
  return result.storage;
}

async function get(path: string, accept: string, status = 200): Promise<StorageCounts> {
  const result = await server.call(path, { headers: { accept } });
  expect(result.status).toBe(status);
  return result.storage;
}

async function remove(path: string): Promise<StorageCounts> {
  const result = await server.call(path, { method: 'DELETE' });
  expect(result.status).toBe(204);
  return result.storage;
}

/**
 * Pending notes removed at once: a transaction per note partition (hour and shard, the version's
 * last, random, digit) holding several, a plain delete for a note alone in its partition.
 */
function noteGroups(notes: readonly { version: string; createdAt: Date }[]): { lone: number; grouped: number } {
  const partitions = new Map<string, number>();
  for (const note of notes) {
    const key = pendingPartitionKey(note.createdAt, note.version);
    partitions.set(key, (partitions.get(key) ?? 0) + 1);
  }
  const sizes = [...partitions.values()];
  return { lone: sizes.filter((size) => size === 1).length, grouped: sizes.filter((size) => size > 1).length };
}

const sum = (byKind: Readonly<Record<string, number>>) => Object.values(byKind).reduce((a, b) => a + b, 0);

/** Exact counts; bytes vary with UID lengths, so only their presence is checked. */
function expectCounts(
  counts: StorageCounts,
  expected: { byKind: Record<string, number>; batchEntities: number; entitiesRead: number; wrote: boolean },
): void {
  expect(counts.byKind).toEqual(expected.byKind);
  expect(counts.operations).toBe(sum(expected.byKind));
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
  it('STOW of one instance into a new study: 22', async () => {
    expectCounts(await stow([instance(first, patientId)]), {
      byKind: {
        'blob.put-block': 1, // the instance's bytes (one block)
        'blob.put-block-list': 1, // its commit
        'blob.put-blob': 2, // the sidecar; the series metadata log, created first since addInstance created the series
        'blob.append-block': 1, // the metadata log line
        'table.insert': 1, // the pending note
        'table.get-entity': 4, // duplicate check (the instance row, missing), addInstance (study, series rows), feed counter
        'table.upsert': 9, // search pointers: PatientID, accession, 2 name words, StudyDate, recency, series, modality, SOP
        'table.batch': 2, // the study partition's transaction (instance, series, study rows); the change feed append
        'table.delete': 1, // the pending note
      },
      batchEntities: 7, // 3 index rows + feed counter, entry, marker, time row
      entitiesRead: 0, // nothing existed; the feed counter is new too
      wrote: true,
    });
  });

  it('STOW of one instance into an existing series: 12', async () => {
    expectCounts(await stow([instance(second, patientId)]), {
      byKind: {
        'blob.put-block': 1,
        'blob.put-block-list': 1,
        'blob.put-blob': 1, // the sidecar
        'blob.append-block': 1, // the metadata log exists now
        'table.insert': 1,
        // the duplicate check, addInstance's 2: the feed appends with the counter this process last wrote
        'table.get-entity': 3,
        'table.upsert': 1, // the SOP pointer only: the other pointers exist
        'table.batch': 2,
        'table.delete': 1,
      },
      batchEntities: 7,
      entitiesRead: 2, // series and study rows (addInstance); the duplicate check found no row
      wrote: true,
    });
  });

  it('STOW of 50 instances into one new series: about 480, 9.6 per instance', async () => {
    const files = Array.from({ length: 50 }, () => instance(newInstanceUids(bigStudy, bigSeries), patientId));
    const counts = await stow(files);
    // The notes are removed per partition (noteGroups); each was written when its part was stored.
    const stored = await server.storage.index.listInstances(bigStudy, bigSeries);
    expect(stored).toHaveLength(50);
    const { lone, grouped } = noteGroups(
      stored.map((each) => ({ version: each.version, createdAt: new Date(each.storedAt) })),
    );
    expectCounts(counts, {
      byKind: {
        'blob.put-block': 50,
        'blob.put-block-list': 50,
        'blob.put-blob': 51, // 50 sidecars, the series' metadata log (created first: the series is new)
        'blob.append-block': 1, // all 50 lines in one block (under 1 MiB)
        'table.insert': 50, // pending notes
        'table.get-entity': 150, // 50 duplicate checks (the instance row), 50 × 2 addInstance reads (no feed counter read)
        'table.upsert': 58, // 9 pointers for the first instance, then the SOP pointer for each of the other 49
        // 50 index transactions, 2 change feed appends (at most 33 entries each), one per note
        // partition of several notes (16 shards: about 14)
        'table.batch': 52 + grouped,
        ...(lone > 0 ? { 'table.delete': lone } : {}), // notes alone in their partition (about 2; sometimes none)
      },
      // 50 × 3 index rows + 50 × 3 feed rows + 2 counters; the notes removed in transactions
      batchEntities: 302 + 50 - lone,
      entitiesRead: 98, // the duplicate checks all run before indexing (nothing found); 49 × 2 addInstance reads
      wrote: true,
    });
    // 615 before: the notes went one by one, the duplicate check read 3 rows, the log's first append failed.
    expect(counts.operations).toBe(462 + lone + grouped);
  });

  it('STOW of one instance into a new series of an existing study: 15', async () => {
    expectCounts(await stow([instance(newInstanceUids(bigStudy, testUid()), patientId)]), {
      byKind: {
        'blob.put-block': 1,
        'blob.put-block-list': 1,
        'blob.put-blob': 2, // the sidecar, the new series' metadata log
        'blob.append-block': 1,
        'table.insert': 1,
        'table.get-entity': 3,
        'table.upsert': 3, // series, modality and SOP pointers
        'table.batch': 2,
        'table.delete': 1,
      },
      batchEntities: 7,
      entitiesRead: 1, // the study row (addInstance)
      wrote: true,
    });
  });

  it('QIDO by PatientID (2 studies): 3', async () => {
    expectCounts(await get(`/v2/studies?PatientID=${patientId}`, JSON_TYPE), {
      // the PatientID pointer partition; each candidate's study row (read 16 at a time)
      byKind: { 'table.query': 1, 'table.get-entity': 2 },
      batchEntities: 0,
      entitiesRead: 4, // 2 pointers, 2 study rows
      wrote: false,
    });
  });

  it('QIDO by StudyInstanceUID: 1', async () => {
    expectCounts(await get(`/v2/studies?StudyInstanceUID=${first.studyInstanceUid}`, JSON_TYPE), {
      byKind: { 'table.get-entity': 1 }, // the study row
      batchEntities: 0,
      entitiesRead: 1,
      wrote: false,
    });
  });

  it('WADO instance retrieve: 4', async () => {
    expectCounts(await get(instancePath(first), DICOM), {
      byKind: { 'table.get-entity': 3, 'blob.get': 1 }, // getInstance (instance, series, study rows); the blob
      batchEntities: 0,
      entitiesRead: 3,
      wrote: false,
    });
  });

  it('WADO frame retrieve: 5', async () => {
    const path = `${instancePath(first)}/frames/1`;
    expectCounts(await get(path, 'multipart/related; type="application/octet-stream"; transfer-syntax=*'), {
      // getInstance; the sidecar (frame table); one ranged read of the frame
      byKind: { 'table.get-entity': 3, 'blob.get': 1, 'blob.get-range': 1 },
      batchEntities: 0,
      entitiesRead: 3,
      wrote: false,
    });
  });

  it('study metadata: 2', async () => {
    expectCounts(await get(`/v2/studies/${first.studyInstanceUid}/metadata`, JSON_TYPE), {
      byKind: { 'table.query': 1, 'blob.get': 1 }, // the study's partition; the series metadata log
      batchEntities: 0,
      entitiesRead: 4, // 2 instance rows, the series row, the study row
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
        'blob.batch': 1, // the blob and its sidecar
        'table.delete': 1, // the delete note
      },
      batchEntities: 9, // 3 index rows; feed counter, entry, marker, time row; 2 blob deletes
      entitiesRead: 7, // getInstance's 3; the series and study rows and the instance row again; the create marker
      wrote: true,
    });
    // 14 before: 2 blob deletes, the create marker and the instance row read one by one, and the feed counter read.
  });

  it('DELETE of a 51-instance study (2 series): 32, 0.63 per instance', async () => {
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
        // per batch: the notes written, the removal, the notes removed; 3 feed appends (48 deletes:
        // 33 + 15; then 3)
        'table.batch': 9,
        'blob.batch': 3, // per batch its blobs and sidecars (96, 6); the 2 series metadata logs
        // the 2 series rows and the study row left at zero (conditionally on the ETag the removal
        // gave them: no read), the job note
        'table.delete': 4,
      },
      // 51 instance rows + 5 series/study count updates; 51 × 3 feed rows + 3 counters; 51 notes
      // written and removed; 104 blob deletes
      batchEntities: 418,
      // the first listing (54 rows); removeInstances (3 + 48, 3 + 3); 51 create markers; the study row
      entitiesRead: 163,
      wrote: true,
    });
    // About 300 before (334 before issue #15): per instance a delete note written alone, the
    // instance row read again, the create marker read, 2 blob deletes; notes removed per shard.
  });
});
