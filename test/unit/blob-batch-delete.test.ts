import type { ContainerClient } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { BlobBatchDeleter } from '../../src/storage/azure-blob-batch-delete.js';

/** A container whose batch requests fail as `refuse` says, and that records what was deleted how. */
function fakeContainer(refuse: () => Error | undefined) {
  const batches: string[][] = [];
  const client = (name: string) => ({ url: `http://account/c/${name}`, name });
  const container = {
    getBlobClient: client,
    getBlobBatchClient: () => ({
      deleteBlobs: (clients: { url: string; name: string }[]) => {
        const error = refuse();
        if (error) return Promise.reject(error);
        batches.push(clients.map((each) => each.name));
        return Promise.resolve({
          subResponses: clients.map((each) => ({ status: each.name.startsWith('busy') ? 503 : 202, _request: each })),
        });
      },
    }),
  } as unknown as ContainerClient;
  return { container, batches };
}

describe('blob batch deletes', () => {
  it('sends up to 256 deletes per batch, once per name, and retries failed sub-requests singly', async () => {
    const { container, batches } = fakeContainer(() => undefined);
    const single: string[] = [];
    const deleter = new BlobBatchDeleter(container, (name) => {
      single.push(name);
      return Promise.resolve();
    });
    const names = [...Array.from({ length: 300 }, (_, i) => `b${i}`), 'busy1', 'b0'];
    await deleter.deleteMany(names);
    expect(batches.map((batch) => batch.length)).toEqual([256, 45]);
    expect(single).toEqual(['busy1']);
    await deleter.deleteMany(['lone']);
    expect(single).toEqual(['busy1', 'lone']);
  });

  it('falls back to single deletes for good once batches are refused, but not on an outage', async () => {
    let answer: Error | undefined = Object.assign(new Error('unavailable'), { name: 'RestError', statusCode: 503 });
    const { container, batches } = fakeContainer(() => answer);
    const single: string[] = [];
    const deleter = new BlobBatchDeleter(container, (name) => {
      single.push(name);
      return Promise.resolve();
    });
    await expect(deleter.deleteMany(['a', 'b'])).rejects.toThrow(/did not complete/);
    answer = Object.assign(new Error('InvalidInput'), { name: 'RestError', statusCode: 400 });
    await deleter.deleteMany(['a', 'b']);
    expect(single.sort()).toEqual(['a', 'b']);
    answer = undefined;
    await deleter.deleteMany(['c', 'd']);
    expect(batches).toEqual([]);
    expect(single.sort()).toEqual(['a', 'b', 'c', 'd']);
  });
});
