import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryStorage } from '../../src/storage/memory-storage.js';
import { serveStorage } from '../helpers/server.js';

/** Sends raw bytes and returns the status line and headers of the answer (or "closed" on a reset). */
function raw(port: number, request: string): Promise<{ status: number; headers: Map<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(request);
    });
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (data: string) => {
      text += data;
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
      const headers = new Map(
        lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
      );
      const length = Number(headers.get('content-length') ?? Number.NaN);
      const body = text.slice(end + 4);
      if (Number.isFinite(length) && Buffer.byteLength(body, 'latin1') < length) return;
      if (!Number.isFinite(length) && headers.get('transfer-encoding') === 'chunked' && !body.endsWith('0\r\n\r\n'))
        return;
      socket.destroy();
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
    socket.on('error', reject);
    socket.on('close', () => {
      reject(new Error(`connection closed without an answer; got ${JSON.stringify(text)}`));
    });
  });
}

describe('the local host answers every method and request-target form cleanly', () => {
  let port = 0;
  let served: Awaited<ReturnType<typeof serveStorage>> | undefined;
  beforeAll(async () => {
    served = await serveStorage(createMemoryStorage());
    port = Number(new URL(served.baseUrl).port);
  });
  afterAll(async () => {
    await served?.close();
  });

  const request = (line: string, extra = '') => raw(port, `${line}\r\nHost: 127.0.0.1:${port}\r\n${extra}\r\n`);

  it('TRACE on a resource: 405 with Allow, not a 500', async () => {
    const answer = await request('TRACE /v2/studies HTTP/1.1');
    expect(answer.status).toBe(405);
    expect(answer.headers.get('allow')).toBe('POST, PUT, GET, OPTIONS');
  });

  it("methods Node's parser does not know, and broken request lines: 400, not a reset", async () => {
    expect((await request('TRACK /v2/studies HTTP/1.1')).status).toBe(400);
    expect((await request('GET /v2/studies HTTP/9.9 junk')).status).toBe(400);
  });

  it('TRACE elsewhere: 404', async () => {
    expect((await request('TRACE /nowhere HTTP/1.1')).status).toBe(404);
  });

  it('CONNECT: 501, not a reset', async () => {
    const answer = await request('CONNECT example.org:443 HTTP/1.1');
    expect(answer.status).toBe(501);
    expect(answer.body).toMatch(/not a proxy/);
  });

  it('an absolute-form request target is served like its path', async () => {
    const answer = await request(
      `GET http://127.0.0.1:${port}/v2/studies HTTP/1.1`,
      'Accept: application/dicom+json\r\n',
    );
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/dicom+json');
  });

  it('the asterisk form and targets that are no path: 400', async () => {
    expect((await request('OPTIONS * HTTP/1.1')).status).toBe(400);
    expect((await request('GET v2/studies HTTP/1.1')).status).toBe(400);
    expect((await request('GET ftp://127.0.0.1/v2/studies HTTP/1.1')).status).toBe(400);
  });

  it('a wrong method on a resource: 405 with the methods it has', async () => {
    for (const [line, allow] of [
      ['PATCH /v2/studies HTTP/1.1', 'POST, PUT, GET, OPTIONS'],
      ['PUT /v1/studies HTTP/1.1', 'POST, GET, OPTIONS'],
      ['PATCH /v1/studies/1.2.3 HTTP/1.1', 'POST, GET, DELETE, OPTIONS'],
      ['POST /v2/studies/1.2.3/series/4.5/instances/6.7/frames/1 HTTP/1.1', 'GET, OPTIONS'],
      ['HEAD /v2/changefeed HTTP/1.1', 'GET, OPTIONS'],
    ] as const) {
      const answer = await request(line, 'Content-Length: 0\r\n');
      expect(answer.status, line).toBe(405);
      expect(answer.headers.get('allow'), line).toBe(allow);
    }
  });

  it('OPTIONS on a resource names its methods; on nothing it is 404', async () => {
    const answer = await request('OPTIONS /v2/studies/1.2.3/series HTTP/1.1');
    expect(answer.status).toBe(204);
    expect(answer.headers.get('allow')).toBe('GET, OPTIONS');
    expect((await request('OPTIONS /v2/nothing HTTP/1.1')).status).toBe(404);
  });

  it("an unknown path under a version: the app's 404", async () => {
    const answer = await request('GET /v2/studies/1.2/unknown/x/y/z/q HTTP/1.1');
    expect(answer.status).toBe(404);
    expect(answer.body).toMatch(/no DICOMweb resource/);
  });
});
