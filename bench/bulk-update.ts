/**
 * Bulk update of one big study (issue #17): instances/s and change feed entries written, beside
 * a plain re-store of the same study (an upsert of every instance, the same batches of 32, so
 * both write a new version of each) and the raw ceiling (the same bytes as blobs, no index), all
 * in this process over the same Azurite, so the figures compare the work and not an HTTP hop.
 */
import { Readable } from 'node:stream';
import { BlobServiceClient } from '@azure/storage-blob';
import { BULK_UPDATE_BATCH, runBulkUpdates, startBulkUpdate } from '../src/dicomweb/bulk-update.js';
import { storeInstances, type IncomingInstance } from '../src/dicomweb/store.js';
import { openAzureStorage } from '../src/storage/azure-storage.js';
import type { Storage } from '../src/storage/ports.js';
import { buildInstance, newInstanceUids } from '../support/dicom-builder.js';
import { freshStorage, type BenchContext } from './context.js';
import { watchOtherLoad } from './machine-load.js';
import { MiB, timed, timedPool } from './measure.js';
import type { SectionResult, TargetCheck } from './report.js';
import { uploadRaw } from './raw-upload.js';

/** Pixel bytes per instance: a 256×256 16-bit image. */
const PIXEL_BYTES = 256 * 256 * 2;

async function storeBatches(storage: Storage, files: readonly Buffer[], upsert: boolean): Promise<number> {
  let stored = 0;
  for (let start = 0; start < files.length; start += BULK_UPDATE_BATCH) {
    async function* parts(): AsyncGenerator<IncomingInstance> {
      await Promise.resolve();
      for (const file of files.slice(start, start + BULK_UPDATE_BATCH)) {
        yield { mediaType: 'application/dicom', body: Readable.from([file]) };
      }
    }
    const result = await storeInstances(storage, parts(), { apiVersion: 'v2', maxHeaderBytes: 1 << 20, upsert });
    stored += result.stored.length;
  }
  return stored;
}

async function feedLength(storage: Storage): Promise<number> {
  return (await storage.changeFeed.latest())?.sequence ?? 0;
}

export async function bulkUpdateSection(context: BenchContext): Promise<SectionResult> {
  const count = context.settings.bigStudyInstances;
  const { studyInstanceUid } = newInstanceUids();
  const seriesUids = Array.from({ length: Math.ceil(count / 100) }, () => newInstanceUids().seriesInstanceUid);
  const files = Array.from({ length: count }, (_, i) =>
    buildInstance({
      ...newInstanceUids(studyInstanceUid, seriesUids[Math.floor(i / 100)]),
      pixelBytes: PIXEL_BYTES,
      attributes: { '00100010': { vr: 'PN', value: 'Before^Update' } },
    }),
  );
  const bytes = files.reduce((sum, file) => sum + file.byteLength, 0);
  const names = freshStorage(context.target, 'bu');
  const storage = await openAzureStorage({
    target: { kind: 'connection-string', connectionString: names.connectionString },
    container: names.container,
    table: names.table,
  });
  const otherLoad = watchOtherLoad();
  context.progress(`bu: storing the ${count}-instance study`);
  await storeBatches(storage, files, false);

  let feed = await feedLength(storage);
  const restore = await timed(() => storeBatches(storage, files, true));
  const restoreEntries = (await feedLength(storage)) - feed;
  context.progress(`bu: re-store (upsert) ${(restore.ms / 1000).toFixed(1)} s`);

  feed = await feedLength(storage);
  const update = await timed(async () => {
    await startBulkUpdate(storage, {
      studyInstanceUids: [studyInstanceUid],
      changes: [{ tag: '00100010', vr: 'PN', value: 'After^Update' }],
    });
    return runBulkUpdates(storage, { owner: 'bench' });
  });
  const updateEntries = (await feedLength(storage)) - feed;
  context.progress(`bu: bulk update ${(update.ms / 1000).toFixed(1)} s`);

  const raw = BlobServiceClient.fromConnectionString(names.connectionString).getContainerClient(
    `${names.container}-raw`,
  );
  await raw.createIfNotExists();
  const rawSeconds = await timedPool(
    files.map((file, i) => ({ file, i })),
    4,
    ({ file, i }) => uploadRaw(raw, `raw/${i}.dcm`, { kind: 'buffer', bytes: file }),
  );
  await raw.deleteIfExists();
  const share = otherLoad();
  const rate = (ms: number) => count / (ms / 1000);
  const rawRate = count / rawSeconds;
  const checks: TargetCheck[] = [
    {
      name: `bu: bulk update of a ${count}-instance study (PatientName), ${(bytes / MiB).toFixed(0)} MiB`,
      value: `${rate(update.ms).toFixed(0)} inst/s, ${updateEntries} change feed entries; re-store (upsert) ${rate(restore.ms).toFixed(0)} inst/s, ${restoreEntries} entries; bulk/re-store ${(update.ms > 0 ? restore.ms / update.ms : 0).toFixed(2)}; raw blob writes ${rawRate.toFixed(0)} inst/s (bulk ${(rate(update.ms) / rawRate).toFixed(2)} of raw; other load ${share === undefined ? '?' : `${(share * 100).toFixed(0)} %`})`,
      target: `${count} entries, one per instance`,
      met: updateEntries === count && update.value === 1,
    },
  ];
  return {
    workloads: [],
    timings: [],
    qido: [],
    checks,
    notes: [
      'bu: in the bench process over its Azurite: the study stored once (untimed), then re-stored as an upsert of every instance in batches of 32 (what a PACS re-send costs), then one bulk update operation run to completion by one worker (reads each blob, rewrites its data set, writes the new version through the same upsert path, batches of 32); raw = the same bytes as blobs with the SDK, 4 at once, no index.',
    ],
  };
}
