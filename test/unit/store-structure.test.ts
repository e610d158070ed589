import { describe, expect, it } from 'vitest';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';
import { memoryApp } from '../helpers/memory-app.js';

type Json = Record<string, { Value?: Record<string, { Value?: unknown[] }>[] }>;

async function post(app: ReturnType<typeof memoryApp>['app'], body: Uint8Array) {
  const response = await app.handle(
    new Request('http://localhost/v2/studies', {
      method: 'POST',
      headers: { 'content-type': 'application/dicom', accept: 'application/dicom+json' },
      body: new Uint8Array(body),
    }),
  );
  return { status: response.status, json: (await response.json()) as Json };
}

describe('STOW walks every element before anything is committed', () => {
  it('a file cut inside Pixel Data: 409, 43264, an ErrorComment with offset and tag, no blob left', async () => {
    const { app, storage } = memoryApp();
    const uids = newInstanceUids();
    const whole = buildInstance({ ...uids, pixelBytes: 64 * 1024 });
    const { status, json } = await post(app, whole.subarray(0, whole.length - 1000));
    expect(status).toBe(409);
    const failed = json['00081198']?.Value?.[0];
    expect(failed?.['00081197']?.Value?.[0]).toBe(43264);
    expect(failed?.['00081155']?.Value?.[0]).toBe(uids.sopInstanceUid);
    const comment = JSON.stringify(failed?.['00741048']);
    expect(comment).toMatch(/\(7FE0,0010\)/);
    expect(comment).toMatch(/at byte \d+: 65536 bytes declared, 64536 present/);
    expect(await storage.index.getInstance(uids)).toBeUndefined();
    expect([...storage.blobs.blobs.keys()]).toEqual([]);
  });

  it('Pixel Data that declares 0xFFFFFFF0 bytes is refused, and the study it names is unchanged', async () => {
    const { app, storage } = memoryApp();
    const first = newInstanceUids();
    expect((await post(app, buildInstance({ ...first, pixelBytes: 128 }))).status).toBe(200);
    const before = await storage.index.getStudy(first.studyInstanceUid);
    const hostile = buildInstance({ ...newInstanceUids(first.studyInstanceUid), pixelBytes: 128 });
    // The Pixel Data length field sits 4 bytes before its value, which is the last 128 bytes.
    hostile.writeUInt32LE(0xfffffff0, hostile.length - 128 - 4);
    const { status, json } = await post(app, hostile);
    expect(status).toBe(409);
    expect(json['00081198']?.Value?.[0]?.['00081197']?.Value?.[0]).toBe(43264);
    expect(await storage.index.getStudy(first.studyInstanceUid)).toEqual(before);
    expect(await storage.index.listInstances(first.studyInstanceUid)).toHaveLength(1);
  });

  it("the same build with the check off (the benchmark's baseline) stores the cut file", async () => {
    const { storage } = memoryApp();
    const { createApp } = await import('../../src/app.js');
    const unchecked = createApp({
      storage,
      config: { publicBaseUrl: undefined, maxHeaderBytes: 1 << 20, emptySearchStatus: 200, validateStructure: false },
      log: () => undefined,
    });
    const whole = buildInstance({ ...newInstanceUids(), pixelBytes: 64 * 1024 });
    expect((await post(unchecked, whole.subarray(0, whole.length - 1000))).status).toBe(200);
  });
});
