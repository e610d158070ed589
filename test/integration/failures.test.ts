import { AzureNamedKeyCredential, TableClient } from '@azure/data-tables';
import { ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { beforeAll, describe, expect, it } from 'vitest';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../../src/config.js';
import { sweepOrphans } from '../../src/dicomweb/sweep-orphans.js';
import { AzureBlobStore } from '../../src/storage/azure-blob-store.js';
import { AzureInstanceIndex } from '../../src/storage/azure-index-store.js';
import { instanceBlobMetadata, instanceBlobName, newVersion } from '../../src/storage/keys.js';
import { StorageUnavailableError, type InstanceRecord, type Storage } from '../../src/storage/ports.js';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';
import { dicomParts, multipartBody } from '../../support/multipart.js';
import { abandonedPost } from '../helpers/abandoned-post.js';
import { openTestStorage, serveStorage, useTestServer } from '../helpers/server.js';

const serve = (storage: Storage) => serveStorage(storage);

/** What a stored instance leaves in its study's folder: its blob (its sidecar is in its index row). */
const storedBlobs = (record: InstanceRecord | undefined) => [record?.blobName ?? ''];

/** The index with every study write failing as storage does when it goes away after `healthyWrites` of them. */
function failingAfter(healthy: Storage, healthyWrites: number): Storage['index'] {
  let writes = 0;
  const index = Object.create(healthy.index) as Storage['index'];
  index.prepareStudy = async (study, keys) => {
    const write = await healthy.index.prepareStudy(study, keys);
    return {
      exists: (key) => write.exists(key),
      deleting: (key) => write.deleting(key),
      current: (key) => write.current(key),
      writeAhead: (records, options) => write.writeAhead(records, options),
      add: (records, options) => {
        writes += 1;
        return writes <= healthyWrites
          ? write.add(records, options)
          : Promise.reject(new StorageUnavailableError('injected'));
      },
    };
  };
  return index;
}

async function blobNames(storage: Storage, prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of storage.blobs.list(prefix)) names.push(blob.name);
  return names;
}

const post = (baseUrl: string, body: Uint8Array, type = 'application/dicom') =>
  fetch(`${baseUrl}/v2/studies`, {
    method: 'POST',
    headers: { 'content-type': type, accept: 'application/dicom+json' },
    body: body as Uint8Array<ArrayBuffer>,
  });

/** A port nothing listens on: the SDKs get connection refused, as in an outage. */
const DEAD = 'http://127.0.0.1:9';
const credential = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);

describe('storage failures', () => {
  let healthy: Storage;
  beforeAll(async () => {
    healthy = (await openTestStorage()).storage;
  });

  it('answers 503 with Retry-After when Blob Storage is unreachable, and indexes nothing', async () => {
    const deadBlobs = new AzureBlobStore(
      new ContainerClient(`${DEAD}/${AZURITE_ACCOUNT}/dead`, credential, { retryOptions: { maxTries: 1 } }),
    );
    const storage: Storage = { ...healthy, blobs: deadBlobs };
    const server = await serve(storage);
    try {
      const uids = newInstanceUids();
      const response = await post(server.baseUrl, buildInstance({ ...uids, pixelBytes: 100 }));
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('5');
      expect(await response.text()).toMatch(/unavailable/);
      expect(await healthy.index.getInstance(uids)).toBeUndefined();
    } finally {
      await server.close();
    }
  });

  it('answers 503 when Table Storage is unreachable, and leaves no blob', async () => {
    const deadIndex = new AzureInstanceIndex(
      new TableClient(`${DEAD}/${AZURITE_ACCOUNT}`, 'dead', new AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY), {
        retryOptions: { maxRetries: 0 },
        allowInsecureConnection: true,
      }),
    );
    const server = await serve({ ...healthy, index: deadIndex });
    try {
      const uids = newInstanceUids();
      const response = await post(server.baseUrl, buildInstance({ ...uids, pixelBytes: 100 }));
      expect(response.status).toBe(503);
      expect(await blobNames(healthy, `${uids.studyInstanceUid}/`)).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('removes the blob again when the index write fails after the blob was committed', async () => {
    const server = await serve({ ...healthy, index: failingAfter(healthy, 0) });
    try {
      const uids = newInstanceUids();
      const response = await post(server.baseUrl, buildInstance({ ...uids, pixelBytes: 1000 }));
      expect(response.status).toBe(503);
      expect(await blobNames(healthy, `${uids.studyInstanceUid}/`)).toEqual([]);
      const notes = [];
      for await (const note of healthy.pending.olderThan(new Date(Date.now() + 3_600_000))) {
        if (note.key.studyInstanceUid === uids.studyInstanceUid) notes.push(note);
      }
      expect(notes).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('an outage while indexing: what was indexed stays and is reported stored (202), the rest fail with 272 and leave no blob', async () => {
    const first = newInstanceUids();
    const second = newInstanceUids();
    const server = await serve({ ...healthy, index: failingAfter(healthy, 1) });
    try {
      const body = multipartBody(
        dicomParts([buildInstance({ ...first, pixelBytes: 10 }), buildInstance({ ...second, pixelBytes: 10 })]),
        'zz',
      );
      const response = await post(server.baseUrl, body, 'multipart/related; boundary=zz');
      expect(response.status).toBe(202);
      const json = (await response.json()) as Record<string, { Value?: Record<string, { Value?: unknown[] }>[] }>;
      expect(json['00081199']?.Value?.map((item) => item['00081155']?.Value?.[0])).toEqual([first.sopInstanceUid]);
      const failure = json['00081198']?.Value?.[0];
      expect(failure?.['00081155']?.Value?.[0]).toBe(second.sopInstanceUid);
      expect(failure?.['00081197']?.Value?.[0]).toBe(272);
      const record = await healthy.index.getInstance(first);
      expect(record).toBeDefined();
      expect(await blobNames(healthy, `${first.studyInstanceUid}/`)).toEqual(storedBlobs(record));
      expect(await healthy.index.getInstance(second)).toBeUndefined();
      expect(await blobNames(healthy, `${second.studyInstanceUid}/`)).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('sweeps what a crash left between blob commit and index write, and nothing else', async () => {
    const crashed = newInstanceUids();
    const version = newVersion();
    const blobName = instanceBlobName(crashed, version);
    const createdAt = new Date(Date.now() - 60 * 60 * 1000);
    await healthy.pending.add({ key: crashed, version, blobName, createdAt });
    const upload = healthy.blobs.beginUpload(blobName, 'application/dicom');
    await upload.write(buildInstance({ ...crashed }));
    await upload.commit(instanceBlobMetadata(crashed, version));

    const stored = newInstanceUids();
    const server = await serve(healthy);
    try {
      expect((await post(server.baseUrl, buildInstance({ ...stored }))).status).toBe(200);
    } finally {
      await server.close();
    }
    const record = await healthy.index.getInstance(stored);
    // A stale note of a store that did finish: only the note goes.
    await healthy.pending.add({
      key: stored,
      version: record?.version ?? '',
      blobName: record?.blobName ?? '',
      createdAt,
    });

    const result = await sweepOrphans(healthy);
    expect(result).toEqual({ deletedBlobs: 1, clearedNotes: 2 });
    expect(await blobNames(healthy, `${crashed.studyInstanceUid}/`)).toEqual([]);
    expect(await blobNames(healthy, `${stored.studyInstanceUid}/`)).toEqual(storedBlobs(record));
    expect(await sweepOrphans(healthy)).toEqual({ deletedBlobs: 0, clearedNotes: 0 });
  });
  it('finishes an interrupted study delete in the sweep, its grouped notes removed from where they were written', async () => {
    const { studyInstanceUid: study, seriesInstanceUid: series } = newInstanceUids();
    const files = Array.from({ length: 5 }, () => buildInstance({ ...newInstanceUids(study, series), pixelBytes: 10 }));
    // Blob deletes fail: the delete stops after its index rows and feed entries, notes left behind.
    const failing: Storage = {
      ...healthy,
      blobs: Object.assign(Object.create(healthy.blobs) as Storage['blobs'], {
        deleteMany: () => Promise.reject(new StorageUnavailableError('blob batch down')),
      }),
    };
    const server = await serve(failing);
    try {
      const body = multipartBody(dicomParts(files), 'zz');
      expect((await post(server.baseUrl, body, 'multipart/related; boundary=zz')).status).toBe(200);
      const response = await fetch(`${server.baseUrl}/v2/studies/${study}`, { method: 'DELETE' });
      expect(response.status).toBe(503);
    } finally {
      await server.close();
    }
    expect(await healthy.index.getStudy(study)).toBeUndefined();
    expect(await blobNames(healthy, `${study}/`)).toHaveLength(5); // the 5 blobs (their sidecars are in the index rows)
    const left: string[] = [];
    for await (const note of healthy.pending.olderThan(new Date(Date.now() + 1000))) {
      if (note.key.studyInstanceUid === study) left.push(note.group === undefined ? 'job' : 'grouped');
    }
    expect(left.sort()).toEqual(['grouped', 'grouped', 'grouped', 'grouped', 'grouped', 'job']);
    const result = await sweepOrphans(healthy, 0, new Date(Date.now() + 1000));
    expect(result.clearedNotes).toBeGreaterThanOrEqual(6);
    expect(await blobNames(healthy, `${study}/`)).toEqual([]);
    for await (const note of healthy.pending.olderThan(new Date(Date.now() + 1000))) {
      expect(note.key.studyInstanceUid).not.toBe(study);
    }
    const deletes = (await healthy.changeFeed.after(0, 1000)).filter(
      (entry) => entry.key.studyInstanceUid === study && entry.action === 'delete',
    );
    expect(deletes).toHaveLength(5);
  });
});

describe('client aborts', () => {
  const testServer = useTestServer();

  it('leaves nothing visible when the client disconnects mid-instance, and keeps serving', async () => {
    const server = testServer();
    const uids = newInstanceUids();
    const file = buildInstance({ ...uids, pixelBytes: 20 * 1024 * 1024 });
    await abandonedPost(
      `${server.baseUrl}/v2/studies`,
      { 'content-type': 'application/dicom', accept: 'application/dicom+json', 'content-length': file.length },
      file.subarray(0, 9 * 1024 * 1024),
      200,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await server.storage.index.getInstance(uids)).toBeUndefined();
    expect(await blobNames(server.storage, `${uids.studyInstanceUid}/`)).toEqual([]);
    const next = newInstanceUids();
    expect((await post(server.baseUrl, buildInstance({ ...next }))).status).toBe(200);
  });
});
