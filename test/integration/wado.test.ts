import dicomParser from 'dicom-parser';
import { request as httpRequest } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildInstance,
  EXPLICIT_BE,
  IMPLICIT_LE,
  JPEG_BASELINE,
  newInstanceUids,
  testUid,
} from '../../support/dicom-builder.js';
import type { ByteRange, Storage } from '../../src/storage/ports.js';
import { stowRequestInit } from '../../support/multipart.js';
import { fetchParts } from '../helpers/multipart-decode.js';
import { openTestStorage, serveStorage, useTestServer } from '../helpers/server.js';

const server = useTestServer();
const study = testUid();
const series = testUid();
const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};
/** 4 frames of 4x4 16-bit pixels, frame k filled with k+1. */
const frameBytes = (k: number) => Buffer.alloc(32, k + 1);
const native = {
  ...newInstanceUids(study, series),
  attributes: {
    '00280008': { vr: 'IS', value: '4' },
    '00280010': { vr: 'US', value: u16(4) },
    '00280011': { vr: 'US', value: u16(4) },
    '00280002': { vr: 'US', value: u16(1) },
    '00280100': { vr: 'US', value: u16(16) },
    '00290010': { vr: 'LO', value: 'PRIVATE' },
    '00291010': { vr: 'OB', value: Buffer.alloc(5000, 3) },
  },
};
const nativeFile = () => {
  const file = buildInstance({ ...native, pixelBytes: 128 });
  // Overwrite the pixel value with distinct frames.
  Buffer.concat([0, 1, 2, 3].map(frameBytes)).copy(file, file.length - 128);
  return file;
};
const jpeg = (n: number, size: number) =>
  Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(size - 4, n)]);
const encapsulatedUids = newInstanceUids(study, series);
const bigEndianUids = newInstanceUids(study, testUid());

const base = () => `${server().baseUrl}/v2/studies/${study}`;
const instanceUrl = (uids: { seriesInstanceUid: string; sopInstanceUid: string }) =>
  `${base()}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`;

describe('WADO-RS against Azurite', () => {
  beforeAll(async () => {
    const files = [
      nativeFile(),
      buildInstance({
        ...encapsulatedUids,
        transferSyntax: JPEG_BASELINE,
        attributes: { '00280008': { vr: 'IS', value: '2' } },
        fragments: [jpeg(1, 100), Buffer.alloc(50, 9), jpeg(2, 60)],
      }),
      buildInstance({
        ...bigEndianUids,
        transferSyntax: EXPLICIT_BE,
        attributes: {
          '00280010': { vr: 'US', value: u16(2) },
          '00280011': { vr: 'US', value: u16(2) },
          '00280100': { vr: 'US', value: u16(16) },
        },
        pixelBytes: 8,
      }),
    ];
    const response = await fetch(`${server().baseUrl}/v2/studies`, stowRequestInit(files));
    expect(response.status).toBe(200);
  });

  it('retrieves a study as stored, byte for byte, with PS3.18 content types', async () => {
    const result = await fetchParts(base(), 'multipart/related; type="application/dicom"; transfer-syntax=*');
    expect(result.status).toBe(200);
    expect(result.type).toMatch(/^multipart\/related; type="application\/dicom"; boundary=/);
    expect(result.parts.map((part) => part.headers['content-type'])).toEqual([
      'application/dicom; transfer-syntax=1.2.840.10008.1.2.1',
      `application/dicom; transfer-syntax=${JPEG_BASELINE}`,
      `application/dicom; transfer-syntax=${EXPLICIT_BE}`,
    ]);
    expect(result.parts[0]?.body.equals(nativeFile())).toBe(true);
  });

  it('refuses a study in JPEG 2000 lossless when an instance is lossy JPEG, naming what it can send', async () => {
    const result = await fetchParts(
      base(),
      'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.90',
    );
    expect(result.status).toBe(406);
    expect(result.text).toMatch(/transfer-syntax=\*/);
    expect(result.text).toMatch(/may be lossy/);
  });

  it('transcodes an uncompressed instance to the syntax asked for', async () => {
    for (const syntax of ['1.2.840.10008.1.2.1', IMPLICIT_LE]) {
      const result = await fetchParts(
        instanceUrl(bigEndianUids),
        `multipart/related; type="application/dicom"; transfer-syntax=${syntax}`,
      );
      expect(result.parts[0]?.headers['content-type']).toBe(`application/dicom; transfer-syntax=${syntax}`);
      const dataSet = dicomParser.parseDicom(new Uint8Array(result.parts[0]?.body ?? []));
      expect(dataSet.string('x00020010')).toBe(syntax);
      expect(dataSet.uint16('x00280010')).toBe(2);
      expect(dataSet.string('x00080018')).toBe(bigEndianUids.sopInstanceUid);
    }
  });

  it('returns a single instance single-part for application/dicom', async () => {
    const response = await fetch(instanceUrl(native), { headers: { accept: 'application/dicom; transfer-syntax=*' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/dicom; transfer-syntax=1.2.840.10008.1.2.1');
    expect(Buffer.from(await response.arrayBuffer()).equals(nativeFile())).toBe(true);
  });

  it('returns native frames by byte range, in the order asked', async () => {
    const result = await fetchParts(
      `${instanceUrl(native)}/frames/3,1`,
      'multipart/related; type="application/octet-stream"',
    );
    expect(result.status).toBe(200);
    expect(result.parts.map((part) => part.headers['content-type'])).toEqual([
      'application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1',
      'application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1',
    ]);
    expect(result.parts.map((part) => part.body)).toEqual([frameBytes(2), frameBytes(0)]);
    const single = await fetch(`${instanceUrl(native)}/frames/4`, { headers: { accept: 'application/octet-stream' } });
    expect(Buffer.from(await single.arrayBuffer())).toEqual(frameBytes(3));
  });

  it('returns compressed frames as stored, grouped by image start without an offset table', async () => {
    const result = await fetchParts(
      `${instanceUrl(encapsulatedUids)}/frames/1,2`,
      'multipart/related; type="application/octet-stream"; transfer-syntax=*',
    );
    expect(result.parts.map((part) => part.body.length)).toEqual([150, 60]);
    expect(result.parts[0]?.headers['content-type']).toBe(`application/octet-stream; transfer-syntax=${JPEG_BASELINE}`);
    const asJpeg = await fetchParts(
      `${instanceUrl(encapsulatedUids)}/frames/2`,
      'multipart/related; type="image/jpeg"',
    );
    expect(asJpeg.parts[0]?.headers['content-type']).toBe(`image/jpeg; transfer-syntax=${JPEG_BASELINE}`);
    const decode = await fetchParts(
      `${instanceUrl(encapsulatedUids)}/frames/1`,
      'multipart/related; type="application/octet-stream"',
    );
    expect(decode.status).toBe(406);
    expect(decode.text).toMatch(/as stored/);
  });

  it('swaps big endian 16-bit pixels to little endian frames', async () => {
    const result = await fetchParts(
      `${instanceUrl(bigEndianUids)}/frames/1`,
      'multipart/related; type="application/octet-stream"',
    );
    expect(result.parts[0]?.body).toEqual(Buffer.alloc(8, 0x5a));
  });

  it('rejects bad frame lists with 400 and missing frames with 404', async () => {
    for (const frames of ['0', 'a', '1,1', '1,,2', '-1']) {
      const result = await fetchParts(`${instanceUrl(native)}/frames/${frames}`, '*/*');
      expect({ frames, status: result.status }).toEqual({ frames, status: 400 });
    }
    expect((await fetchParts(`${instanceUrl(native)}/frames/5`, '*/*')).status).toBe(404);
    expect((await fetchParts(`${instanceUrl(native)}/frames/1,2`, 'application/octet-stream')).status).toBe(400);
  });

  it('answers metadata at three levels with BulkDataURIs that resolve, and 304 for a matching ETag', async () => {
    const response = await fetch(`${instanceUrl(native)}/metadata`, { headers: { accept: 'application/dicom+json' } });
    expect(response.status).toBe(200);
    const etag = response.headers.get('etag');
    expect(etag).toMatch(/^"/);
    const [metadata] = (await response.json()) as Record<
      string,
      { vr: string; BulkDataURI?: string; Value?: unknown[] }
    >[];
    expect(metadata?.['00080018']?.Value).toEqual([native.sopInstanceUid]);
    expect(metadata?.['00280008']?.Value).toEqual([4]);
    const privateBlob = metadata?.['00291010']?.BulkDataURI ?? '';
    expect(privateBlob.startsWith(`${instanceUrl(native)}/bulkdata/`)).toBe(true);
    const bulk = await fetchParts(privateBlob, 'multipart/related; type="application/octet-stream"');
    expect(bulk.parts[0]?.body).toEqual(Buffer.alloc(5000, 3));
    const pixels = await fetchParts(metadata?.['7FE00010']?.BulkDataURI ?? '', '*/*');
    expect(pixels.parts).toHaveLength(4);
    const again = await fetch(`${instanceUrl(native)}/metadata`, {
      headers: { accept: 'application/dicom+json', 'if-none-match': etag ?? '' },
    });
    expect(again.status).toBe(304);
    const seriesMetadata = (await (await fetch(`${base()}/series/${series}/metadata`)).json()) as unknown[];
    expect(seriesMetadata).toHaveLength(2);
    const studyMetadata = (await (await fetch(`${base()}/metadata`)).json()) as unknown[];
    expect(studyMetadata).toHaveLength(3);
  });

  it('answers 404, 400 and 406 for what cannot be served', async () => {
    expect((await fetchParts(`${server().baseUrl}/v2/studies/${testUid()}`, '*/*')).status).toBe(404);
    expect((await fetchParts(`${base()}/series/${testUid()}/metadata`, 'application/dicom+json')).status).toBe(404);
    expect((await fetchParts(`${server().baseUrl}/v2/studies/1..2`, '*/*')).status).toBe(400);
    expect((await fetchParts(base(), 'application/dicom')).status).toBe(406);
    expect((await fetchParts(`${instanceUrl(native)}/metadata`, 'application/dicom')).status).toBe(406);
    expect((await fetchParts(base(), 'garbage')).status).toBe(400);
  });

  it('honours q-values among several media ranges', async () => {
    const result = await fetchParts(
      instanceUrl(native),
      'application/dicom; q=0.5, multipart/related; type="application/dicom"; transfer-syntax="*"; q=0.9',
    );
    expect(result.type).toMatch(/^multipart\/related/);
  });

  it('stops the blob download when the client goes away mid-response', async () => {
    // The blob store this server reads from counts what it hands out, and whether the read was closed.
    const { storage } = await openTestStorage();
    let yielded = 0;
    let closed = false;
    const counting: Storage = {
      ...storage,
      blobs: Object.assign(Object.create(storage.blobs) as Storage['blobs'], {
        read(name: string, range?: ByteRange, signal?: AbortSignal): AsyncIterable<Uint8Array> {
          const source = storage.blobs.read(name, range, signal);
          return (async function* () {
            try {
              for await (const chunk of source) {
                yielded += chunk.byteLength;
                yield chunk;
              }
            } finally {
              closed = true;
            }
          })();
        },
      }),
    };
    const served = await serveStorage(counting);
    try {
      const uids = newInstanceUids();
      const big = buildInstance({ ...uids, pixelBytes: 30 * 1024 * 1024 });
      const stored = await fetch(`${served.baseUrl}/v2/studies`, {
        method: 'POST',
        headers: { 'content-type': 'application/dicom', accept: 'application/dicom+json' },
        body: big as Uint8Array<ArrayBuffer>,
      });
      expect(stored.status).toBe(200);
      const url = new URL(
        `${served.baseUrl}/v2/studies/${uids.studyInstanceUid}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`,
      );
      await new Promise<void>((resolve) => {
        let bytes = 0;
        const req = httpRequest(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            headers: { accept: 'application/dicom; transfer-syntax=*' },
          },
          (res) => {
            res.on('data', (chunk: Buffer) => {
              bytes += chunk.length;
              if (bytes > 1024 * 1024) {
                req.destroy();
                resolve();
              }
            });
          },
        );
        req.end();
      });
      // Once the server notices, the read is closed and nothing more is fetched from storage.
      for (let i = 0; i < 50 && !closed; i += 1) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(closed).toBe(true);
      const atClose = yielded;
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(yielded).toBe(atClose);
      // The client took 1 MiB; the server held at most its read-ahead (4 MiB) and socket buffers more.
      expect(yielded).toBeLessThan(12 * 1024 * 1024);
      expect(yielded).toBeLessThan(big.length / 2);
      // The server is still healthy for the next request.
      const next = await fetch(url, { headers: { accept: 'application/dicom; transfer-syntax=*' } });
      expect(Buffer.from(await next.arrayBuffer()).equals(big)).toBe(true);
    } finally {
      await served.close();
    }
  });
});
