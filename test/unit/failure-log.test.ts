/**
 * Failures no response reports are logged through the app's logger with the request's
 * correlation ID: a change feed append STOW leaves to the orphan sweep, a response body that
 * breaks after its headers were sent, a health check whose storage did not answer.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { createMemoryStorage } from '../../src/storage/memory-storage.js';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';

function loggedApp() {
  const storage = createMemoryStorage();
  const logged: { message: string; error: unknown }[] = [];
  const app = createApp({
    storage,
    config: { publicBaseUrl: undefined, maxHeaderBytes: 1 << 20, emptySearchStatus: 200 },
    log: (message, error) => logged.push({ message, error }),
    audit: () => undefined,
  });
  return { storage, app, logged };
}

const request = (path: string, init: RequestInit = {}) =>
  new Request(`http://localhost:7071${path}`, {
    ...init,
    headers: { 'x-correlation-id': 'corr-42', ...(init.headers as Record<string, string> | undefined) },
  });

async function store(app: ReturnType<typeof loggedApp>['app'], file: Uint8Array): Promise<number> {
  const response = await app.handle(
    request('/v2/studies', {
      method: 'POST',
      headers: { 'content-type': 'application/dicom', accept: 'application/dicom+json' },
      body: file as Uint8Array<ArrayBuffer>,
    }),
  );
  await response.arrayBuffer();
  return response.status;
}

describe('failures no response reports', () => {
  it('a failed change feed append after a store is logged with the correlation ID; the store still succeeds', async () => {
    const { storage, app, logged } = loggedApp();
    const failure = new Error('change feed down');
    storage.changeFeed.append = () => Promise.reject(failure);
    expect(await store(app, buildInstance({ ...newInstanceUids(), pixelBytes: 16 }))).toBe(200);
    expect(logged).toEqual([
      {
        message: expect.stringMatching(/change feed append failed.*\(correlation id corr-42\)$/) as string,
        error: failure,
      },
    ]);
    expect(storage.pending.notes.size).toBe(1); // left for the orphan sweep
  });

  it('a response body that breaks after its headers is logged with the correlation ID', async () => {
    const { storage, app, logged } = loggedApp();
    const uids = newInstanceUids();
    expect(await store(app, buildInstance({ ...uids, pixelBytes: 300_000 }))).toBe(200);
    const failure = new Error('blob read broke');
    storage.blobs.read = async function* () {
      await Promise.resolve();
      yield new Uint8Array(1024);
      throw failure;
    };
    const response = await app.handle(
      request(
        `/v2/studies/${uids.studyInstanceUid}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`,
        {
          headers: { accept: 'application/dicom; transfer-syntax=*' },
        },
      ),
    );
    expect(response.status).toBe(200);
    await expect(response.arrayBuffer()).rejects.toBe(failure);
    expect(logged).toEqual([
      { message: expect.stringMatching(/response body failed.*\(correlation id corr-42\)$/) as string, error: failure },
    ]);
  });

  it('a health check whose storage does not answer logs why', async () => {
    const { storage, app, logged } = loggedApp();
    const failure = new Error('table down');
    storage.changeFeed.latest = () => Promise.reject(failure);
    const response = await app.handle(request('/health/check'));
    expect(response.status).toBe(503);
    expect(logged).toEqual([
      {
        message: expect.stringMatching(/storage did not answer.*\(correlation id corr-42\)$/) as string,
        error: failure,
      },
    ]);
  });
});
