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
import { markPointersMigrated } from '../src/storage/search-pointer-migration.js';
import { MemoryBlobStore } from '../src/storage/memory-storage.js';
import type { BlobUpload, Storage } from '../src/storage/ports.js';
import { currentStorageMeter } from '../src/util/storage-meter.js';

/**
 * In-memory blobs, each in a buffer of its own size: small Buffers are slices of shared 8 KiB
 * slabs, and one live slice keeps its whole slab, which at a million studies was most of the
 * memory the blobs took.
 */
class CompactBlobStore extends MemoryBlobStore {
  private compact(name: string): void {
    const blob = this.blobs.get(name);
    if (!blob) return;
    const own = Buffer.allocUnsafeSlow(blob.bytes.length);
    blob.bytes.copy(own);
    blob.bytes = own;
  }

  override beginUpload(name: string): BlobUpload {
    const upload = super.beginUpload(name);
    return {
      held: upload.held,
      release: () => upload.release(),
      write: (chunk) => upload.write(chunk),
      commit: async (metadata) => {
        const size = await upload.commit(metadata);
        this.compact(name);
        return size;
      },
      abort: () => upload.abort(),
    };
  }

  override async writeSmall(
    name: string,
    bytes: Uint8Array,
    contentType: string,
    metadata: Record<string, string>,
  ): Promise<void> {
    await super.writeSmall(name, bytes, contentType, metadata);
    this.compact(name);
  }

  override async append(name: string, bytes: Uint8Array): Promise<void> {
    await super.append(name, bytes);
    this.compact(name);
  }
}

export interface AzureAdaptersInMemory {
  readonly storage: Storage;
  readonly table: MemoryTableClient;
  readonly blobs: MemoryBlobStore;
}

export function azureAdaptersInMemory(): AzureAdaptersInMemory {
  const table = new MemoryTableClient({ meter: currentStorageMeter });
  const client = table.asTableClient();
  // A new table, as openAzureStorage marks one: no older search pointers to migrate.
  void markPointersMigrated(client);
  const blobs = new CompactBlobStore();
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
