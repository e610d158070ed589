/**
 * The production Table adapters (index, pending notes, change feed) over an in-process table
 * (support/memory-table-client.ts) that counts each call as the storage meter counts the HTTP
 * request it stands for, and in-memory blobs. So a search runs the code it runs on Azure and
 * its counts are Azure's, at sizes Azurite cannot hold. The blobs are not metered (no search
 * reads a blob).
 */
import { MemoryTableClient } from '../support/memory-table-client.js';
import { flat } from '../support/memory-table-rows.js';
import { AzureChangeFeed } from '../src/storage/azure-change-feed.js';
import { AzureInstanceIndex } from '../src/storage/azure-index-store.js';
import { AzurePendingBlobs } from '../src/storage/azure-pending-blobs.js';
import { markPointersMigrated } from '../src/storage/search-pointer-migration.js';
import { MemoryBlobStore } from '../src/storage/memory-storage.js';
import type { BlobUpload, Storage } from '../src/storage/ports.js';
import { currentStorageMeter } from '../src/util/storage-meter.js';

/**
 * A blob as one one-byte string: `{created, ms}\n{metadata as JSON, UTF-8}\n{the bytes, one
 * Latin-1 character each}`. A million studies are 1.5 million blobs: a Buffer each costs its
 * bytes plus two heap objects and a malloc'd block (and a small one is a slice that keeps a
 * whole 8 KiB slab), a string only its bytes and one header. No search reads a blob, so reads
 * may decode.
 */
class PackedBlob {
  private readonly packed: string;

  constructor(blob: { bytes: Uint8Array; metadata: Record<string, string>; createdOn: Date }) {
    const head = Buffer.from(`${blob.createdOn.getTime()}\n${JSON.stringify(blob.metadata)}\n`, 'utf8');
    this.packed = Buffer.concat([head, blob.bytes]).toString('latin1');
  }

  private get heads(): [number, number] {
    const first = this.packed.indexOf('\n');
    return [first, this.packed.indexOf('\n', first + 1)];
  }

  get bytes(): Buffer {
    return Buffer.from(this.packed.slice(this.heads[1] + 1), 'latin1');
  }

  get metadata(): Record<string, string> {
    const [first, second] = this.heads;
    return JSON.parse(Buffer.from(this.packed.slice(first + 1, second), 'latin1').toString('utf8')) as Record<
      string,
      string
    >;
  }

  get createdOn(): Date {
    return new Date(Number(this.packed.slice(0, this.heads[0])));
  }
}

/** MemoryBlobStore with each blob packed once written, under a flat name. */
class CompactBlobStore extends MemoryBlobStore {
  private pack(name: string): void {
    const blob = this.blobs.get(name);
    if (!blob) return;
    this.blobs.delete(name);
    this.blobs.set(flat(name), new PackedBlob(blob));
  }

  override beginUpload(name: string): BlobUpload {
    const upload = super.beginUpload(name);
    return {
      held: upload.held,
      release: () => upload.release(),
      write: (chunk) => upload.write(chunk),
      commit: async (metadata) => {
        const size = await upload.commit(metadata);
        this.pack(name);
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
    this.pack(name);
  }

  override async append(name: string, bytes: Uint8Array): Promise<void> {
    await super.append(name, bytes);
    this.pack(name);
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
