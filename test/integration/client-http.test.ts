import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { bytesSource, DicomwebClient, DicomwebHttpError, streamSource } from '../../src/client/index.js';

/** A tiny HTTP server answering each request with the next scripted reply; it records what it got. */
async function fakeServer(replies: ((request: IncomingMessage, response: ServerResponse) => void)[]) {
  const received: { method: string; url: string; body: Buffer; authorization?: string }[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({
        method: request.method ?? '',
        url: request.url ?? '',
        body: Buffer.concat(chunks),
        ...(request.headers.authorization ? { authorization: request.headers.authorization } : {}),
      });
      const reply = replies[Math.min(received.length - 1, replies.length - 1)];
      reply?.(request, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => {
        resolve();
      });
    });
  servers.push(close);
  return { baseUrl: `http://127.0.0.1:${port}/v2`, received };
}

const servers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((close) => close()));
});

const STORED = JSON.stringify({
  '00081199': {
    vr: 'SQ',
    Value: [
      {
        '00081150': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.2'] },
        '00081155': { vr: 'UI', Value: ['1.2.3.4'] },
        '00081196': { vr: 'US', Value: [1] },
      },
    ],
  },
  '00081198': {
    vr: 'SQ',
    Value: [
      {
        '00081155': { vr: 'UI', Value: ['1.2.3.5'] },
        '00081197': { vr: 'US', Value: [45070] },
      },
      {
        '00081197': { vr: 'US', Value: [43264] },
        '00741048': { vr: 'SQ', Value: [{ '00000902': { vr: 'LO', Value: ['DICOM100: bad'] } }] },
      },
    ],
  },
});

const answer =
  (status: number, body = '', headers: Record<string, string> = {}) =>
  (_request: IncomingMessage, response: ServerResponse) => {
    response.writeHead(status, { 'content-type': 'application/dicom+json', ...headers });
    response.end(body);
  };

const noWait = { retries: 3, baseDelayMs: 1, maxDelayMs: 5 };

describe('DicomwebClient over HTTP', () => {
  it('retries 503 and 429 (honouring Retry-After) and sends the same body again; parses each instance outcome', async () => {
    const fake = await fakeServer([
      answer(503, 'busy', { 'retry-after': '0' }),
      answer(429, 'slow down', { 'retry-after': '0' }),
      answer(202, STORED),
    ]);
    const retries: string[] = [];
    const client = new DicomwebClient({
      baseUrl: fake.baseUrl,
      retry: noWait,
      onRetry: (event) => retries.push(event.reason),
    });
    const result = await client.store([bytesSource(Buffer.from('first')), bytesSource(Buffer.from('second'))]);
    expect(fake.received).toHaveLength(3);
    expect(retries).toEqual(['503', '429']);
    expect(
      new Set(fake.received.map((request) => request.body.toString('latin1').replace(/dicomweb-[0-9a-f]+/g, 'B'))).size,
    ).toBe(1);
    expect(fake.received[2]?.body.toString()).toContain('second');
    expect(result.httpStatus).toBe(202);
    expect(result.instances).toEqual([
      expect.objectContaining({ status: 'stored', sopInstanceUid: '1.2.3.4', warningReason: 1 }),
      expect.objectContaining({ status: 'already-stored', sopInstanceUid: '1.2.3.5', failureReason: 45070 }),
      expect.objectContaining({ status: 'failed', failureReason: 43264, comments: ['DICOM100: bad'] }),
    ]);
  });

  it('never retries a 400: one request, a DicomwebHttpError with the server’s message', async () => {
    const fake = await fakeServer([answer(400, 'The limit must be 1 to 200.')]);
    const client = new DicomwebClient({ baseUrl: fake.baseUrl, retry: noWait });
    const failure = await client.search('studies', { limit: 500 }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DicomwebHttpError);
    expect((failure as DicomwebHttpError).status).toBe(400);
    expect((failure as DicomwebHttpError).message).toContain('The limit must be 1 to 200.');
    expect(fake.received).toHaveLength(1);
  });

  it('gives up after the configured retries with the last 503', async () => {
    const fake = await fakeServer([answer(503, 'storage down')]);
    const client = new DicomwebClient({ baseUrl: fake.baseUrl, retry: noWait });
    await expect(client.delete({ study: '1.2.3' })).rejects.toMatchObject({ status: 503 });
    expect(fake.received).toHaveLength(4);
  });

  it('retries a dropped connection, but not a request whose one-shot stream was sent', async () => {
    const drop = (request: IncomingMessage) => request.socket.destroy();
    const fake = await fakeServer([drop, answer(204)]);
    const client = new DicomwebClient({ baseUrl: fake.baseUrl, retry: noWait });
    expect(await client.delete({ study: '1.2.3' })).toBe(true);
    expect(fake.received).toHaveLength(2);

    const once = await fakeServer([drop, answer(200, STORED)]);
    const stream = new Blob([Buffer.from('bytes')]).stream();
    await expect(
      new DicomwebClient({ baseUrl: once.baseUrl, retry: noWait }).store(streamSource(stream)),
    ).rejects.toThrow();
    expect(once.received).toHaveLength(1);
  });

  it('sends a static token, or one from a TokenCredential for its scope', async () => {
    const fake = await fakeServer([answer(200, '[]')]);
    await new DicomwebClient({ baseUrl: fake.baseUrl, authorization: 'abc' }).search('studies');
    const scopes: string[] = [];
    const credential = {
      getToken: (scope: string | string[]) => {
        scopes.push(String(scope));
        return Promise.resolve({ token: 'from-credential', expiresOnTimestamp: Date.now() + 3600_000 });
      },
    };
    const client = new DicomwebClient({
      baseUrl: fake.baseUrl,
      authorization: { credential, scope: 'api://dicom/.default' },
    });
    await client.search('studies');
    await client.search('series');
    expect(fake.received.map((request) => request.authorization)).toEqual([
      'Bearer abc',
      'Bearer from-credential',
      'Bearer from-credential',
    ]);
    expect(scopes).toEqual(['api://dicom/.default']); // cached until shortly before it expires
  });

  it('cancels with an AbortSignal: a request waiting for its answer, and a backoff waiting for Retry-After', async () => {
    const hang = await fakeServer([() => undefined]);
    const client = new DicomwebClient({ baseUrl: hang.baseUrl });
    const controller = new AbortController();
    const pending = client.search('studies', { signal: controller.signal });
    setTimeout(() => {
      controller.abort(new Error('user cancelled'));
    }, 50);
    await expect(pending).rejects.toThrow('user cancelled');

    const busy = await fakeServer([answer(503, '', { 'retry-after': '3600' })]);
    const patient = new DicomwebClient({ baseUrl: busy.baseUrl, retry: { retries: 3, maxDelayMs: 3600_000 } });
    const later = new AbortController();
    const started = Date.now();
    const waiting = patient.delete({ study: '1.2.3' }, { signal: later.signal });
    setTimeout(() => {
      later.abort(new Error('stop waiting'));
    }, 100);
    await expect(waiting).rejects.toThrow('stop waiting');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(busy.received).toHaveLength(1);
  });
});
