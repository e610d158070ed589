import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildInstance, newInstanceUids, testUid } from '../../support/dicom-builder.js';
import { stowRequestInit } from '../../support/multipart.js';
import { uniqueStorageConfig, useTestServer } from '../helpers/server.js';

interface Entry {
  Sequence: number;
  StudyInstanceUid: string;
  SeriesInstanceUid: string;
  SopInstanceUid: string;
  Action: string;
  Timestamp: string;
  State: string;
  Metadata?: Record<string, { vr: string; Value?: unknown[] }>;
}

const server = useTestServer();

async function store(baseUrl: string, files: Buffer[]): Promise<number> {
  const response = await fetch(`${baseUrl}/v2/studies`, stowRequestInit(files));
  await response.arrayBuffer();
  return response.status;
}

const del = async (path: string) => (await fetch(`${server().baseUrl}/v2${path}`, { method: 'DELETE' })).status;
const get = (path: string, accept = 'application/dicom+json') =>
  fetch(`${server().baseUrl}${path}`, { headers: { accept } });
const feed = async (query: string, version = 'v1') => {
  const response = await get(`/${version}/changefeed${query}`);
  return {
    status: response.status,
    text: await response.clone().text(),
    entries: response.status === 200 ? ((await response.json()) as Entry[]) : [],
  };
};

describe('DELETE and the change feed', () => {
  const study = testUid();
  const seriesA = testUid();
  const seriesB = testUid();
  const a1 = newInstanceUids(study, seriesA);
  const a2 = newInstanceUids(study, seriesA);
  const b1 = newInstanceUids(study, seriesB);
  const files = () => [
    buildInstance({ ...a1, pixelBytes: 8 }),
    buildInstance({ ...a2, pixelBytes: 8 }),
    buildInstance({ ...b1, pixelBytes: 8, attributes: { '00080060': { vr: 'CS', value: 'MR' } } }),
  ];
  let first = 0;

  beforeAll(async () => {
    first = (await feed('?includemetadata=false&limit=100')).entries.length;
    expect(await store(server().baseUrl, files())).toBe(200);
  });

  it('logs each stored instance once, in order, with its metadata', async () => {
    const { entries } = await feed(`?offset=${first}`);
    expect(entries.map((entry) => [entry.Sequence, entry.Action, entry.State, entry.SopInstanceUid])).toEqual([
      [first + 1, 'create', 'current', a1.sopInstanceUid],
      [first + 2, 'create', 'current', a2.sopInstanceUid],
      [first + 3, 'create', 'current', b1.sopInstanceUid],
    ]);
    expect(entries[0]?.Metadata?.['00080018']?.Value).toEqual([a1.sopInstanceUid]);
    expect(new Date(entries[0]?.Timestamp ?? '').getTime()).toBeGreaterThan(Date.now() - 60_000);
    const latest = (await (await get('/v1/changefeed/latest?includeMetadata=false')).json()) as Entry;
    expect(latest).toMatchObject({ Sequence: first + 3, Action: 'create' });
    expect(latest.Metadata).toBeUndefined();
  });

  it('deletes an instance (204, then 404) and keeps the aggregates exact', async () => {
    expect(await del(`/studies/${study}/series/${seriesA}/instances/${a1.sopInstanceUid}`)).toBe(204);
    expect(await del(`/studies/${study}/series/${seriesA}/instances/${a1.sopInstanceUid}`)).toBe(404);
    expect((await get(`/v2/studies/${study}/series/${seriesA}/instances/${a1.sopInstanceUid}`, '*/*')).status).toBe(
      404,
    );
    const [row] = (await (await get(`/v2/studies?StudyInstanceUID=${study}`)).json()) as Record<
      string,
      { Value?: unknown[] }
    >[];
    expect(row?.['00201208']?.Value).toEqual([2]);
    expect(row?.['00201206']?.Value).toEqual([2]);
    const instances = (await (await get(`/v2/instances?SOPInstanceUID=${a1.sopInstanceUid}`)).json()) as unknown[];
    expect(instances).toEqual([]);
  });

  it('deletes a series: ModalitiesInStudy follows, and the series is gone everywhere', async () => {
    expect(await del(`/studies/${study}/series/${seriesB}`)).toBe(204);
    expect(await del(`/studies/${study}/series/${seriesB}`)).toBe(404);
    const [row] = (await (await get(`/v2/studies?StudyInstanceUID=${study}`)).json()) as Record<
      string,
      { Value?: unknown[] }
    >[];
    expect(row?.['00080061']?.Value).toEqual(['CT']);
    expect(row?.['00201206']?.Value).toEqual([1]);
    expect((await get(`/v2/studies/${study}/series/${seriesB}/metadata`)).status).toBe(404);
    const series = (await (await get(`/v2/series?SeriesInstanceUID=${seriesB}`)).json()) as unknown[];
    expect(series).toEqual([]);
  });

  it('deletes the study, logs one delete per instance, and lets it be stored again', async () => {
    expect(await del(`/studies/${study}`)).toBe(204);
    expect(await del(`/studies/${study}`)).toBe(404);
    expect((await get(`/v2/studies/${study}`, '*/*')).status).toBe(404);
    expect((await (await get(`/v2/studies?StudyInstanceUID=${study}`)).json()) as unknown[]).toEqual([]);
    const blobs = [];
    for await (const blob of server().storage.blobs.list(`${study}/`)) blobs.push(blob.name);
    expect(blobs).toEqual([]);
    expect(await store(server().baseUrl, files().slice(0, 1))).toBe(200);
    const { entries } = await feed(`?offset=${first}&includemetadata=false`);
    expect(entries.map((entry) => [entry.Action, entry.SopInstanceUid, entry.State])).toEqual([
      ['create', a1.sopInstanceUid, 'replaced'],
      ['create', a2.sopInstanceUid, 'deleted'],
      ['create', b1.sopInstanceUid, 'deleted'],
      ['delete', a1.sopInstanceUid, 'replaced'],
      ['delete', b1.sopInstanceUid, 'deleted'],
      ['delete', a2.sopInstanceUid, 'deleted'],
      ['create', a1.sopInstanceUid, 'current'],
    ]);
    expect(entries.map((entry) => entry.Sequence)).toEqual(entries.map((_, i) => first + 1 + i));
  });

  it('deletes a study of many instances in batches and leaves nothing behind', async () => {
    const big = testUid();
    const many = Array.from({ length: 130 }, () =>
      buildInstance({ ...newInstanceUids(big, testUid()), pixelBytes: 4 }),
    );
    expect(await store(server().baseUrl, many)).toBe(200);
    expect(await del(`/studies/${big}`)).toBe(204);
    expect(await server().storage.index.listForDeletion(big)).toEqual([]);
    expect(await server().storage.index.getStudy(big)).toBeUndefined();
    const blobs = [];
    for await (const blob of server().storage.blobs.list(`${big}/`)) blobs.push(blob.name);
    expect(blobs).toEqual([]);
  });

  it('pages v2 by time window, offset and limit', async () => {
    const all = (await feed('?limit=200&includemetadata=false', 'v2')).entries;
    expect(all.length).toBeGreaterThan(5);
    const from = all[2]?.Timestamp ?? '';
    const window = (await feed(`?startTime=${from}&offset=1&limit=2&includemetadata=false`, 'v2')).entries;
    const expected = all.filter((entry) => entry.Timestamp >= from).slice(1, 3);
    expect(window.map((entry) => entry.Sequence)).toEqual(expected.map((entry) => entry.Sequence));
  });

  it('answers 400 with a message for bad paging, and 400 for malformed UIDs', async () => {
    for (const [query, version] of [
      ['?limit=0', 'v1'],
      ['?limit=101', 'v1'],
      ['?offset=-1', 'v1'],
      ['?limit=201', 'v2'],
      ['?includemetadata=yes', 'v1'],
      ['?startTime=2024-01-01T00:00:00', 'v2'],
      ['?startTime=2024-01-02T00:00:00Z&endTime=2024-01-01T00:00:00Z', 'v2'],
    ] as const) {
      const result = await feed(query, version);
      expect({ query, status: result.status }).toEqual({ query, status: 400 });
      expect(result.text.length).toBeGreaterThan(10);
    }
    expect(await del('/studies/1..2')).toBe(400);
    expect(await del(`/studies/${testUid()}/series/abc`)).toBe(400);
  });
});

describe('the change feed under several server processes', () => {
  const processes: ChildProcess[] = [];
  const ports: number[] = [];
  beforeAll(async () => {
    const storage = uniqueStorageConfig();
    const connectionString = storage.target.kind === 'connection-string' ? storage.target.connectionString : '';
    const tsx = join(import.meta.dirname, '..', '..', 'node_modules', '.bin', 'tsx');
    for (let i = 0; i < 3; i += 1) {
      const child = spawn(tsx, [join(import.meta.dirname, '..', 'helpers', 'host-process.ts')], {
        env: {
          ...process.env,
          DICOMWEB_STORAGE_CONNECTION_STRING: connectionString,
          DICOMWEB_BLOB_CONTAINER: storage.container,
          DICOMWEB_TABLE: storage.table,
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      processes.push(child);
      const line = await new Promise<string>((resolve) =>
        createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve),
      );
      ports.push((JSON.parse(line) as { port: number }).port);
    }
  });
  afterAll(() => {
    for (const child of processes) child.kill('SIGTERM');
  });

  it('gives every instance exactly one entry, sequences 1..N without gaps, while a reader pages concurrently', async () => {
    const total = 60;
    const uploads = Array.from({ length: total }, (_, i) => ({
      port: ports[i % ports.length] ?? 0,
      file: buildInstance({ ...newInstanceUids(), pixelBytes: 16 }),
    }));
    const seen: number[] = [];
    let writing = true;
    const reader = (async () => {
      let offset = 0;
      while (writing || offset < total) {
        const response = await fetch(
          `http://127.0.0.1:${ports[0] ?? 0}/v1/changefeed?offset=${offset}&limit=100&includemetadata=false`,
        );
        const entries = (await response.json()) as Entry[];
        for (const entry of entries) seen.push(entry.Sequence);
        offset = entries.at(-1)?.Sequence ?? offset;
        if (entries.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const statuses = await Promise.all(uploads.map(({ port, file }) => store(`http://127.0.0.1:${port}`, [file])));
    writing = false;
    await reader;
    expect(statuses.every((status) => status === 200)).toBe(true);
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    const response = await fetch(`http://127.0.0.1:${ports[1] ?? 0}/v1/changefeed?limit=100&includemetadata=false`);
    const entries = (await response.json()) as Entry[];
    expect(new Set(entries.map((entry) => entry.SopInstanceUid)).size).toBe(total);
    const timestamps = entries.map((entry) => entry.Timestamp);
    expect(timestamps).toEqual([...timestamps].sort());
  });
});
