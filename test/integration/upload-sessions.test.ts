import { createHash } from 'node:crypto';
import { BlockBlobClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUploadSession, sweepUploadSessions } from '../../src/dicomweb/upload-session.js';
import { blockId, UploadSessionKeys } from '../../src/storage/keys.js';
import { buildInstance, newInstanceUids, testUid } from '../../support/dicom-builder.js';
import { FRAME_BYTES, largeInstance } from '../../support/large-instance.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

interface OpenedSession {
  id: string;
  url: string;
  uploadUrl: string;
  expiresAt: string;
  blockSize: number;
  maxBlocks: number;
}

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

async function open(body?: unknown): Promise<OpenedSession> {
  const response = await fetch(`${server.baseUrl}/v2/upload-sessions`, {
    method: 'POST',
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  expect(response.status).toBe(201);
  const session = (await response.json()) as OpenedSession;
  expect(response.headers.get('location')).toBe(session.url);
  return session;
}

async function stageBlocks(
  uploadUrl: string,
  file: Buffer,
  blockSize: number,
  only?: readonly number[],
): Promise<void> {
  const blob = new BlockBlobClient(uploadUrl);
  const count = Math.ceil(file.length / blockSize);
  for (const index of only ?? Array.from({ length: count }, (_, i) => i)) {
    const part = file.subarray(index * blockSize, (index + 1) * blockSize);
    await blob.stageBlock(blockId(index), part, part.length);
  }
}

async function commit(session: OpenedSession): Promise<Response> {
  return fetch(`${session.url}/commit`, { method: 'POST', headers: { accept: 'application/dicom+json' } });
}

async function stagingBlobs(): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of server.storage.blobs.list('upload-sessions/')) names.push(blob.name);
  return names;
}

function instanceUrl(key: ReturnType<typeof newInstanceUids>): string {
  return `${server.baseUrl}/v2/studies/${key.studyInstanceUid}/series/${key.seriesInstanceUid}/instances/${key.sopInstanceUid}`;
}

async function retrieved(key: ReturnType<typeof newInstanceUids>): Promise<Buffer> {
  const response = await fetch(instanceUrl(key), { headers: { accept: 'application/dicom; transfer-syntax=*' } });
  expect(response.status).toBe(200);
  return Buffer.from(await response.arrayBuffer());
}

describe('upload sessions', () => {
  it('stores an instance uploaded in blocks sent out of order, byte for byte, and ends the session', async () => {
    const key = newInstanceUids();
    const file = buildInstance({ ...key, pixelBytes: 600_000 });
    const session = await open({ size: file.length, sha256: createHash('sha256').update(file).digest('hex') });
    expect(session.uploadUrl).toContain(UploadSessionKeys.blobName(session.id));
    expect(Date.parse(session.expiresAt)).toBeGreaterThan(Date.now());
    const blockSize = 256 * 1024;
    await stageBlocks(session.uploadUrl, file, blockSize, [2, 0, 1]);

    const stored = await commit(session);
    expect(stored.status).toBe(200);
    const answer = (await stored.json()) as Record<string, { Value?: Record<string, { Value?: unknown[] }>[] }>;
    const referenced = answer['00081199']?.Value?.[0];
    expect(referenced?.['00081155']?.Value?.[0]).toBe(key.sopInstanceUid);
    expect((await retrieved(key)).equals(file)).toBe(true);

    expect((await fetch(session.url)).status).toBe(404);
    expect((await commit(session)).status).toBe(404);
    expect(await stagingBlobs()).toEqual([]);
  });

  it('tells which blocks arrived, so an interrupted upload resumes with only the missing ones', async () => {
    const key = newInstanceUids();
    const file = buildInstance({ ...key, pixelBytes: 300_000 });
    const session = await open({ size: file.length });
    const blockSize = 100_000;
    await stageBlocks(session.uploadUrl, file, blockSize, [0, 1]);

    const progress = await fetch(session.url);
    expect(progress.status).toBe(200);
    const state = (await progress.json()) as {
      blocks: { id: string; size: number }[];
      receivedBytes: number;
      uploadUrl: string;
    };
    expect(state.blocks).toEqual([
      { id: blockId(0), size: blockSize },
      { id: blockId(1), size: blockSize },
    ]);
    expect(state.receivedBytes).toBe(2 * blockSize);
    expect(state.uploadUrl).toContain(UploadSessionKeys.blobName(session.id));

    // Committing early is refused (the size is not reached) and leaves the session open.
    const early = await commit(session);
    expect(early.status).toBe(400);
    expect(await early.text()).toMatch(/200000 bytes but was opened for \d+/);

    const missing = Array.from({ length: Math.ceil(file.length / blockSize) }, (_, i) => i).filter((i) => i > 1);
    await stageBlocks(session.uploadUrl, file, blockSize, missing);
    expect((await commit(session)).status).toBe(200);
    expect((await retrieved(key)).equals(file)).toBe(true);
  });

  it('accepts a blob the client committed itself (Put Blob through the URL, as the Azure SDKs do)', async () => {
    const key = newInstanceUids();
    const file = buildInstance({ ...key, pixelBytes: 2048 });
    const session = await open();
    await new BlockBlobClient(session.uploadUrl).uploadData(file);
    expect((await commit(session)).status).toBe(200);
    expect((await retrieved(key)).equals(file)).toBe(true);
  });

  it('gives a URL that writes only its own blob: no read, no other blob, nothing after expiry', async () => {
    const session = await open();
    const own = new BlockBlobClient(session.uploadUrl);
    await own.stageBlock(blockId(0), Buffer.from('x'), 1);
    await expect(own.getBlockList('all')).rejects.toMatchObject({ statusCode: 403 });
    await expect(own.download()).rejects.toMatchObject({ statusCode: 403 });
    const elsewhere = new URL(session.uploadUrl);
    elsewhere.pathname = elsewhere.pathname.replace(/upload-sessions\/[0-9a-f]+\.dcm$/, '1.2.3/1.2.4/1.2.5/v.dcm');
    await expect(new BlockBlobClient(elsewhere.toString()).uploadData(Buffer.from('evil'))).rejects.toMatchObject({
      statusCode: 403,
    });

    // A session opened 61 minutes ago for 60 minutes: its URL and the session are over.
    const past = new Date(Date.now() - 61 * 60_000);
    const expired = await createUploadSession(server.storage, { expiresInMinutes: 60 }, 120, past);
    await expect(
      new BlockBlobClient(expired.uploadUrl).stageBlock(blockId(0), Buffer.from('x'), 1),
    ).rejects.toMatchObject({ statusCode: 403 });
    const answer = await fetch(`${server.baseUrl}/v2/upload-sessions/${expired.session.id}/commit`, { method: 'POST' });
    expect(answer.status).toBe(404);
    expect(await answer.text()).toMatch(/expired/);
  });

  it('refuses bytes that differ from the announced SHA-256 and keeps the session for a corrected upload', async () => {
    const key = newInstanceUids();
    const file = buildInstance({ ...key, pixelBytes: 1000 });
    const session = await open({ sha256: createHash('sha256').update(file).digest('hex') });
    const wrong = Buffer.from(file);
    wrong.writeUInt8(wrong.readUInt8(wrong.length - 1) ^ 0xff, wrong.length - 1);
    await new BlockBlobClient(session.uploadUrl).uploadData(wrong);
    const refused = await commit(session);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toMatch(/SHA-256/);
    expect((await fetch(instanceUrl(key))).status).toBe(404);

    await new BlockBlobClient(session.uploadUrl).uploadData(file);
    expect((await commit(session)).status).toBe(200);
    expect((await retrieved(key)).equals(file)).toBe(true);
  });

  it("answers a file that is not DICOM, or belongs to another study than the session's, as STOW does", async () => {
    const notDicom = await open();
    await new BlockBlobClient(notDicom.uploadUrl).uploadData(Buffer.from('this is not a DICOM file at all'));
    const refused = await commit(notDicom);
    expect(refused.status).toBe(409);
    const body = (await refused.json()) as Record<string, { Value?: Record<string, { Value?: unknown[] }>[] }>;
    expect(body['00081198']?.Value?.[0]?.['00081197']?.Value?.[0]).toBeTypeOf('number');
    // A definite answer ends the session.
    expect((await fetch(notDicom.url)).status).toBe(404);

    const key = newInstanceUids();
    const otherStudy = await open({ studyInstanceUid: testUid() });
    await new BlockBlobClient(otherStudy.uploadUrl).uploadData(buildInstance({ ...key, pixelBytes: 64 }));
    const mismatch = await commit(otherStudy);
    expect(mismatch.status).toBe(409);
    expect((await fetch(instanceUrl(key))).status).toBe(404);
  });

  it('refuses a commit with nothing uploaded, bad session requests and unknown sessions with clear errors', async () => {
    const empty = await open();
    const nothing = await commit(empty);
    expect(nothing.status).toBe(400);
    expect(await nothing.text()).toMatch(/Nothing was uploaded/);

    const post = (body: string, type = 'application/json') =>
      fetch(`${server.baseUrl}/v2/upload-sessions`, { method: 'POST', headers: { 'content-type': type }, body });
    for (const [body, problem] of [
      ['{"size": -1}', /size must be/],
      ['{"size": "12"}', /"size" must be a number/],
      ['{"sha256": "abc"}', /sha256 must be 64/],
      ['{"studyInstanceUid": "1.2.x"}', /not a valid UID/],
      ['{"expiresInMinutes": 100000}', /expiresInMinutes must be/],
      ['{"constructor": 1}', /Unknown field "constructor"/],
      ['[1]', /JSON object/],
      ['{', /not valid JSON/],
    ] as const) {
      const answer = await post(body);
      expect(answer.status, body).toBe(400);
      expect(await answer.text(), body).toMatch(problem);
    }
    expect((await post('size=1', 'text/plain')).status).toBe(415);
    expect((await fetch(`${server.baseUrl}/v2/upload-sessions/${'0'.repeat(32)}`)).status).toBe(404);
    expect((await fetch(`${server.baseUrl}/v2/upload-sessions/not-an-id`)).status).toBe(404);
  });

  it('abandons a session with DELETE: the record, the blob and its blocks go', async () => {
    const session = await open();
    await stageBlocks(session.uploadUrl, Buffer.alloc(1000, 1), 500);
    await new BlockBlobClient(session.uploadUrl).uploadData(Buffer.alloc(10, 2));
    expect((await fetch(session.url, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(session.url)).status).toBe(404);
    expect((await fetch(session.url, { method: 'DELETE' })).status).toBe(404);
    expect(await stagingBlobs()).not.toContain(UploadSessionKeys.blobName(session.id));
  });

  it('sweeps expired sessions with what they received, and leaves open ones alone', async () => {
    const old = await createUploadSession(server.storage, { expiresInMinutes: 1 }, 120, new Date(Date.now() - 120_000));
    await server.storage.sessions?.blobs.commitBlocks(old.session.blobName, []);
    const open1 = await open();
    await new BlockBlobClient(open1.uploadUrl).uploadData(Buffer.alloc(10, 3));

    // (Sessions other tests left to expire are swept too.)
    expect(await sweepUploadSessions(server.storage)).toBeGreaterThanOrEqual(1);
    expect(await server.storage.sessions?.records.get(old.session.id)).toBeUndefined();
    expect(await stagingBlobs()).toContain(UploadSessionKeys.blobName(open1.id));
    expect(await stagingBlobs()).not.toContain(old.session.blobName);
    expect((await fetch(open1.url)).status).toBe(200);
    expect((await fetch(open1.url, { method: 'DELETE' })).status).toBe(204);
  });
});

describe('an upload session of several GiB', () => {
  const MiB = 1024 * 1024;

  it('stores an encapsulated multi-frame instance (the form past 4 GiB) and serves its frames', async () => {
    const instance = largeInstance(20, newInstanceUids(), true);
    const file = instance.bytes(0, instance.size);
    const session = await open({ size: instance.size });
    await stageBlocks(session.uploadUrl, file, 3 * MiB);
    expect((await commit(session)).status).toBe(200);
    expect((await retrieved(instance.key)).equals(file)).toBe(true);
    const frame = await fetch(`${instanceUrl(instance.key)}/frames/20`, {
      headers: { accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*' },
    });
    expect(frame.status).toBe(200);
    const body = Buffer.from(await frame.arrayBuffer());
    // The frame's bytes (frame index 19) appear whole in the multipart body.
    expect(body.includes(Buffer.alloc(FRAME_BYTES, 19 % 251))).toBe(true);
  });

  it('stores a 2 GiB instance byte-identical, uploaded in parallel blocks that never pass through the server', async () => {
    const instance = largeInstance(Math.ceil((2 * 1024 * MiB) / FRAME_BYTES));
    const blockSize = 64 * MiB;
    const blocks = Math.ceil(instance.size / blockSize);
    const session = await open({ size: instance.size });
    const blob = new BlockBlobClient(session.uploadUrl);
    // Blocks are made in index order (each taken and made in one synchronous step), so one hash follows them.
    const sent = createHash('sha256');
    let next = 0;
    const uploader = async () => {
      while (next < blocks) {
        const index = next++;
        const part = instance.bytes(index * blockSize, Math.min(blockSize, instance.size - index * blockSize));
        sent.update(part);
        await blob.stageBlock(blockId(index), part, part.length);
      }
    };
    await Promise.all([uploader(), uploader(), uploader()]);
    const sha256 = sent.digest('hex');

    const stored = await commit(session);
    expect(stored.status, await stored.clone().text()).toBe(200);

    const response = await fetch(instanceUrl(instance.key), {
      headers: { accept: 'application/dicom; transfer-syntax=*' },
    });
    expect(response.status).toBe(200);
    const received = createHash('sha256');
    let length = 0;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      received.update(chunk);
      length += chunk.byteLength;
    }
    expect(length).toBe(instance.size);
    expect(received.digest('hex')).toBe(sha256);
  }, 600_000);
});
