import type { BlobBatchClient, ContainerClient } from '@azure/storage-blob';
import { statusOf, translateStorageError } from './storage-errors.js';

/** Sub-requests one Blob Batch request may carry (the service's limit). */
const BATCH_LIMIT = 256;

/** Single deletes in flight at once when batches cannot be used. */
const SINGLE_DELETES_IN_FLIGHT = 16;

/**
 * Deletes many blobs in few round trips: Blob Batch requests (one HTTP request of up to 256
 * deletes, https://learn.microsoft.com/rest/api/storageservices/blob-batch), missing blobs
 * ignored. An emulator or an account that refuses batches as a whole (Azurite has had batch bugs,
 * e.g. Azure/Azurite#2309 and #2509) is detected on the first such refusal, and from then on this
 * process deletes one blob per request, a few in parallel; the Azurite the tests start (3.37)
 * takes the batches.
 */
export class BlobBatchDeleter {
  private readonly batches: BlobBatchClient;
  private batchesWork = true;

  constructor(
    private readonly container: ContainerClient,
    private readonly deleteOne: (name: string) => Promise<void>,
  ) {
    // The container's own pipeline, so the batch request goes through its retry policy and the
    // storage meter like every other blob request (the sub-requests are only serialized into it).
    this.batches = container.getBlobBatchClient();
  }

  async deleteMany(names: readonly string[]): Promise<void> {
    const unique = [...new Set(names)];
    if (unique.length <= 1 || !this.batchesWork) return this.deleteSingly(unique);
    const chunks: string[][] = [];
    for (let i = 0; i < unique.length; i += BATCH_LIMIT) chunks.push(unique.slice(i, i + BATCH_LIMIT));
    await Promise.all(chunks.map((chunk) => this.deleteBatch(chunk)));
  }

  private async deleteBatch(names: readonly string[]): Promise<void> {
    const clients = names.map((name) => this.container.getBlobClient(name));
    let response: Awaited<ReturnType<BlobBatchClient['deleteBlobs']>>;
    try {
      response = await this.batches.deleteBlobs(clients, { deleteSnapshots: 'include' });
    } catch (error) {
      if (!refusesBatches(error)) translateStorageError(error, 'a blob batch delete');
      this.batchesWork = false;
      return this.deleteSingly(names);
    }
    // A sub-request may fail on its own (a throttled or failed delete inside an accepted batch):
    // those blobs are deleted again one by one, with the retry policy and error translation.
    const nameOf = new Map(clients.map((client, i) => [client.url, names[i] ?? '']));
    const failed = response.subResponses
      .filter((sub) => sub.status >= 300 && sub.status !== 404)
      .map((sub) => nameOf.get(sub._request.url) ?? '');
    if (response.subResponses.length !== names.length || failed.includes('')) return this.deleteSingly(names);
    await this.deleteSingly(failed);
  }

  private async deleteSingly(names: readonly string[]): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const name = names[next++];
        if (name !== undefined) await this.deleteOne(name);
      }
    };
    await Promise.all(Array.from({ length: Math.min(SINGLE_DELETES_IN_FLIGHT, names.length) }, worker));
  }
}

/**
 * A refusal of the batch itself, not of storage being unavailable: the request is rejected as
 * malformed or unsupported (400, 405, 501), or its answer cannot be read as a batch response
 * (the SDK's parser throws a plain error, with no HTTP status).
 */
function refusesBatches(error: unknown): boolean {
  const status = statusOf(error);
  if (status !== undefined) return status === 400 || status === 405 || status === 501;
  return error instanceof Error && error.name !== 'RestError' && error.name !== 'AbortError';
}
