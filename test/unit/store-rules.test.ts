import { describe, expect, it } from 'vitest';
import { memoryApp } from '../helpers/memory-app.js';
import { buildInstance, newInstanceUids, type InstanceSpec } from '../../support/dicom-builder.js';
import { multipartBody } from '../../support/multipart.js';

type Json = Record<string, { vr: string; Value?: Record<string, { Value?: unknown[] }>[] }>;

function setup() {
  const { storage, app } = memoryApp();
  const post = async (path: string, body: Uint8Array, headers: Record<string, string> = {}) => {
    const response = await app.handle(
      new Request(`http://localhost:7071${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/dicom', accept: 'application/dicom+json', ...headers },
        body: body as Uint8Array<ArrayBuffer>,
      }),
    );
    const text = await response.text();
    return { status: response.status, text, json: text.startsWith('{') ? (JSON.parse(text) as Json) : undefined };
  };
  return { storage, post };
}

const file = (spec: Partial<InstanceSpec> = {}) => buildInstance({ ...newInstanceUids(), pixelBytes: 16, ...spec });
const failureOf = (json: Json | undefined) => json?.['00081198']?.Value?.[0]?.['00081197']?.Value?.[0];
const commentsOf = (json: Json | undefined, sequence: string) =>
  JSON.stringify(json?.[sequence]?.Value?.[0]?.['00741048'] ?? null);

describe('store validation rules (v1 and v2)', () => {
  it('requires PatientID: v1 with a value; v2 present, an empty one is a warning', async () => {
    const { post } = setup();
    const missing = { attributes: { '00100020': null } };
    const empty = { attributes: { '00100020': { vr: 'LO', value: '' } } };
    expect(failureOf((await post('/v1/studies', file(missing))).json)).toBe(43264);
    expect(failureOf((await post('/v1/studies', file(empty))).json)).toBe(43264);
    expect(failureOf((await post('/v2/studies', file(missing))).json)).toBe(43264);
    const warned = await post('/v2/studies', file(empty));
    expect(warned.status).toBe(202);
    expect(warned.json?.['00081199']?.Value?.[0]?.['00081196']?.Value).toEqual([1]);
    expect(commentsOf(warned.json, '00081199')).toMatch(/\(0010,0020\) - The required attribute PatientID is empty/);
  });

  it('fails an invalid PatientID in v2 too, and lists every other invalid attribute as a warning', async () => {
    const { post, storage } = setup();
    expect(
      failureOf(
        (await post('/v2/studies', file({ attributes: { '00100020': { vr: 'LO', value: 'x'.repeat(65) } } }))).json,
      ),
    ).toBe(43264);
    const uids = newInstanceUids();
    const result = await post(
      '/v2/studies',
      file({
        ...uids,
        attributes: { '00080060': { vr: 'CS', value: 'ct' }, '00100030': { vr: 'DA', value: '19991340' } },
      }),
    );
    expect(result.status).toBe(202);
    const comments = commentsOf(result.json, '00081199');
    expect(comments).toMatch(/\(0008,0060\) - Modality value/);
    expect(comments).toMatch(/\(0010,0030\) - PatientBirthDate value/);
    const record = await storage.index.getInstance(uids);
    expect(record?.series['Modality']).toBeUndefined();
    expect(record?.study['PatientID']).toBe('PID-0001');
  });

  it('fails each missing required UID with 43264, naming it', async () => {
    const { post } = setup();
    for (const [tag, keyword] of [
      ['0020000D', 'StudyInstanceUID'],
      ['0020000E', 'SeriesInstanceUID'],
      ['00080018', 'SOPInstanceUID'],
      ['00080016', 'SOPClassUID'],
    ] as const) {
      const result = await post('/v2/studies', file({ attributes: { [tag]: null } }));
      expect(result.status).toBe(409);
      expect(failureOf(result.json)).toBe(43264);
      expect(commentsOf(result.json, '00081198')).toContain(keyword);
    }
  });

  it('negotiates Accept per RFC 9110', async () => {
    const { post } = setup();
    for (const accept of [
      'image/png, application/dicom+json;q=0.5',
      'application/*',
      'APPLICATION/DICOM+JSON',
      'application/json',
    ]) {
      expect((await post('/v2/studies', file(), { accept })).status, accept).toBe(200);
    }
    for (const accept of [
      'application/dicom+json;q=0',
      'application/xml',
      'multipart/related; type="application/dicom"',
    ]) {
      expect((await post('/v2/studies', file(), { accept })).status, accept).toBe(406);
    }
    expect((await post('/v2/studies', file(), { accept: 'garbage' })).status).toBe(400);
  });

  it('415s a first part that is not application/dicom; fails a later one with 272', async () => {
    const { post } = setup();
    const boundary = 'mixed';
    const type = `multipart/related; boundary=${boundary}`;
    const json = { body: Buffer.from('{}'), headers: { 'Content-Type': 'application/json' } };
    const dicom = {
      body: file(),
      headers: { 'Content-Type': 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1' },
    };
    expect((await post('/v2/studies', multipartBody([json, dicom], boundary), { 'content-type': type })).status).toBe(
      415,
    );
    const later = await post('/v2/studies', multipartBody([{ ...dicom, body: file() }, json], boundary), {
      'content-type': type,
    });
    expect(later.status).toBe(202);
    expect(failureOf(later.json)).toBe(272);
  });

  it('answers 405 for a method a store path does not support', async () => {
    const { app } = memoryApp();
    const response = await app.handle(new Request('http://localhost/v2/studies/1.2.3', { method: 'PATCH' }));
    expect(response.status).toBe(405);
    // PUT (upsert) is v2 only, as in the Azure service.
    const v1 = await app.handle(new Request('http://localhost/v1/studies/1.2.3', { method: 'PUT' }));
    expect(v1.status).toBe(405);
    expect(v1.headers.get('allow')).not.toMatch(/PUT/);
  });
});
