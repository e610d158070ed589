import type { BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import type { BlobStore, BlobUpload, ByteRange } from './ports.js';
import { guarded, statusOf, translateStorageError } from './storage-errors.js';

export interface BlockUploadOptions {
  /** Bytes per staged block. */
  readonly blockSize: number;
  /** Blocks staged at once; memory held is about blockSize × (concurrency + 1). */
  readonly concurrency: number;
}

export const DEFAULT_BLOCK_UPLOAD: BlockUploadOptions = { blockSize: 4 * 1024 * 1024, concurrency: 4 };

/** Azure's limit on blocks in one block blob. */
const MAX_BLOCKS = 50_000;

/**
 * Streams a blob as staged blocks and commits the block list at the end. Staged blocks are
 * invisible: an upload that is abandoned (client abort, bad bytes at the end of a part, a crash)
 * leaves no blob behind, and Azure discards uncommitted blocks by itself after a week.
 */
class StagedBlockUpload implements BlobUpload {
  private pending: Uint8Array[] = [];
  private pendingSize = 0;
  private readonly blockIds: string[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;
  private size = 0;

  constructor(
    private readonly blob: BlockBlobClient,
    private readonly contentType: string,
    private readonly options: BlockUploadOptions,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    this.throwIfFailed();
    this.pending.push(chunk);
    this.pendingSize += chunk.byteLength;
    this.size += chunk.byteLength;
    while (this.pendingSize >= this.options.blockSize) {
      await this.stage(this.takeBlock(this.options.blockSize));
    }
  }

  async commit(metadata: Record<string, string>): Promise<number> {
    if (this.pendingSize > 0 || this.blockIds.length === 0) await this.stage(this.takeBlock(this.pendingSize));
    await Promise.all(this.inFlight);
    this.throwIfFailed();
    await guarded('the blob commit', () =>
      this.blob.commitBlockList(this.blockIds, {
        metadata,
        blobHTTPHeaders: { blobContentType: this.contentType },
        conditions: { ifNoneMatch: '*' },
      }),
    );
    return this.size;
  }

  async abort(): Promise<void> {
    this.pending = [];
    this.pendingSize = 0;
    await Promise.allSettled(this.inFlight);
  }

  private takeBlock(length: number): Buffer {
    const joined = Buffer.concat(this.pending, this.pendingSize);
    const block = joined.subarray(0, length);
    const rest = joined.subarray(length);
    this.pending = rest.byteLength > 0 ? [rest] : [];
    this.pendingSize = rest.byteLength;
    return block;
  }

  private async stage(block: Buffer): Promise<void> {
    if (this.blockIds.length >= MAX_BLOCKS) {
      throw new RangeError(`A blob holds at most ${MAX_BLOCKS} blocks of ${this.options.blockSize} bytes.`);
    }
    // Block ids must all have the same length: a zero-padded counter.
    const id = Buffer.from(this.blockIds.length.toString().padStart(6, '0')).toString('base64');
    this.blockIds.push(id);
    const staging = guarded('a block upload', () => this.blob.stageBlock(id, block, block.byteLength)).then(
      () => undefined,
      (error: unknown) => {
        this.failure ??= error instanceof Error ? error : new Error(String(error));
      },
    );
    const tracked = staging.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    if (this.inFlight.size >= this.options.concurrency) await Promise.race(this.inFlight);
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}

export class AzureBlobStore implements BlobStore {
  constructor(
    private readonly container: ContainerClient,
    private readonly uploadOptions: BlockUploadOptions = DEFAULT_BLOCK_UPLOAD,
  ) {}

  beginUpload(name: string, contentType: string): BlobUpload {
    return new StagedBlockUpload(this.container.getBlockBlobClient(name), contentType, this.uploadOptions);
  }

  async *read(name: string, range?: ByteRange, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    const blob = this.container.getBlobClient(name);
    const response = await guarded('a blob download', () =>
      blob.download(range?.offset ?? 0, range?.count, { abortSignal: signal, maxRetryRequests: 3 }),
    );
    const body = response.readableStreamBody;
    if (!body) return;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) yield chunk;
    } catch (error) {
      if (signal?.aborted) return;
      translateStorageError(error, 'a blob download');
    } finally {
      (body as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
    }
  }

  async readSmall(name: string): Promise<Uint8Array | undefined> {
    return guarded('a blob read', async () => {
      try {
        return await this.container.getBlobClient(name).downloadToBuffer();
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw error;
      }
    });
  }

  async writeSmall(
    name: string,
    bytes: Uint8Array,
    contentType: string,
    metadata: Record<string, string>,
  ): Promise<void> {
    await guarded('a blob upload', () =>
      this.container
        .getBlockBlobClient(name)
        .uploadData(bytes, { blobHTTPHeaders: { blobContentType: contentType }, metadata }),
    );
  }

  async delete(name: string): Promise<void> {
    await guarded('a blob delete', async () => {
      try {
        await this.container.deleteBlob(name, { deleteSnapshots: 'include' });
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
      }
    });
  }

  async *list(prefix: string): AsyncIterable<{ name: string; metadata: Record<string, string>; createdOn: Date }> {
    const pages = this.container.listBlobsFlat({ prefix, includeMetadata: true }).byPage({ maxPageSize: 1000 });
    for (;;) {
      const page = await guarded('a blob listing', () => pages.next());
      if (page.done) return;
      for (const item of page.value.segment.blobItems) {
        yield { name: item.name, metadata: item.metadata ?? {}, createdOn: item.properties.createdOn ?? new Date(0) };
      }
    }
  }
}
