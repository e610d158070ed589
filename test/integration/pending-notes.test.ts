/**
 * A plain STOW writes its pending notes while it reads the study's rows, before it knows which
 * instances are re-sends; whatever the request turns away, no note of it outlives the request
 * (a leftover note would cost the orphan sweep a round trip per note later).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Storage } from '../../src/storage/ports.js';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';
import { stowRequestInit } from '../../support/multipart.js';
import { openTestStorage, serveStorage } from '../helpers/server.js';

describe('pending notes of a plain STOW (Azurite)', () => {
  let storage: Storage;
  let served: Awaited<ReturnType<typeof serveStorage>> | undefined;
  beforeAll(async () => {
    storage = (await openTestStorage()).storage;
    served = await serveStorage(storage);
  });
  afterAll(async () => {
    await served?.close();
  });

  async function notes(): Promise<string[]> {
    const versions: string[] = [];
    for await (const note of storage.pending.olderThan(new Date(Date.now() + 3_600_000))) versions.push(note.version);
    return versions;
  }

  async function stow(files: Uint8Array[]): Promise<number> {
    const response = await fetch(`${served?.baseUrl ?? ''}/v2/studies`, stowRequestInit(files));
    await response.arrayBuffer();
    return response.status;
  }

  it('leaves none behind for stored instances, re-sends, or a request of re-sends only', async () => {
    const study = newInstanceUids().studyInstanceUid;
    const [a, b, c] = [0, 1, 2].map(() => buildInstance({ ...newInstanceUids(study), pixelBytes: 8 }));
    if (!a || !b || !c) throw new Error('three instances');
    expect(await stow([a, b])).toBe(200);
    expect(await notes()).toEqual([]);
    // Both re-sent: 409 (45070 each), and the notes written before the rows were read are gone.
    expect(await stow([a, b])).toBe(409);
    expect(await notes()).toEqual([]);
    // One re-sent, one new, and the same new one twice in the request: 202.
    expect(await stow([a, c, c])).toBe(202);
    expect(await notes()).toEqual([]);
    const search = await fetch(`${served?.baseUrl ?? ''}/v2/studies/${study}/instances`, {
      headers: { accept: 'application/dicom+json' },
    });
    expect(((await search.json()) as unknown[]).length).toBe(3);
  });
});
