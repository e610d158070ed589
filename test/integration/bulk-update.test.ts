import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { azuriteConnectionString } from '../../src/config.js';
import { runBulkUpdates } from '../../src/dicomweb/bulk-update.js';
import { sweepOrphans } from '../../src/dicomweb/sweep-orphans.js';
import type { OperationStore } from '../../src/storage/ports.js';
import { buildInstance, newInstanceUids, testUid } from '../../support/dicom-builder.js';
import { stowRequestInit } from '../../support/multipart.js';
import { useTestServer } from '../helpers/server.js';

type Dataset = Record<string, { vr: string; Value?: unknown[] }>;
interface Entry {
  Sequence: number;
  StudyInstanceUid: string;
  SopInstanceUid: string;
  Action: string;
}
interface Status {
  operationId: string;
  type: string;
  status: string;
  percentComplete: number;
  createdTime: string;
  lastUpdatedTime: string;
  results: {
    studyProcessed: number;
    studyUpdated: number;
    studyFailed: number;
    instanceUpdated: number;
    errors?: string[];
  };
}

const server = useTestServer();
const url = (path: string) => `${server().baseUrl}${path}`;
const operations = (): OperationStore => {
  const store = server().storage.operations;
  if (!store) throw new Error('the Azure storage has an operation store');
  return store;
};

/** A study of `count` instances in two series, all of patient Old^Name. */
async function storeStudy(
  count: number,
): Promise<{ study: string; files: Map<string, Buffer>; series: Map<string, string> }> {
  const study = testUid();
  const seriesUids = [testUid(), testUid()];
  const files = new Map<string, Buffer>();
  const series = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const uids = newInstanceUids(study, seriesUids[i % 2]);
    files.set(
      uids.sopInstanceUid,
      buildInstance({ ...uids, pixelBytes: 512, attributes: { '00100010': { vr: 'PN', value: 'Old^Name' } } }),
    );
    series.set(uids.sopInstanceUid, uids.seriesInstanceUid);
  }
  const response = await fetch(url('/v2/studies'), stowRequestInit([...files.values()]));
  expect(response.status).toBe(200);
  return { study, files, series };
}

async function bulkUpdate(body: unknown, version = 'v2'): Promise<Response> {
  return fetch(url(`/${version}/studies/$bulkUpdate`), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const rename = (studies: string[], name = 'New^Name') => ({
  studyInstanceUids: studies,
  changeDataset: {
    '00100010': { vr: 'PN', Value: [{ Alphabetic: name }] },
    '00081030': { vr: 'LO', Value: ['Corrected'] },
  },
});

/** The status; 200 once finished, 202 with Location (the same URL) before, as the Azure service answers. */
async function status(id: string, version = 'v2'): Promise<Status> {
  const response = await fetch(url(`/${version}/operations/${id}`));
  const body = (await response.json()) as Status;
  const finished = body.status !== 'notStarted' && body.status !== 'running';
  expect(response.status).toBe(finished ? 200 : 202);
  expect(response.headers.get('location')).toBe(finished ? null : url(`/${version}/operations/${id}`));
  return body;
}

async function updatesOf(study: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  for (let offset = 0; ; offset += 200) {
    const page = (await (
      await fetch(url(`/v2/changefeed?includemetadata=false&offset=${offset}&limit=200`))
    ).json()) as Entry[];
    entries.push(...page);
    if (page.length < 200) break;
  }
  return entries.filter((entry) => entry.StudyInstanceUid === study && entry.Action === 'update');
}

async function retrieve(path: string, original = false, multipart = false): Promise<Buffer> {
  const accept = multipart
    ? 'multipart/related; type="application/dicom"; transfer-syntax=*'
    : 'application/dicom; transfer-syntax=*';
  const response = await fetch(url(path), {
    headers: { accept, ...(original ? { 'msdicom-request-original': 'true' } : {}) },
  });
  expect(response.status).toBe(200);
  return Buffer.from(await response.arrayBuffer());
}

describe('bulk update ($bulkUpdate and operations)', () => {
  it('updates every instance of a study: search, metadata, files and feed; the original stays retrievable', async () => {
    const { study, files, series } = await storeStudy(3);
    const [sop, original] = [...files.entries()][0] as [string, Buffer];
    const instancePath = `/v2/studies/${study}/series/${series.get(sop)}/instances/${sop}`;
    // Read once, so the study's metadata document exists and must be invalidated.
    await fetch(url(`/v2/studies/${study}/metadata`), { headers: { accept: 'application/dicom+json' } });

    const started = await bulkUpdate(rename([study]));
    expect(started.status).toBe(202);
    const reference = (await started.json()) as { id: string; href: string };
    expect(reference.href).toBe(url(`/v2/operations/${reference.id}`));
    expect(started.headers.get('location')).toBe(reference.href);
    expect(await status(reference.id)).toMatchObject({ status: 'notStarted', percentComplete: 0, type: 'update' });

    expect(await runBulkUpdates(server().storage, { owner: 'worker-a' })).toBe(1);
    const done = await status(reference.id);
    expect(done).toMatchObject({
      operationId: reference.id,
      status: 'succeeded',
      percentComplete: 100,
      results: { studyProcessed: 1, studyUpdated: 1, studyFailed: 0, instanceUpdated: 3 },
    });
    expect(done.results.errors).toBeUndefined();

    const found = (await (await fetch(url(`/v2/studies?PatientName=New^Name`))).json()) as Dataset[];
    expect(found.map((each) => each['0020000D']?.Value?.[0])).toContain(study);
    const old = (await (await fetch(url(`/v2/studies?PatientName=Old^Name&StudyInstanceUID=${study}`))).json()) as
      Dataset[] | null;
    expect(old ?? []).toEqual([]);
    const metadata = (await (
      await fetch(url(`/v2/studies/${study}/metadata`), { headers: { accept: 'application/dicom+json' } })
    ).json()) as Dataset[];
    expect(metadata).toHaveLength(3);
    for (const instance of metadata) {
      expect(instance['00100010']?.Value).toEqual([{ Alphabetic: 'New^Name' }]);
      expect(instance['00081030']?.Value).toEqual(['Corrected']);
    }

    const updated = await retrieve(instancePath);
    expect(updated.includes('New^Name')).toBe(true);
    expect(updated.includes('Old^Name')).toBe(false);
    expect((await retrieve(instancePath, true)).equals(original)).toBe(true);
    const studyOriginal = await retrieve(`/v2/studies/${study}`, true, true);
    expect(studyOriginal.includes('Old^Name')).toBe(true);
    expect(studyOriginal.includes('New^Name')).toBe(false);

    const updates = await updatesOf(study);
    expect(updates.map((entry) => entry.SopInstanceUid).sort()).toEqual([...files.keys()].sort());

    // Nothing left to do: another round writes nothing.
    expect(await runBulkUpdates(server().storage, { owner: 'worker-b' })).toBe(0);
    expect(await updatesOf(study)).toHaveLength(3);

    // Deleting the study removes every version, the originals included.
    expect((await fetch(url(`/v2/studies/${study}`), { method: 'DELETE' })).status).toBe(204);
    const left: string[] = [];
    for await (const blob of server().storage.blobs.list(`${study}/`)) left.push(blob.name);
    expect(left.filter((name) => name.endsWith('.dcm'))).toEqual([]);
  });

  it("writes a non-ASCII name in each file's own character set, found by QIDO and read back as written", async () => {
    const { study } = await storeStudy(2);
    const started = await bulkUpdate(rename([study], 'Müller^Jürgen'));
    expect(started.status).toBe(202);
    const { id } = (await started.json()) as { id: string };
    await runBulkUpdates(server().storage, { owner: 'worker-u' });
    expect(await status(id)).toMatchObject({ status: 'succeeded', results: { instanceUpdated: 2 } });
    const found = await fetch(url(`/v2/studies?PatientName=${encodeURIComponent('Müller^Jürgen')}`), {
      headers: { accept: 'application/dicom+json' },
    });
    const matches = (await found.json()) as Record<string, { Value?: unknown[] }>[];
    expect(matches.map((match) => match['0020000D']?.Value?.[0])).toEqual([study]);
    const metadata = (await (
      await fetch(url(`/v2/studies/${study}/metadata`), { headers: { accept: 'application/dicom+json' } })
    ).json()) as Record<string, { Value?: unknown[] }>[];
    for (const instance of metadata) {
      expect(instance['00100010']?.Value).toEqual([{ Alphabetic: 'Müller^Jürgen' }]);
      expect(instance['00080005']?.Value).toEqual(['ISO_IR 192']);
    }
  });

  it('a second update keeps the first original; an operation rewinds idempotently', async () => {
    const { study, files, series } = await storeStudy(2);
    const [sop, original] = [...files.entries()][0] as [string, Buffer];
    const path = `/v2/studies/${study}/series/${series.get(sop)}/instances/${sop}`;
    const first = ((await (await bulkUpdate(rename([study], 'First^Fix'))).json()) as { id: string }).id;
    await runBulkUpdates(server().storage, { owner: 'w' });
    const second = ((await (await bulkUpdate(rename([study], 'Second^Fix'))).json()) as { id: string }).id;
    await runBulkUpdates(server().storage, { owner: 'w' });
    expect((await status(first)).status).toBe('succeeded');
    expect((await retrieve(path)).includes('Second^Fix')).toBe(true);
    expect((await retrieve(path, true)).equals(original)).toBe(true);
    expect(await updatesOf(study)).toHaveLength(4);

    // Its progress lost (as if the worker died before saving it): run again, nothing is written twice.
    const record = await operations().get(second);
    if (!record) throw new Error('operation missing');
    const { etag, ...state } = record;
    await operations().update(
      { ...state, status: 'running', studiesDone: 0, instancesUpdated: 0, leaseUntil: 0 },
      etag,
    );
    expect(await runBulkUpdates(server().storage, { owner: 'w2' })).toBe(1);
    expect(await updatesOf(study)).toHaveLength(4);
    expect((await status(second)).status).toBe('succeeded');
  });

  it('a worker that dies mid-operation is resumed by another once its lease lapses; each instance updated once', async () => {
    const { study, files } = await storeStudy(70);
    const { id } = (await (await bulkUpdate(rename([study]))).json()) as { id: string };
    const crash = new Error('worker killed');
    await expect(
      runBulkUpdates(server().storage, {
        owner: 'dies',
        leaseMs: 1000,
        afterBatch: (updated) => {
          if (updated >= 32) throw crash;
        },
      }),
    ).rejects.toBe(crash);
    const midway = await status(id);
    expect(midway.status).toBe('running');
    expect(midway.percentComplete).toBeGreaterThan(0);
    expect(midway.percentComplete).toBeLessThan(100);
    expect(midway.results.instanceUpdated).toBe(32);
    // Still leased by the dead worker: another leaves it alone until the lease lapses.
    expect(await runBulkUpdates(server().storage, { owner: 'survivor' })).toBe(0);
    expect(await updatesOf(study)).toHaveLength(32);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await runBulkUpdates(server().storage, { owner: 'survivor' })).toBe(1);
    expect(await status(id)).toMatchObject({
      status: 'succeeded',
      percentComplete: 100,
      results: { instanceUpdated: 70 },
    });
    const updates = await updatesOf(study);
    expect(updates).toHaveLength(70);
    expect(new Set(updates.map((entry) => entry.SopInstanceUid))).toEqual(new Set(files.keys()));
  });

  it('a worker process killed with SIGKILL mid-operation is resumed; every instance updated exactly once', async () => {
    const { study, files } = await storeStudy(100);
    const { id } = (await (await bulkUpdate(rename([study]))).json()) as { id: string };
    const { blobPort, tablePort, queuePort } = inject('azurite');
    // One process (`--import tsx`, not the tsx CLI, which would run it in a child that outlives the kill).
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, '..', 'helpers', 'bulk-update-process.ts')],
      {
        env: {
          ...process.env,
          DICOMWEB_STORAGE_CONNECTION_STRING: azuriteConnectionString(blobPort, tablePort, '127.0.0.1', queuePort),
          DICOMWEB_BLOB_CONTAINER: server().storageConfig.container,
          DICOMWEB_TABLE: server().storageConfig.table,
          TEST_LEASE_MS: '1500',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      // Killed as soon as its first batch is in the feed: during the second of four.
      while ((await updatesOf(study)).length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    const atKill = (await status(id)).results.instanceUpdated;
    expect(atKill).toBeLessThan(100);
    await new Promise((resolve) => setTimeout(resolve, 1600));
    expect(await runBulkUpdates(server().storage, { owner: 'survivor' })).toBeGreaterThanOrEqual(1);
    expect(await status(id)).toMatchObject({
      status: 'succeeded',
      percentComplete: 100,
      results: { instanceUpdated: 100 },
    });
    const updates = await updatesOf(study);
    expect(updates).toHaveLength(100);
    expect(new Set(updates.map((entry) => entry.SopInstanceUid))).toEqual(new Set(files.keys()));
    // What the killed worker left (staged or committed blobs of versions never indexed) is swept;
    // the originals stay.
    await sweepOrphans(server().storage, 0);
    const metadata = (await (
      await fetch(url(`/v2/studies/${study}/metadata`), { headers: { accept: 'application/dicom+json' } })
    ).json()) as Dataset[];
    expect(
      metadata.filter((each) => (each['00100010']?.Value?.[0] as { Alphabetic?: string }).Alphabetic === 'New^Name'),
    ).toHaveLength(100);
    const originals = await retrieve(`/v2/studies/${study}`, true, true);
    expect(originals.toString('latin1').split('Old^Name').length - 1).toBe(100);
    expect(await updatesOf(study)).toHaveLength(100);
  });

  it('reports a study that is not stored as an error of a failed operation', async () => {
    const missing = testUid();
    const { id } = (await (await bulkUpdate(rename([missing]))).json()) as { id: string };
    await runBulkUpdates(server().storage, { owner: 'w' });
    const result = await status(id);
    expect(result.status).toBe('failed');
    expect(result.results).toMatchObject({ studyProcessed: 1, studyUpdated: 0, studyFailed: 1 });
    expect(result.results.errors?.[0]).toContain(missing);
  });

  it('refuses a second operation on a study while one is unfinished (409), as the Azure service does', async () => {
    const { study } = await storeStudy(1);
    const first = await bulkUpdate(rename([study], 'One^Fix'));
    expect(first.status).toBe(202);
    const { id } = (await first.json()) as { id: string };
    const second = await bulkUpdate(rename([testUid(), study], 'Two^Fix'));
    expect(second.status).toBe(409);
    expect(await second.text()).toContain(id);
    // Other studies are not held up.
    expect((await bulkUpdate(rename([testUid()]))).status).toBe(202);
    await runBulkUpdates(server().storage, { owner: 'w' });
    expect((await bulkUpdate(rename([study], 'Two^Fix'))).status).toBe(202);
    await runBulkUpdates(server().storage, { owner: 'w' });
  });

  it('answers 400 for requests it does not accept, naming what to fix', async () => {
    const study = testUid();
    const cases: [unknown, RegExp][] = [
      ['{not json', /not valid JSON/],
      [{ changeDataset: rename([study]).changeDataset }, /studyInstanceUids/],
      [{ studyInstanceUids: [study] }, /changeDataset/],
      [{ ...rename([]) }, /studyInstanceUids/],
      [rename(Array.from({ length: 51 }, () => testUid())), /At most 50 studies/],
      [rename(['1.02.3']), /leading zeros|starts with 0/],
    ];
    for (const [body, message] of cases) {
      const response = await bulkUpdate(body);
      expect(response.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(await response.text()).toMatch(message);
    }
  });

  it("answers 400 with a Failed Attributes Sequence naming every attribute of the change data set it refuses, as Azure's", async () => {
    const study = testUid();
    const cases: [Dataset, RegExp][] = [
      [{ '0020000D': { vr: 'UI', Value: ['1.2.3'] } }, /^DICOM100: \(0020,000d\) - .*cannot be updated/],
      [{ '0008103E': { vr: 'LO', Value: ['x'] } }, /^DICOM100: \(0008,103e\) - .*cannot be updated/],
      // General Study attributes beyond the Azure service's three.
      [{ '00080020': { vr: 'DA', Value: ['20240101'] } }, /cannot be updated/],
      [{ '00100010': { vr: 'LO', Value: ['x'] } }, /"vr": "PN"/],
      [{ '00100010': { vr: 'PN' } }, /exactly one value/],
      [{ '00100030': { vr: 'DA', Value: ['2024-01-01'] } }, /YYYYMMDD/],
      [{ '00100040': { vr: 'CS', Value: ['female'] } }, /upper-case/],
      [{ '00100020': { vr: 'LO', Value: ['x'.repeat(65)] } }, /64/],
    ];
    const comments = async (changeDataset: Dataset): Promise<string[]> => {
      const response = await bulkUpdate({ studyInstanceUids: [study], changeDataset });
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/^application\/dicom\+json/);
      const body = (await response.json()) as Record<string, { vr: string; Value: Dataset[] }>;
      expect(body['00741048']?.vr).toBe('SQ');
      return (body['00741048']?.Value ?? []).map((item) => String(item['00000902']?.Value?.[0]));
    };
    for (const [changeDataset, message] of cases) {
      const found = await comments(changeDataset);
      expect(found, JSON.stringify(changeDataset)).toHaveLength(1);
      expect(found[0]).toMatch(message);
    }
    // Every refused attribute is named, not only the first.
    const both = await comments({
      ...cases[0]?.[0],
      ...cases[1]?.[0],
      '00100010': { vr: 'PN', Value: [{ Alphabetic: 'A' }] },
    });
    expect(both).toHaveLength(2);
    // Attributes on the Azure service's list that are not in the Patient module's first rows.
    const accepted = await bulkUpdate({
      studyInstanceUids: [testUid()],
      changeDataset: {
        '001021F0': { vr: 'LO', Value: ['None'] },
        '00102297': { vr: 'PN', Value: [{ Alphabetic: 'Doe^John' }] },
        '00100200': { vr: 'CS', Value: ['NO'] },
      },
    });
    expect(accepted.status).toBe(202);
  });

  it('answers 404 for an unknown operation, and for $bulkUpdate on v1; v1 reads an operation as completed', async () => {
    expect((await fetch(url('/v2/operations/0123456789abcdef0123456789abcdef'))).status).toBe(404);
    expect((await fetch(url('/v2/operations/nonsense'))).status).toBe(404);
    const refused = await bulkUpdate(rename([testUid()]), 'v1');
    expect(refused.status).toBe(404);
    expect(await refused.text()).toContain('/v2/studies/$bulkUpdate');
    const { study } = await storeStudy(1);
    const { id } = (await (await bulkUpdate(rename([study]))).json()) as { id: string };
    await runBulkUpdates(server().storage, { owner: 'w' });
    expect((await status(id, 'v1')).status).toBe('completed');
    expect((await status(id, 'v2')).status).toBe('succeeded');
  });
});
