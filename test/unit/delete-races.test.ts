import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { createMemoryStorage } from '../../src/storage/memory-storage.js';
import type { Storage } from '../../src/storage/ports.js';
import { raceRounds } from '../helpers/delete-race.js';

/** Methods that return streams or uploads synchronously, left as they are. */
const SYNCHRONOUS = new Set(['beginUpload', 'read', 'list', 'follow', 'olderThan']);

/**
 * Each asynchronous storage call waits 0-2 ms before it runs, so the in-memory storage (whose
 * calls are otherwise atomic) interleaves concurrent requests as a remote store would.
 */
function interleaving<T extends object>(target: T): T {
  return new Proxy(target, {
    get(object, name, receiver) {
      const value: unknown = Reflect.get(object, name, receiver);
      if (typeof value !== 'function' || typeof name !== 'string' || SYNCHRONOUS.has(name)) return value;
      return async (...args: unknown[]): Promise<unknown> => {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
        return (value as (...a: unknown[]) => unknown).apply(object, args);
      };
    },
  });
}

describe('DELETE and STOW racing on one study (in-memory storage, interleaved)', () => {
  it('answer no 5xx and leave every view in agreement', async () => {
    const memory = createMemoryStorage();
    const storage: Storage = {
      blobs: interleaving(memory.blobs),
      index: interleaving(memory.index),
      pending: interleaving(memory.pending),
      changeFeed: interleaving(memory.changeFeed),
    };
    const app = createApp({
      storage,
      config: { publicBaseUrl: undefined, maxHeaderBytes: 1 << 20, emptySearchStatus: 200 },
      log: () => undefined,
      audit: () => undefined,
    });
    const { unexpected, outcomes } = await raceRounds(
      (path, init) => app.handle(new Request(`http://localhost:7071/v2${path}`, init)),
      25,
      (round) => (round % 2 === 0 ? 2 : 10),
    );
    expect(unexpected).toEqual([]);
    expect([...outcomes.keys()]).toContain('DELETE study 204');
    // Nothing is left pending once every request has answered.
    expect([...memory.pending.notes.values()]).toEqual([]);
  });
});
