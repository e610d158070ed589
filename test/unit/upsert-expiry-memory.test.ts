/**
 * The in-memory storage (unit tests, the benchmark's Table fake) behaves as the Azure adapters do
 * for PUT upsert, identical re-sends and study expiry; test/integration has the Azurite versions.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { sweepExpiredStudies } from '../../src/dicomweb/expire-studies.js';
import { sweepOrphans } from '../../src/dicomweb/sweep-orphans.js';
import { createMemoryStorage } from '../../src/storage/memory-storage.js';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';
import { stowRequestInit } from '../../support/multipart.js';

function app() {
  const storage = createMemoryStorage();
  const served = createApp({
    storage,
    config: {
      publicBaseUrl: undefined,
      maxHeaderBytes: 1 << 20,
      emptySearchStatus: 200,
      duplicatePolicy: 'accept-identical',
    },
    log: () => undefined,
  });
  const stow = async (method: 'POST' | 'PUT', file: Buffer, headers: Record<string, string> = {}) => {
    const init = stowRequestInit([file]);
    const response = await served.handle(
      new Request('http://localhost/v2/studies', {
        ...init,
        method,
        headers: { ...(init.headers as Record<string, string>), ...headers },
      }),
    );
    return { status: response.status, body: (await response.json()) as Record<string, { Value?: unknown[] }> };
  };
  return { storage, stow };
}

describe('upsert, duplicates and expiry over the in-memory storage', () => {
  it('PUT replaces: the new version is served, an update entry, the old blob swept later', async () => {
    const { storage, stow } = app();
    const uids = newInstanceUids();
    expect((await stow('POST', buildInstance({ ...uids, pixelBytes: 4 }))).status).toBe(200);
    const after = buildInstance({ ...uids, pixelBytes: 6 });
    expect((await stow('PUT', after)).status).toBe(200);
    const record = await storage.index.getInstance(uids);
    expect(record?.replaces).toBeDefined();
    expect((await storage.index.getStudy(uids.studyInstanceUid))?.numberOfInstances).toBe(1);
    expect(storage.changeFeed.entries.map((entry) => entry.action)).toEqual(['create', 'update']);
    const dcm = () => [...storage.blobs.blobs.keys()].filter((name) => name.endsWith('.dcm'));
    expect(dcm()).toHaveLength(2);
    await sweepOrphans(storage, 15 * 60_000, new Date(Date.now() + 16 * 60_000));
    expect(dcm()).toEqual([record?.blobName]);
  });

  it('an identical re-send is accepted with 45062; other bytes are 45070', async () => {
    const { stow } = app();
    const uids = newInstanceUids();
    const file = buildInstance({ ...uids, pixelBytes: 4 });
    expect((await stow('POST', file)).status).toBe(200);
    const again = await stow('POST', file);
    expect(again.status).toBe(200);
    expect(again.body['00081199']?.Value?.[0]).toMatchObject({ '00081196': { Value: [45062] } });
    const other = await stow('POST', buildInstance({ ...uids, pixelBytes: 8 }));
    expect(other.status).toBe(409);
  });

  it('an expired study is deleted by the sweep, not before', async () => {
    const { storage, stow } = app();
    const uids = newInstanceUids();
    const headers = { 'msdicom-expiry-time-milliseconds': '60000' };
    expect((await stow('POST', buildInstance(uids), headers)).status).toBe(200);
    expect(await sweepExpiredStudies(storage, new Date(Date.now() + 30_000))).toEqual({
      deletedStudies: 0,
      clearedRows: 0,
    });
    expect(await sweepExpiredStudies(storage, new Date(Date.now() + 61_000))).toEqual({
      deletedStudies: 1,
      clearedRows: 1,
    });
    expect(await storage.index.getStudy(uids.studyInstanceUid)).toBeUndefined();
    expect(storage.changeFeed.entries.map((entry) => entry.action)).toEqual(['create', 'delete']);
  });
});
