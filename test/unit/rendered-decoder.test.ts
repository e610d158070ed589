/**
 * The seams of rendering that Azurite tests cannot reach on their own: compressed frames through
 * the injected FrameDecoder (what the codecs plug into), and a thumbnail cached while a delete
 * removes its instance.
 */
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import type { DecodedFrame, PixelDescription } from '../../src/dicom/codecs/pixel-description.js';
import { cacheThumbnail, readThumbnails } from '../../src/dicomweb/thumbnail-cache.js';
import type { FrameDecoder } from '../../src/http/context.js';
import { thumbnailCacheBlobName } from '../../src/storage/keys.js';
import { createMemoryStorage } from '../../src/storage/memory-storage.js';
import { buildInstance, JPEG_BASELINE, newInstanceUids } from '../../support/dicom-builder.js';
import { stowRequestInit } from '../../support/multipart.js';

const us = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return { vr: 'US', value: b };
};

const uids = newInstanceUids();
const fragments = [Buffer.from([0xff, 0xd8, 1, 2, 3]), Buffer.from([4, 5, 0xff, 0xd9])];
const file = buildInstance({
  ...uids,
  transferSyntax: JPEG_BASELINE,
  attributes: {
    '00280002': us(3),
    '00280004': { vr: 'CS', value: 'YBR_FULL_422' },
    '00280006': us(0),
    '00280010': us(2),
    '00280011': us(2),
    '00280100': us(8),
    '00280101': us(8),
    '00280102': us(7),
    '00280103': us(0),
  },
  fragments,
});
const path = `/v2/studies/${uids.studyInstanceUid}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`;

async function appWith(decodeFrame?: FrameDecoder) {
  const storage = createMemoryStorage();
  const app = createApp({
    storage,
    config: { publicBaseUrl: undefined, maxHeaderBytes: 1 << 20, emptySearchStatus: 200 },
    log: () => undefined,
    audit: () => undefined,
    ...(decodeFrame ? { decodeFrame } : {}),
  });
  const stored = await app.handle(new Request('http://local/v2/studies', stowRequestInit([file])));
  expect(stored.status).toBe(200);
  return { storage, app, get: (url: string) => app.handle(new Request(`http://local${url}`)) };
}

describe('rendering a compressed frame through the injected decoder', () => {
  it('hands the decoder the syntax, the frame bytes and the description, and renders what it returns', async () => {
    const calls: { syntax: string; encoded: Uint8Array; description: PixelDescription }[] = [];
    const decoder: FrameDecoder = (syntax, encoded, description) => {
      calls.push({ syntax, encoded, description });
      // A JPEG decoder returns RGB, and says so in the description.
      const frame: DecodedFrame = {
        pixels: Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]),
        description: { ...description, photometricInterpretation: 'RGB' },
      };
      return Promise.resolve(frame);
    };
    const { get } = await appWith(decoder);
    const response = await get(`${path}/rendered?accept=image/png`);
    expect(response.status).toBe(200);
    const decoded = PNG.sync.read(Buffer.from(await response.arrayBuffer()));
    expect([...decoded.data.subarray(0, 16)]).toEqual([255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 9, 9, 9, 255]);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.syntax).toBe(JPEG_BASELINE);
    expect(Buffer.from(calls[0]?.encoded ?? [])).toEqual(Buffer.concat(fragments));
    expect(calls[0]?.description).toMatchObject({ rows: 2, columns: 2, samplesPerPixel: 3, bitsAllocated: 8 });
    expect(calls[0]?.description.photometricInterpretation).toBe('YBR_FULL_422');
  });

  it('answers 406 naming the syntax when there is no decoder, or the decoder fails', async () => {
    const none = await appWith();
    const refused = await none.get(`${path}/rendered`);
    expect(refused.status).toBe(406);
    expect(await refused.text()).toContain(`Cannot render transfer syntax ${JPEG_BASELINE}`);
    const failing = await appWith(() => Promise.reject(new Error('not a JPEG stream')));
    const failed = await failing.get(`${path}/thumbnail`);
    expect(failed.status).toBe(406);
    expect(await failed.text()).toContain('not a JPEG stream');
  });
});

describe('thumbnail cache', () => {
  it('keeps entries by key and removes a cache blob whose instance a delete removed meanwhile', async () => {
    const { storage, app } = await appWith(() => Promise.reject(new Error('unused')));
    const record = await storage.index.getInstance(uids);
    if (!record) throw new Error('the instance was not stored');
    const name = thumbnailCacheBlobName(record.blobName);
    await cacheThumbnail(storage, record, await readThumbnails(storage, record), 'a', Buffer.from('first'));
    await cacheThumbnail(storage, record, await readThumbnails(storage, record), 'b', Buffer.from('second'));
    const cached = await readThumbnails(storage, record);
    expect(Buffer.from(cached.find('a') ?? [])).toEqual(Buffer.from('first'));
    expect(Buffer.from(cached.find('b') ?? [])).toEqual(Buffer.from('second'));
    expect(cached.find('c')).toBeUndefined();
    // A delete takes the cache with the instance...
    expect((await app.handle(new Request(`http://local${path}`, { method: 'DELETE' }))).status).toBe(204);
    expect(await storage.blobs.readSmall(name)).toBeUndefined();
    // ...and a render that finishes after the delete does not leave its append behind.
    await cacheThumbnail(storage, record, await readThumbnails(storage, record), 'a', Buffer.from('late'));
    expect(await storage.blobs.readSmall(name)).toBeUndefined();
  });
});
