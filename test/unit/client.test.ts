import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FILE_CHUNK, fileSource, type InstanceSource } from '../../src/client/sources.js';
import { boundaryOf, readFileMeta, readParts } from '../../src/client/index.js';
import { backoffMs, retryAfterMs } from '../../src/client/retry.js';
import { batchFiles, matchOutcomes } from '../../src/client/upload.js';
import { multipartRelated, READ_AHEAD } from '../../src/client/multipart-body.js';
import type { DicomFile } from '../../src/client/index.js';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';
import { multipartBody } from '../../support/multipart.js';

/** `bytes` as a stream of chunks of `size` bytes, so delimiters fall across chunk edges. */
function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) controller.close();
      else controller.enqueue(bytes.slice(at, (at += size)));
    },
  });
}

async function partsOf(body: Uint8Array, boundary: string, size: number) {
  const found: { type: string | undefined; bytes: Buffer }[] = [];
  for await (const part of readParts(chunked(body, size), boundary)) {
    found.push({ type: part.headers['content-type'], bytes: Buffer.from(await new Response(part.body).arrayBuffer()) });
  }
  return found;
}

describe('readParts (WADO multipart responses)', () => {
  const payloads = [Buffer.from('\r\n--boun almost a delimiter\r\n-'), Buffer.alloc(10_000, 7), Buffer.alloc(0)];
  const body = multipartBody(
    payloads.map((bytes) => ({ body: bytes })),
    'bound',
  );

  it.each([1, 3, 7, 64, 100_000])('gives each part byte for byte, in chunks of %i', async (size) => {
    const parts = await partsOf(body, 'bound', size);
    expect(parts.map((part) => part.type)).toEqual(['application/dicom', 'application/dicom', 'application/dicom']);
    expect(parts.map((part) => part.bytes)).toEqual(payloads);
  });

  it('skips a part the caller did not read, and fails on a body cut short', async () => {
    let count = 0;
    for await (const part of readParts(chunked(body, 5), 'bound')) {
      if (part.headers['content-type']) count += 1;
    }
    expect(count).toBe(3);
    await expect(partsOf(body.subarray(0, body.length - 12), 'bound', 50)).rejects.toThrow(
      'ended before its closing boundary',
    );
  });

  it('reads the boundary parameter, quoted or not', () => {
    expect(boundaryOf('multipart/related; type="application/dicom"; boundary=abc')).toBe('abc');
    expect(boundaryOf('multipart/related; boundary="a b;c"; type=x')).toBe('a b;c');
    expect(boundaryOf('application/dicom')).toBeUndefined();
  });
});

describe('readFileMeta (the CLI’s DICOM check)', () => {
  it('names the instance of a Part 10 file and refuses what has no DICM prefix', () => {
    const uids = newInstanceUids();
    const check = readFileMeta(buildInstance({ ...uids, pixelBytes: 16 }));
    expect(check).toEqual({
      ok: true,
      meta: {
        sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
        sopInstanceUid: uids.sopInstanceUid,
        transferSyntaxUid: '1.2.840.10008.1.2.1',
      },
    });
    const notDicom = readFileMeta(Buffer.alloc(300));
    expect(notDicom.ok ? '' : notDicom.reason).toContain('no DICM prefix');
    expect(readFileMeta(Buffer.alloc(10))).toMatchObject({ ok: false, reason: 'too short for DICOM (10 bytes)' });
  });
});

describe('batching and matching an upload', () => {
  const file = (uid: string | undefined, size = 10): DicomFile => ({
    kind: 'dicom',
    path: `/f/${uid ?? 'none'}`,
    size,
    mtimeMs: 0,
    meta: { sopInstanceUid: uid },
  });

  it('groups files in order up to the bytes and count limits; a large file goes alone', () => {
    const sizes = [5, 5, 5, 30, 5, 5, 5, 5].map((size, i) => file(String(i), size));
    expect(batchFiles(sizes, 12, 3).map((batch) => batch.map((f) => f.size))).toEqual([
      [5, 5],
      [5],
      [30],
      [5, 5],
      [5, 5],
    ]);
  });

  it('gives each file its own outcome by SOP Instance UID, duplicates in order, unnamed failures to unnamed files', () => {
    const files = [file('1'), file('2'), file('1'), file(undefined)];
    const outcomes = matchOutcomes(files, {
      httpStatus: 202,
      instances: [
        { status: 'stored', sopInstanceUid: '1', comments: [] },
        { status: 'stored', sopInstanceUid: '2', comments: [] },
        { status: 'already-stored', sopInstanceUid: '1', failureReason: 45070, comments: [] },
        { status: 'failed', failureReason: 43264, comments: ['broken'] },
      ],
    });
    expect(outcomes.map((outcome) => [outcome.file.path, outcome.status])).toEqual([
      ['/f/1', 'stored'],
      ['/f/2', 'stored'],
      ['/f/1', 'already-stored'],
      ['/f/none', 'failed'],
    ]);
  });
});

describe('retry timing', () => {
  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('5')).toBe(5000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });

  it('backs off exponentially with jitter, within half and all of each step, capped', () => {
    const options = { retries: 5, baseDelayMs: 100, maxDelayMs: 1000 };
    expect([0, 1, 2, 3, 4].map((attempt) => backoffMs(attempt, options, () => 0))).toEqual([50, 100, 200, 400, 500]);
    expect([0, 1, 2, 3, 4].map((attempt) => backoffMs(attempt, options, () => 1))).toEqual([100, 200, 400, 800, 1000]);
  });
});

describe('fileSource (what an upload reads)', () => {
  async function chunksOf(source: InstanceSource): Promise<Uint8Array[]> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of source.open()) chunks.push(chunk);
    return chunks;
  }

  it('sends every byte of a file, with its size known (small, over a chunk, empty) or not', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'source-'));
    try {
      const small = randomBytes(3000);
      const large = randomBytes(FILE_CHUNK + 5);
      await writeFile(join(folder, 'small'), small);
      await writeFile(join(folder, 'large'), large);
      await writeFile(join(folder, 'empty'), new Uint8Array());
      const smallChunks = await chunksOf(fileSource(join(folder, 'small'), small.byteLength));
      expect(Buffer.concat(smallChunks).equals(small)).toBe(true);
      expect(Buffer.concat(await chunksOf(fileSource(join(folder, 'large'), large.byteLength))).equals(large)).toBe(
        true,
      );
      expect(Buffer.concat(await chunksOf(fileSource(join(folder, 'large')))).equals(large)).toBe(true);
      expect(await chunksOf(fileSource(join(folder, 'empty'), 0))).toEqual([]);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

describe('the multipart/related body the client sends', () => {
  it('reads at most READ_AHEAD chunks ahead of its reader, and frames every part', async () => {
    let produced = 0;
    const source = (name: string, chunks: number): InstanceSource => ({
      name,
      replayable: true,
      async *open() {
        for (let i = 0; i < chunks; i += 1) {
          produced += 1;
          await Promise.resolve();
          yield Buffer.from(`${name}:${i};`);
        }
      },
    });
    const body = multipartRelated([source('a', 5), source('b', 5)]);
    const reader = body.stream().getReader();
    const received: Buffer[] = [];
    let consumed = 0;
    for (;;) {
      // Let the stream fill its queue before each read, as a slow socket would.
      await new Promise((resolve) => setTimeout(resolve, 1));
      // Read chunks (the sources' ones, part headers and delimiters) stay within the read-ahead.
      expect(produced).toBeLessThanOrEqual(consumed + READ_AHEAD + 1);
      const next = await reader.read();
      if (next.done) break;
      received.push(Buffer.from(next.value));
      consumed += 1;
    }
    const boundary = body.contentType.match(/boundary=(\S+)/)?.[1] ?? '';
    const parts = await partsOf(Buffer.concat(received), boundary, 7);
    expect(parts.map((part) => part.bytes.toString())).toEqual(['a:0;a:1;a:2;a:3;a:4;', 'b:0;b:1;b:2;b:3;b:4;']);
    expect(parts.map((part) => part.type)).toEqual(['application/dicom', 'application/dicom']);
  });
});
