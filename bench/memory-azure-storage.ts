/**
 * The production Table adapters (index, pending notes, change feed) over an in-process table
 * (support/memory-table-client.ts) that counts each call as the storage meter counts the HTTP
 * request it stands for, and in-memory blobs. So a search runs the code it runs on Azure and
 * its counts are Azure's, at sizes Azurite cannot hold. The blobs are not metered (no search
 * reads a blob).
 */
import { MemoryTableClient } from '../support/memory-table-client.js';
import { AzureChangeFeed } from '../src/storage/azure-change-feed.js';
import { AzureInstanceIndex } from '../src/storage/azure-index-store.js';
import { AzurePendingBlobs } from '../src/storage/azure-pending-blobs.js';
import { MemoryBlobStore } from '../src/storage/memory-storage.js';
import type { Storage } from '../src/storage/ports.js';
import { currentStorageMeter } from '../src/util/storage-meter.js';

export interface AzureAdaptersInMemory {
  readonly storage: Storage;
  readonly table: MemoryTableClient;
  readonly blobs: MemoryBlobStore;
}

export function azureAdaptersInMemory(): AzureAdaptersInMemory {
  const table = new MemoryTableClient({ meter: currentStorageMeter });
  const client = table.asTableClient();
  const blobs = new MemoryBlobStore();
  return {
    table,
    blobs,
    storage: {
      blobs,
      index: new AzureInstanceIndex(client),
      pending: new AzurePendingBlobs(client),
      changeFeed: new AzureChangeFeed(client),
    },
  };
}
