/**
 * A broken multipart envelope stores nothing: whatever breaks (no close delimiter, a part cut
 * short, junk after a boundary, the size limit, the client gone), no instance of that request
 * becomes visible, no blob or pending note is left, and the change feed does not move.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Storage } from '../../src/storage/ports.js';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';
import { dicomParts, multipartBody } from '../../support/multipart.js';
import { abandonedPost } from '../helpers/abandoned-post.js';
import { openTestStorage, serveStorage } from '../helpers/server.js';

const BOUNDARY = 'envelope-boundary';
const TYPE = `multipart/related; type="application/dicom"; boundary=${BOUNDARY}`;

async function blobsUnder(storage: Storage, prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of storage.blobs.list(prefix)) names.push(blob.name);
  return names;
}

async function notes(storage: Storage): Promise<number> {
  let count = 0;
  for await (const note of storage.pending.olderThan(new Date(Date.now() + 24 * 3600 * 1000))) {
    if (note.kind !== 'delete') count += 1;
  }
  return count;
}

/** Three instances of one new study, the bytes of a well-framed request, and where each part ends. */
function request() {
  const study = newInstanceUids().studyInstanceUid;
  const uids = [0, 1, 2].map(() => newInstanceUids(study));
  const files = uids.map((each) => buildInstance({ ...each, pixelBytes: 4096 }));
  const body = multipartBody(dicomParts(files), BOUNDARY);
  const firstTwo = multipartBody(dicomParts(files.slice(0, 2)), BOUNDARY);
  // The end of the second part's bytes: everything before its closing "\r\n--boundary--\r\n".
  const afterTwoParts = firstTwo.length - `\r\n--${BOUNDARY}--\r\n`.length;
  return { study, uids, body, afterTwoParts };
}

describe('a broken multipart envelope stores nothing', () => {
  let storage: Storage;
  let baseUrl = '';
  let served: Awaited<ReturnType<typeof serveStorage>> | undefined;
  beforeAll(async () => {
    storage = (await openTestStorage()).storage;
    served = await serveStorage(storage, {}, { security: { maxRequestBytes: 64 * 1024 } });
    baseUrl = served.baseUrl;
  });
  afterAll(async () => {
    await served?.close();
  });

  async function expectNothingOf(study: string, feedBefore: number | undefined): Promise<void> {
    const search = await fetch(`${baseUrl}/v2/studies?StudyInstanceUID=${study}`, {
      headers: { accept: 'application/dicom+json' },
    });
    expect(await search.json()).toEqual([]);
    expect((await fetch(`${baseUrl}/v2/studies/${study}`)).status).toBe(404);
    expect(await storage.index.listInstances(study)).toEqual([]);
    expect(await blobsUnder(storage, `${study}/`)).toEqual([]);
    expect(await notes(storage)).toBe(0);
    expect((await storage.changeFeed.latest())?.sequence).toBe(feedBefore);
  }

  const post = (body: Uint8Array) =>
    fetch(`${baseUrl}/v2/studies`, {
      method: 'POST',
      headers: { 'content-type': TYPE, accept: 'application/dicom+json' },
      body: body as Uint8Array<ArrayBuffer>,
    });

  it.each([
    [
      'no close delimiter after complete parts',
      (r: ReturnType<typeof request>) => r.body.subarray(0, r.body.length - `--${BOUNDARY}--\r\n`.length),
      /closing boundary/,
    ],
    [
      'the last part cut short',
      (r: ReturnType<typeof request>) => r.body.subarray(0, r.body.length - 3000),
      /middle of a part/,
    ],
    [
      'junk after a boundary',
      (r: ReturnType<typeof request>) =>
        Buffer.concat([
          r.body.subarray(0, r.afterTwoParts),
          Buffer.from(`\r\n--${BOUNDARY}junk\r\n\r\n`),
          r.body.subarray(r.afterTwoParts),
        ]),
      /unexpected characters after the boundary/,
    ],
    [
      'a part without its header block end',
      (r: ReturnType<typeof request>) =>
        Buffer.concat([
          r.body.subarray(0, r.afterTwoParts),
          Buffer.from(`\r\n--${BOUNDARY}\r\nContent-Type: application/dicom\r\n`),
        ]),
      /headers of a part/,
    ],
  ])('%s: 400 that says what broke, nothing visible', async (_what, cut, message) => {
    const feedBefore = (await storage.changeFeed.latest())?.sequence;
    const r = request();
    const response = await post(cut(r));
    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(message);
    await expectNothingOf(r.study, feedBefore);
  });

  it('a body over the size limit after two complete parts: 413, nothing visible', async () => {
    const feedBefore = (await storage.changeFeed.latest())?.sequence;
    const study = newInstanceUids().studyInstanceUid;
    const files = [0, 1, 2].map(() => buildInstance({ ...newInstanceUids(study), pixelBytes: 30 * 1024 }));
    // Chunked (no Content-Length), so the limit trips while the third part streams.
    const body = multipartBody(dicomParts(files), BOUNDARY);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < body.length; i += 8192) controller.enqueue(body.subarray(i, i + 8192));
        controller.close();
      },
    });
    const response = await fetch(`${baseUrl}/v2/studies`, {
      method: 'POST',
      headers: { 'content-type': TYPE, accept: 'application/dicom+json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(413);
    await expectNothingOf(study, feedBefore);
  });

  it('the client gone after two complete parts: nothing visible, and the server keeps serving', async () => {
    const feedBefore = (await storage.changeFeed.latest())?.sequence;
    const r = request();
    await abandonedPost(
      `${baseUrl}/v2/studies`,
      { 'content-type': TYPE, accept: 'application/dicom+json', 'transfer-encoding': 'chunked' },
      r.body.subarray(0, r.afterTwoParts + 100),
      300,
    );
    // The server notices the reset, then removes what it staged.
    for (let i = 0; i < 50 && (await blobsUnder(storage, `${r.study}/`)).length > 0; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await expectNothingOf(r.study, feedBefore);
    const again = request();
    expect((await post(again.body)).status).toBe(200);
    expect(await storage.index.listInstances(again.study)).toHaveLength(3);
  });

  it('a well-framed request in which one instance fails stays per-instance: 202, the others stored', async () => {
    const study = newInstanceUids().studyInstanceUid;
    const [first, second] = [newInstanceUids(study), newInstanceUids(study)];
    const broken = buildInstance({ ...newInstanceUids(study), pixelBytes: 16 }).subarray(0, 100);
    const body = multipartBody(
      dicomParts([buildInstance({ ...first }), broken, buildInstance({ ...second })]),
      BOUNDARY,
    );
    const response = await post(body);
    expect(response.status).toBe(202);
    expect((await storage.index.listInstances(study)).map((each) => each.sopInstanceUid).sort()).toEqual(
      [first.sopInstanceUid, second.sopInstanceUid].sort(),
    );
  });
});
