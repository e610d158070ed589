import { describe, expect, it } from 'vitest';
import { seriesMetadataLogName } from '../../src/storage/keys.js';
import { memoryApp } from '../helpers/memory-app.js';
import { buildInstance, newInstanceUids, testUid } from '../../support/dicom-builder.js';

type Json = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string }>;

const BASE = 'http://localhost/v2';

function setup() {
  const { storage, app } = memoryApp();
  const call = async (path: string, method = 'GET', body?: Uint8Array) => {
    const response = await app.handle(
      new Request(`${BASE}${path}`, {
        method,
        headers: { 'content-type': 'application/dicom', accept: 'application/dicom+json' },
        body: body as Uint8Array<ArrayBuffer> | undefined,
      }),
    );
    const text = await response.text();
    return { status: response.status, json: text.startsWith('[') ? (JSON.parse(text) as Json[]) : [] };
  };
  let reads = 0;
  const readSmall = storage.blobs.readSmall.bind(storage.blobs);
  storage.blobs.readSmall = (name) => {
    reads += 1;
    return readSmall(name);
  };
  const counted = async (path: string) => {
    reads = 0;
    const result = await call(path);
    return { ...result, reads };
  };
  return { storage, call, counted };
}

const sopOf = (item: Json | undefined) => item?.['00080018']?.Value?.[0];

describe('study and series metadata from the series metadata log', () => {
  it('reads one log per series, skips deleted versions, and falls back to sidecars without a log', async () => {
    const { storage, call, counted } = setup();
    const study = testUid();
    const big = testUid();
    const small = testUid();
    const stored = [...Array.from({ length: 12 }, () => newInstanceUids(study, big)), newInstanceUids(study, small)];
    for (const uids of stored) {
      const file = buildInstance({ ...uids, attributes: { '00291010': { vr: 'OB', value: Buffer.alloc(3000, 1) } } });
      expect((await call('/studies', 'POST', file)).status).toBe(200);
    }

    const all = await counted(`/studies/${study}/metadata`);
    expect(all.status).toBe(200);
    expect(all.json.map(sopOf)).toEqual(stored.map((uids) => uids.sopInstanceUid));
    expect(all.reads).toBe(2);
    // Each item is what the instance-level resource answers, bulk data URIs pointing at its own instance.
    for (const [i, uids] of stored.entries()) {
      const one = await call(
        `/studies/${study}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}/metadata`,
      );
      expect(all.json[i]).toEqual(one.json[0]);
      expect(all.json[i]?.['00291010']?.BulkDataURI).toMatch(new RegExp(`/instances/${uids.sopInstanceUid}/bulkdata/`));
    }

    const gone = stored[3] ?? newInstanceUids();
    expect((await call(`/studies/${study}/series/${big}/instances/${gone.sopInstanceUid}`, 'DELETE')).status).toBe(204);
    const after = await counted(`/studies/${study}/series/${big}/metadata`);
    expect(after.json.map(sopOf)).toEqual(
      stored.filter((uids) => uids.seriesInstanceUid === big && uids !== gone).map((uids) => uids.sopInstanceUid),
    );
    expect(after.reads).toBe(1);

    await storage.blobs.delete(seriesMetadataLogName(study, big));
    const fallback = await counted(`/studies/${study}/series/${big}/metadata`);
    expect(fallback.json).toEqual(after.json);
    expect(fallback.reads).toBe(1 + 11);

    expect((await call(`/studies/${study}/series/${small}`, 'DELETE')).status).toBe(204);
    expect(await storage.blobs.readSmall(seriesMetadataLogName(study, small))).toBeUndefined();
  });
});
