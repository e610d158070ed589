import { describe, expect, it } from 'vitest';
import { DicomwebError } from '../../src/dicomweb/errors.js';
import { MultipartReader } from '../../src/http/multipart-reader.js';
import { multipartBody } from '../../support/multipart.js';

async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) {
    await Promise.resolve();
    yield bytes.subarray(i, i + size);
  }
}

async function readAll(
  body: Uint8Array,
  boundary: string,
  chunkSize = 1 << 16,
  limits?: ConstructorParameters<typeof MultipartReader>[2],
) {
  const parts: { headers: Record<string, string>; body: Buffer }[] = [];
  for await (const part of new MultipartReader(chunked(body, chunkSize), boundary, limits).parts()) {
    const chunks: Uint8Array[] = [];
    for await (const chunk of part.body) chunks.push(chunk);
    parts.push({ headers: Object.fromEntries(part.headers), body: Buffer.concat(chunks) });
  }
  return parts;
}

async function failure(promise: Promise<unknown>): Promise<DicomwebError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DicomwebError) return error;
    throw error;
  }
  throw new Error('expected a DicomwebError');
}

describe('MultipartReader', () => {
  const payloads = [
    Buffer.from('first part'),
    Buffer.alloc(3000, 7),
    Buffer.from('\r\n--notboundary\r\n tricky \r\n-'),
  ];
  const body = multipartBody(
    payloads.map((payload) => ({ body: payload, headers: { 'Content-Type': 'application/dicom', 'X-Other': 'a: b' } })),
    'sep',
  );

  it('yields every part intact whatever the chunk size, including 1-byte chunks', async () => {
    for (const size of [1, 2, 3, 5, 7, 13, 64, 1000, 1 << 20]) {
      const parts = await readAll(body, 'sep', size);
      expect(parts.map((part) => part.body)).toEqual(payloads);
      expect(parts[0]?.headers).toEqual({ 'content-type': 'application/dicom', 'x-other': 'a: b' });
    }
  });

  it('skips a preamble and accepts transport padding after a boundary', async () => {
    const text = 'preamble text\r\n--b  \t\r\nContent-Type: application/dicom\r\n\r\nABC\r\n--b--  \r\nepilogue';
    const parts = await readAll(Buffer.from(text), 'b', 4);
    expect(parts.map((part) => part.body.toString())).toEqual(['ABC']);
  });

  it('reads a part with no headers', async () => {
    const parts = await readAll(Buffer.from('--b\r\n\r\nXYZ\r\n--b--'), 'b');
    expect(parts).toEqual([{ headers: {}, body: Buffer.from('XYZ') }]);
  });

  it('skips parts the consumer does not read', async () => {
    const reader = new MultipartReader(chunked(body, 11), 'sep');
    let count = 0;
    for await (const part of reader.parts()) {
      expect(part.headers).toBeInstanceOf(Map);
      count += 1;
    }
    expect(count).toBe(3);
  });

  it('fails a body that ends inside a part, inside headers, or before any boundary', async () => {
    expect((await failure(readAll(body.subarray(0, body.length - 20), 'sep'))).message).toMatch(/middle of a part/);
    expect((await failure(readAll(Buffer.from('--sep\r\nContent-Ty'), 'sep'))).message).toMatch(/inside the headers/);
    expect((await failure(readAll(Buffer.from('no boundary here'), 'sep'))).message).toMatch(
      /does not contain the boundary/,
    );
    expect((await failure(readAll(Buffer.alloc(0), 'sep'))).message).toMatch(/empty/);
  });

  it('fails oversized part headers and a long preamble with 400', async () => {
    const big = Buffer.from(`--b\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\nA\r\n--b--`);
    const error = await failure(readAll(big, 'b', 1000));
    expect(error.status).toBe(400);
    expect(error.message).toMatch(/headers are longer/);
    const preamble = Buffer.concat([Buffer.alloc(100_000, 0x61), Buffer.from('\r\n--b\r\n\r\nA\r\n--b--')]);
    expect((await failure(readAll(preamble, 'b', 4096))).message).toMatch(/does not start with the boundary/);
  });

  it('rejects junk after a boundary', async () => {
    const error = await failure(readAll(Buffer.from('--b junk\r\n\r\nA\r\n--b--'), 'b'));
    expect(error.message).toMatch(/unexpected characters/);
  });

  it('holds back no more than a delimiter while streaming a large part', async () => {
    const large = Buffer.alloc(4 * 1024 * 1024, 1);
    const reader = new MultipartReader(chunked(multipartBody([{ body: large }], 'q'), 65536), 'q');
    let largest = 0;
    let total = 0;
    for await (const part of reader.parts()) {
      for await (const chunk of part.body) {
        largest = Math.max(largest, chunk.byteLength);
        total += chunk.byteLength;
      }
    }
    expect(total).toBe(large.length);
    expect(largest).toBeLessThanOrEqual(65536 + 8);
  });
});
