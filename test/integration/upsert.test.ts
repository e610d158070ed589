import { describe, expect, it } from 'vitest';
import { sweepOrphans } from '../../src/dicomweb/sweep-orphans.js';
import { buildInstance, newInstanceUids, testUid } from '../../support/dicom-builder.js';
import { stowRequestInit } from '../../support/multipart.js';
import { StorageUnavailableError, type Storage, type StudyWrite } from '../../src/storage/ports.js';
import { serveStorage, useTestServer } from '../helpers/server.js';

interface Entry {
  Sequence: number;
  SopInstanceUid: string;
  Action: string;
  State: string;
}

type Dataset = Record<string, { vr: string; Value?: unknown[] }>;

const server = useTestServer();

const stow = async (method: 'POST' | 'PUT', files: Buffer[], path = '/v2/studies') => {
  const response = await fetch(`${server().baseUrl}${path}`, { ...stowRequestInit(files), method });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Dataset) : undefined };
};

const get = (path: string, accept = 'application/dicom+json') =>
  fetch(`${server().baseUrl}${path}`, { headers: { accept } });

const json = async <T>(path: string): Promise<T> => (await (await get(path)).json()) as T;

/** The change feed entries of one SOP instance, oldest first. */
async function feedOf(sopInstanceUid: string): Promise<Entry[]> {
  const entries = await json<Entry[]>('/v2/changefeed?includemetadata=false&limit=200');
  return entries.filter((entry) => entry.SopInstanceUid === sopInstanceUid);
}

async function blobNames(prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of server().storage.blobs.list(prefix)) names.push(blob.name);
  return names.filter((name) => name.endsWith('.dcm'));
}

/** A study write's methods bound to it, so they can be spread into a wrapper. */
const bound = (write: StudyWrite): StudyWrite => ({
  exists: (key) => write.exists(key),
  deleting: (key) => write.deleting(key),
  current: (key) => write.current(key),
  writeAhead: (records, options) => write.writeAhead(records, options),
  add: (records, options) => write.add(records, options),
});

const named = (name: string) => ({ '00100010': { vr: 'PN', value: name } });

describe('PUT upsert (v2)', () => {
  it('stores a new instance like POST: 200 and a `create` entry', async () => {
    const uids = newInstanceUids();
    const { status, body } = await stow('PUT', [buildInstance({ ...uids, pixelBytes: 16 })]);
    expect(status).toBe(200);
    expect(body?.['00081199']?.Value).toHaveLength(1);
    expect((await feedOf(uids.sopInstanceUid)).map((entry) => [entry.Action, entry.State])).toEqual([
      ['create', 'current'],
    ]);
  });

  it('replaces a stored instance: new bytes, new attributes found, old ones not, counts unchanged', async () => {
    const uids = newInstanceUids();
    const other = newInstanceUids(uids.studyInstanceUid, uids.seriesInstanceUid);
    const before = buildInstance({ ...uids, pixelBytes: 16, attributes: named('Oldname^Anna') });
    const after = buildInstance({ ...uids, pixelBytes: 32, attributes: named('Newname^Anna') });
    expect((await stow('POST', [before, buildInstance({ ...other, attributes: named('Oldname^Anna') })])).status).toBe(
      200,
    );
    const study = `/v2/studies/${uids.studyInstanceUid}`;
    const instance = `${study}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`;
    // Read once, so the study's metadata document is saved and must not be served afterwards.
    expect((await json<Dataset[]>(`${study}/metadata`))[0]?.['00100010']?.Value).toEqual([
      { Alphabetic: 'Oldname^Anna' },
    ]);
    const [oldBlob] = await blobNames(`${uids.studyInstanceUid}/${uids.seriesInstanceUid}/${uids.sopInstanceUid}/`);

    // POST still refuses the re-send; PUT replaces it.
    const refused = await stow('POST', [after]);
    expect(refused.status).toBe(409);
    expect(refused.body?.['00081198']?.Value?.[0]).toMatchObject({ '00081197': { Value: [45070] } });
    const { status, body } = await stow('PUT', [after], study);
    expect(status).toBe(200);
    expect(body?.['00081199']?.Value).toHaveLength(1);

    const retrieved = await get(instance, 'application/dicom; transfer-syntax=*');
    expect(retrieved.status).toBe(200);
    expect(Buffer.from(await retrieved.arrayBuffer()).equals(after)).toBe(true);
    const metadata = await json<Dataset[]>(`${study}/metadata`);
    const names = metadata.map((item) => (item['00100010']?.Value?.[0] as { Alphabetic: string }).Alphabetic);
    expect(names).toContain('Newname^Anna');
    expect(await json<Dataset[]>(`${instance}/metadata`)).toMatchObject([
      { '00100010': { Value: [{ Alphabetic: 'Newname^Anna' }] } },
    ]);

    const found = await json<Dataset[]>(
      `/v2/studies?PatientName=Newname%5EAnna&StudyInstanceUID=${uids.studyInstanceUid}`,
    );
    expect(found).toHaveLength(1);
    expect(found[0]?.['00201208']?.Value).toEqual([2]); // NumberOfStudyRelatedInstances: still two
    const byNewWord = await json<Dataset[]>('/v2/studies?PatientName=Newname&fuzzymatching=true');
    expect(byNewWord.map((item) => item['0020000D']?.Value?.[0])).toContain(uids.studyInstanceUid);
    const byOldWord = await get('/v2/studies?PatientName=Oldname&fuzzymatching=true');
    const oldMatches = byOldWord.status === 204 ? [] : ((await byOldWord.json()) as Dataset[]);
    expect(oldMatches.map((item) => item['0020000D']?.Value?.[0])).not.toContain(uids.studyInstanceUid);

    // The change feed: the first version now reads `replaced`, the upsert is an `update` entry.
    expect((await feedOf(uids.sopInstanceUid)).map((entry) => [entry.Action, entry.State])).toEqual([
      ['create', 'replaced'],
      ['update', 'current'],
    ]);

    // The old version's blob stays for readers still on it, then the sweep removes it.
    const prefix = `${uids.studyInstanceUid}/${uids.seriesInstanceUid}/${uids.sopInstanceUid}/`;
    expect(await blobNames(prefix)).toHaveLength(2);
    await sweepOrphans(server().storage, 15 * 60_000, new Date(Date.now() + 14 * 60_000));
    expect(await blobNames(prefix)).toContain(oldBlob);
    await sweepOrphans(server().storage, 15 * 60_000, new Date(Date.now() + 16 * 60_000));
    const left = await blobNames(prefix);
    expect(left).toHaveLength(1);
    expect(left).not.toContain(oldBlob);
    expect((await get(instance, 'application/dicom; transfer-syntax=*')).status).toBe(200);
  });

  it('a delete after an upsert logs `delete` after the `update`, with no extra `create`', async () => {
    const uids = newInstanceUids();
    expect((await stow('PUT', [buildInstance({ ...uids, pixelBytes: 8 })])).status).toBe(200);
    expect((await stow('PUT', [buildInstance({ ...uids, pixelBytes: 10 })])).status).toBe(200);
    const path = `/v2/studies/${uids.studyInstanceUid}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`;
    expect((await fetch(`${server().baseUrl}${path}`, { method: 'DELETE' })).status).toBe(204);
    expect((await feedOf(uids.sopInstanceUid)).map((entry) => [entry.Action, entry.State])).toEqual([
      ['create', 'deleted'],
      ['update', 'deleted'],
      ['delete', 'deleted'],
    ]);
  });

  it('readers never miss the instance while it is replaced again and again', async () => {
    const uids = newInstanceUids();
    const instance = `/v2/studies/${uids.studyInstanceUid}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`;
    const versions = Array.from({ length: 16 }, (_, i) => i).map((i) =>
      buildInstance({ ...uids, pixelBytes: 64 + i * 2, attributes: named(`Round${i}^Reader`) }),
    );
    expect((await stow('POST', [versions[0] as Buffer])).status).toBe(200);
    let writing = true;
    const statuses = new Map<string, number>();
    const reads: Promise<void>[] = [];
    const reader = async (path: string, accept: string, check: (body: Buffer) => boolean) => {
      const what = path.endsWith('metadata') ? 'metadata' : 'instance';
      while (writing) {
        let key: string;
        try {
          const response = await get(path, accept);
          const body = Buffer.from(await response.arrayBuffer());
          key = `${what} ${response.status} ${check(body)}`;
        } catch (error) {
          key = `${what} broken: ${String(error)}`;
        }
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
      }
    };
    const whole = (body: Buffer) => versions.some((version) => version.equals(body));
    const parsed = (body: Buffer) => /Round\d+\^Reader/.test(body.toString());
    for (let r = 0; r < 4; r++) reads.push(reader(instance, 'application/dicom; transfer-syntax=*', whole));
    reads.push(reader(`${instance}/metadata`, 'application/dicom+json', parsed));
    reads.push(reader(`/v2/studies/${uids.studyInstanceUid}/metadata`, 'application/dicom+json', parsed));
    for (const version of versions.slice(1)) expect((await stow('PUT', [version])).status).toBe(200);
    writing = false;
    await Promise.all(reads);
    expect([...statuses.keys()].sort()).toEqual(['instance 200 true', 'metadata 200 true']);
    const final = await get(instance, 'application/dicom; transfer-syntax=*');
    expect(Buffer.from(await final.arrayBuffer()).equals(versions.at(-1) as Buffer)).toBe(true);
  });

  it('an upsert whose index transaction fails leaves the old version, which the sweep keeps', async () => {
    const uids = newInstanceUids();
    const before = buildInstance({ ...uids, pixelBytes: 12 });
    expect((await stow('POST', [before])).status).toBe(200);
    const healthy = server().storage;
    const index = Object.create(healthy.index) as Storage['index'];
    index.prepareStudy = async (study, keys) => {
      const write = await healthy.index.prepareStudy(study, keys);
      return { ...bound(write), add: () => Promise.reject(new StorageUnavailableError('injected')) };
    };
    const broken = await serveStorage({ ...healthy, index });
    try {
      const response = await fetch(`${broken.baseUrl}/v2/studies`, {
        ...stowRequestInit([buildInstance({ ...uids, pixelBytes: 14 })]),
        method: 'PUT',
      });
      expect(response.status).toBe(503);
    } finally {
      await broken.close();
    }
    await sweepOrphans(healthy, 15 * 60_000, new Date(Date.now() + 16 * 60_000));
    const path = `/v2/studies/${uids.studyInstanceUid}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`;
    const retrieved = await get(path, 'application/dicom; transfer-syntax=*');
    expect(Buffer.from(await retrieved.arrayBuffer()).equals(before)).toBe(true);
    const prefix = `${uids.studyInstanceUid}/${uids.seriesInstanceUid}/${uids.sopInstanceUid}/`;
    expect(await blobNames(prefix)).toHaveLength(1);
    expect((await feedOf(uids.sopInstanceUid)).map((entry) => [entry.Action, entry.State])).toEqual([
      ['create', 'current'],
    ]);
  });

  it('concurrent PUTs of one instance: each replaces it or fails with 272; one version is left, whole', async () => {
    const uids = newInstanceUids();
    expect((await stow('POST', [buildInstance({ ...uids, pixelBytes: 4 })])).status).toBe(200);
    const versions = Array.from({ length: 6 }, (_, i) => buildInstance({ ...uids, pixelBytes: 20 + 2 * i }));
    const answers = await Promise.all(versions.map((version) => stow('PUT', [version])));
    for (const { status, body } of answers) {
      expect([200, 409]).toContain(status);
      if (status === 409) expect(body?.['00081198']?.Value?.[0]).toMatchObject({ '00081197': { Value: [272] } });
    }
    const replaced = answers.filter(({ status }) => status === 200).length;
    expect(replaced).toBeGreaterThan(0);
    const path = `/v2/studies/${uids.studyInstanceUid}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`;
    const final = Buffer.from(await (await get(path, 'application/dicom; transfer-syntax=*')).arrayBuffer());
    expect(versions.some((version, i) => answers[i]?.status === 200 && version.equals(final))).toBe(true);
    const entries = await feedOf(uids.sopInstanceUid);
    expect(entries.map((entry) => entry.Action)).toEqual(['create', ...Array<string>(replaced).fill('update')]);
    // Concurrent requests append in the order they end, not the order they committed: exactly one
    // entry, an `update`, is the current version, whichever place it has.
    expect(entries.filter((entry) => entry.State === 'current').map((entry) => entry.Action)).toEqual(['update']);
    const [found] = await json<Dataset[]>(`/v2/studies?StudyInstanceUID=${uids.studyInstanceUid}`);
    expect(found?.['00201208']?.Value).toEqual([1]);
    await sweepOrphans(server().storage, 15 * 60_000, new Date(Date.now() + 16 * 60_000));
    expect(await blobNames(`${uids.studyInstanceUid}/${uids.seriesInstanceUid}/${uids.sopInstanceUid}/`)).toHaveLength(
      1,
    );
  });

  it('is v2 only: PUT on v1 is 405 with Allow', async () => {
    const response = await fetch(`${server().baseUrl}/v1/studies`, {
      ...stowRequestInit([buildInstance(newInstanceUids())]),
      method: 'PUT',
    });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toMatch(/POST/);
    expect(response.headers.get('allow')).not.toMatch(/PUT/);
  });

  it('PUT /studies/{study} refuses instances of another study (43265) like POST', async () => {
    const { status, body } = await stow('PUT', [buildInstance(newInstanceUids())], `/v2/studies/${testUid()}`);
    expect(status).toBe(409);
    expect(body?.['00081198']?.Value?.[0]).toMatchObject({ '00081197': { Value: [43265] } });
  });
});
