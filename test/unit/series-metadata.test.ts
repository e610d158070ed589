import { describe, expect, it } from 'vitest';
import { inflateSidecar } from '../../src/dicomweb/instance-sidecar.js';
import { METADATA_BASE, withVersionBase } from '../../src/dicomweb/metadata-document.js';
import { metadataDocumentName, seriesMetadataLogName, sidecarBlobName } from '../../src/storage/keys.js';
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
  const open = storage.blobs.open.bind(storage.blobs);
  storage.blobs.open = (name: string, signal?: AbortSignal) => {
    reads += 1;
    return open(name, signal);
  };
  const counted = async (path: string) => {
    reads = 0;
    const result = await call(path);
    return { ...result, reads };
  };
  return { storage, app, call, counted };
}

const sopOf = (item: Json | undefined) => item?.['00080018']?.Value?.[0];

describe('saved metadata documents', () => {
  it('put the base URL in for every placeholder, wherever chunks split, and leave escaped U+0001 in values alone', async () => {
    const text = `[{"a":{"BulkDataURI":"${METADATA_BASE}/studies/1/x"}},{"b":"\\u0001"},"${METADATA_BASE}${METADATA_BASE}"]`;
    const bytes = Buffer.from(text, 'utf8');
    for (const size of [1, 2, 5, 64]) {
      const chunks = async function* () {
        await Promise.resolve();
        for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
      };
      const out: Buffer[] = [];
      for await (const chunk of withVersionBase(chunks(), 'https://h/v2')) out.push(Buffer.from(chunk));
      expect(Buffer.concat(out).toString('utf8')).toBe(
        '[{"a":{"BulkDataURI":"https://h/v2/studies/1/x"}},{"b":"\\u0001"},"https://h/v2https://h/v2"]',
      );
    }
  });

  it('written in the older format are rebuilt, not served', async () => {
    const { storage, call, counted } = setup();
    const study = testUid();
    const uids = newInstanceUids(study);
    expect((await call('/studies', 'POST', withBulkData(uids))).status).toBe(200);
    const expected = await call(`/studies/${study}/metadata`);
    const revision = (await storage.index.studyRevision(study)) ?? '';
    const old = `${revision}\t${study}\n${uids.seriesInstanceUid}\t${uids.sopInstanceUid}\tv\t{}\n`;
    await storage.blobs.writeSmall(metadataDocumentName(study), Buffer.from(old), 'text/plain', {});
    const read = await counted(`/studies/${study}/metadata`);
    expect(read.json).toEqual(expected.json);
    expect((await storage.blobs.readSmall(metadataDocumentName(study)))?.subarray(0, 4).toString()).toBe('md2\t');
  });
});

describe('study and series metadata', () => {
  it('come from the index rows, then from the document the read saved; deleted versions gone; each item as the instance resource answers', async () => {
    const { storage, app, call, counted } = setup();
    const study = testUid();
    const big = testUid();
    const small = testUid();
    const stored = [...Array.from({ length: 12 }, () => newInstanceUids(study, big)), newInstanceUids(study, small)];
    for (const uids of stored) {
      expect((await call('/studies', 'POST', withBulkData(uids))).status).toBe(200);
    }

    const all = await counted(`/studies/${study}/metadata`);
    expect(all.status).toBe(200);
    expect(all.json.map(sopOf)).toEqual(stored.map((uids) => uids.sopInstanceUid));
    expect(all.reads).toBe(1); // the study's document: none yet, so it is built from the index and saved
    expect(await storage.blobs.readSmall(metadataDocumentName(study))).toBeDefined();
    const again = await counted(`/studies/${study}/metadata`);
    expect(again.json).toEqual(all.json);
    expect(again.reads).toBe(1); // the document, current: no query of the index
    // The saved document serves any base URL: links follow the request's host and API version.
    const elsewhere = await storage.index.studyRevision(study);
    const other = await app.handle(
      new Request(`http://dicom.example:8443/v1/studies/${study}/metadata`, {
        headers: { accept: 'application/dicom+json' },
      }),
    );
    const otherJson = (await other.json()) as Json[];
    expect(otherJson.map(sopOf)).toEqual(all.json.map(sopOf));
    expect(otherJson[0]?.['00291010']?.BulkDataURI).toBe(
      all.json[0]?.['00291010']?.BulkDataURI?.replace(BASE, 'http://dicom.example:8443/v1'),
    );
    expect(await storage.index.studyRevision(study)).toBe(elsewhere);
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
    const kept = stored.filter((uids) => uids !== gone).map((uids) => uids.sopInstanceUid);
    // The study's document is stale now (the delete changed the study row): rebuilt, without it.
    expect((await call(`/studies/${study}/metadata`)).json.map(sopOf)).toEqual(kept);
    const after = await counted(`/studies/${study}/series/${big}/metadata`);
    expect(after.json.map(sopOf)).toEqual(kept.slice(0, 11));
    expect((await counted(`/studies/${study}/series/${big}/metadata`)).json).toEqual(after.json);
    // A store changes the study row too: the next read sees the new instance.
    const late = newInstanceUids(study, big);
    expect((await call('/studies', 'POST', withBulkData(late))).status).toBe(200);
    expect((await call(`/studies/${study}/series/${big}/metadata`)).json.map(sopOf)).toEqual([
      ...kept.slice(0, 11),
      late.sopInstanceUid,
    ]);
    // Deleting the series removes its document and the study's.
    expect((await call(`/studies/${study}/series/${big}`, 'DELETE')).status).toBe(204);
    expect(await storage.blobs.readSmall(metadataDocumentName(study, big))).toBeUndefined();
    expect(await storage.blobs.readSmall(metadataDocumentName(study))).toBeUndefined();
  });

  it('of instances stored before sidecars moved into the index: one log per series, sidecars without a log', async () => {
    const { storage, call, counted } = setup();
    const study = testUid();
    const big = testUid();
    const stored = Array.from({ length: 12 }, () => newInstanceUids(study, big));
    for (const uids of stored) expect((await call('/studies', 'POST', withBulkData(uids))).status).toBe(200);
    const expected = await call(`/studies/${study}/metadata`);
    // Rewrite them as older versions stored them: a sidecar blob each and the series' metadata log.
    const lines: string[] = [];
    for (const record of await storage.index.listInstances(study)) {
      const sidecar = inflateSidecar(record.inlineSidecar ?? new Uint8Array());
      await storage.blobs.writeSmall(sidecarBlobName(record.blobName), sidecar, 'application/json', {});
      const text = Buffer.from(sidecar).toString('utf8');
      const metadata = text.slice(text.indexOf(':') + 1, text.lastIndexOf(',"frames":'));
      lines.push(`${record.sopInstanceUid}\t${record.version}\t${metadata}\n`);
      await storage.index.removeInstances(study, [record]);
      await storage.index.addInstance({ ...record, inlineSidecar: undefined });
    }
    await storage.blobs.append(seriesMetadataLogName(study, big), Buffer.from(lines.join('')), 'text/plain');

    const fromLog = await counted(`/studies/${study}/metadata`);
    expect(fromLog.json).toEqual(expected.json);
    expect(fromLog.reads).toBe(1 + 1); // the study's document (stale), the series log
    await storage.blobs.delete(seriesMetadataLogName(study, big));
    await storage.blobs.delete(metadataDocumentName(study));
    const fromSidecars = await counted(`/studies/${study}/metadata`);
    expect(fromSidecars.json).toEqual(expected.json);
    expect(fromSidecars.reads).toBe(1 + 1 + 12); // no document, no log: the 12 sidecars
  });
});

/** An instance with a 3000-byte private OB element, served as bulk data. */
function withBulkData(uids: ReturnType<typeof newInstanceUids>): Uint8Array {
  return buildInstance({ ...uids, attributes: { '00291010': { vr: 'OB', value: Buffer.alloc(3000, 1) } } });
}
