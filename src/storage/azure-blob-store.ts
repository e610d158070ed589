import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { BlobClient, BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import type { BlobStore, BlobUpload, ByteRange, OpenedBlob } from './ports.js';
import { BlobBatchDeleter } from './azure-blob-batch-delete.js';
import { blockId } from './keys.js';
import { guarded, statusOf, translateStorageError } from './storage-errors.js';

export interface BlockUploadOptions {
  /** Bytes per staged block. */
  readonly blockSize: number;
  /** Blocks staged at once; memory held is about blockSize × (concurrency + 1). */
  readonly concurrency: number;
}

export const DEFAULT_BLOCK_UPLOAD: BlockUploadOptions = { blockSize: 4 * 1024 * 1024, concurrency: 4 };

/**
 * Downloads arrive in socket-sized chunks (16–64 KiB); joined into chunks of at least this size,
 * every layer above (transcoder, multipart writer, response stream) runs a tenth as often.
 */
const READ_CHUNK_BYTES = 256 * 1024;

/** Azure's limit on blocks in one block blob. */
const MAX_BLOCKS = 50_000;

/**
 * Block buffers reused across the uploads of one store. A large upload copies the incoming
 * chunks straight into one of these instead of collecting them and concatenating each block, so
 * it allocates nothing per block: the network chunks die young, and no 4 MiB garbage piles up
 * between garbage collections (that lag, not the live blocks, was most of a large STOW's RSS).
 */
class BlockPool {
  private readonly idle: Buffer[] = [];

  constructor(
    readonly blockSize: number,
    private readonly maxIdle: number,
  ) {}

  take(): Buffer {
    return this.idle.pop() ?? Buffer.allocUnsafeSlow(this.blockSize);
  }

  give(block: Buffer): void {
    if (this.idle.length < this.maxIdle) this.idle.push(block);
  }
}

/**
 * Streams a blob as staged blocks and commits the block list at the end. Staged blocks are
 * invisible: an upload that is abandoned (client abort, bad bytes at the end of a part, a crash)
 * leaves no blob behind, and Azure discards uncommitted blocks by itself after a week.
 *
 * Until a blob has filled one block, its chunks are only collected (a small instance costs no
 * pooled buffer); from then on every block is a pooled buffer the chunks are copied into, given
 * back once its stage request has settled (the SDK is done with the bytes by then, retries too).
 */
class StagedBlockUpload implements BlobUpload {
  /** The first block's chunks, as written, while the blob is smaller than one block. */
  private chunks: Uint8Array[] = [];
  /** The pooled buffer being filled, once the blob is larger than one block. */
  private block: Buffer | undefined;
  private filled = 0;
  private readonly blockIds: string[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;
  private size = 0;

  constructor(
    private readonly blob: BlockBlobClient,
    private readonly contentType: string,
    private readonly options: BlockUploadOptions,
    private readonly pool: BlockPool,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    this.throwIfFailed();
    this.size += chunk.byteLength;
    const { blockSize } = this.options;
    if (this.block === undefined && this.blockIds.length === 0 && this.filled + chunk.byteLength < blockSize) {
      this.chunks.push(chunk);
      this.filled += chunk.byteLength;
      return;
    }
    for (let offset = 0; offset < chunk.byteLength;) {
      const block = this.currentBlock();
      const count = Math.min(blockSize - this.filled, chunk.byteLength - offset);
      block.set(chunk.subarray(offset, offset + count), this.filled);
      this.filled += count;
      offset += count;
      if (this.filled === blockSize) {
        this.block = undefined;
        this.filled = 0;
        await this.stage(block, block);
      }
    }
  }

  /** Bytes held in memory until commit or release: a blob smaller than one block. */
  get held(): number {
    return this.block === undefined && this.blockIds.length === 0 ? this.filled : 0;
  }

  async release(): Promise<void> {
    this.throwIfFailed();
    if (this.held === 0) return;
    await this.stage(this.takeChunks(), undefined);
    this.filled = 0;
  }

  async commit(metadata: Record<string, string>): Promise<number> {
    this.throwIfFailed();
    const headers = { blobContentType: this.contentType };
    if (this.block === undefined && this.blockIds.length === 0) {
      // Smaller than one block and never released: one Put Blob instead of a block and a block list.
      // Its chunks go out as they came, not joined: joining copied each small instance once more
      // into fresh memory (3–5 % of a bare STOW's server CPU). A retry replays them.
      const chunks = this.chunks;
      const size = this.filled;
      this.chunks = [];
      this.filled = 0;
      const body = chunks.length === 1 ? (chunks[0] as Uint8Array) : () => Readable.from(chunks, { objectMode: false });
      await guarded('the blob commit', () =>
        this.blob.upload(body, size, {
          metadata,
          blobHTTPHeaders: headers,
          conditions: { ifNoneMatch: '*' },
        }),
      );
      return this.size;
    }
    if (this.block !== undefined) {
      const block = this.block;
      this.block = undefined;
      if (this.filled > 0) await this.stage(block.subarray(0, this.filled), block);
      else this.pool.give(block);
    }
    this.filled = 0;
    await Promise.all(this.inFlight);
    this.throwIfFailed();
    await guarded('the blob commit', () =>
      this.blob.commitBlockList(this.blockIds, {
        metadata,
        blobHTTPHeaders: headers,
        conditions: { ifNoneMatch: '*' },
      }),
    );
    return this.size;
  }

  /** The chunks collected while the blob is smaller than one block, as one buffer. */
  private takeChunks(): Uint8Array {
    const only = this.chunks.length === 1 ? (this.chunks[0] as Uint8Array) : Buffer.concat(this.chunks, this.filled);
    this.chunks = [];
    return only;
  }

  async abort(): Promise<void> {
    this.chunks = [];
    if (this.block !== undefined) this.pool.give(this.block);
    this.block = undefined;
    this.filled = 0;
    // Only waits for the blocks in flight: an aborted upload is never committed, so a failed
    // block changes nothing (Azure discards uncommitted blocks).
    await Promise.allSettled(this.inFlight);
  }

  /** The pooled buffer to copy into; the first one starts with the chunks collected so far. */
  private currentBlock(): Buffer {
    if (this.block !== undefined) return this.block;
    const block = this.pool.take();
    let at = 0;
    for (const chunk of this.chunks) {
      block.set(chunk, at);
      at += chunk.byteLength;
    }
    this.chunks = [];
    this.block = block;
    return block;
  }

  /** Stages `body`; `pooled` (the buffer under it, if pooled) goes back to the pool once settled. */
  private async stage(body: Uint8Array, pooled: Buffer | undefined): Promise<void> {
    if (this.blockIds.length >= MAX_BLOCKS) {
      if (pooled) this.pool.give(pooled);
      throw new RangeError(`A blob holds at most ${MAX_BLOCKS} blocks of ${this.options.blockSize} bytes.`);
    }
    const id = blockId(this.blockIds.length);
    this.blockIds.push(id);
    const staging = guarded('a block upload', () => this.blob.stageBlock(id, body, body.byteLength)).then(
      () => undefined,
      (error: unknown) => {
        this.failure ??= error instanceof Error ? error : new Error(String(error));
      },
    );
    const tracked = staging.finally(() => {
      this.inFlight.delete(tracked);
      if (pooled) this.pool.give(pooled);
    });
    this.inFlight.add(tracked);
    if (this.inFlight.size >= this.options.concurrency) await Promise.race(this.inFlight);
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}

/**
 * Streams a blob (or a snapshot of one), in chunks of at least READ_CHUNK_BYTES. The download stops
 * when `signal` aborts.
 */
export async function* streamBlob(
  blob: BlobClient,
  range?: ByteRange,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array, void, undefined> {
  const response = await guarded('a blob download', () =>
    blob.download(range?.offset ?? 0, range?.count, { abortSignal: signal, maxRetryRequests: 3 }),
  );
  yield* chunksOf(response.readableStreamBody, signal);
}

/** A download's body in chunks of at least READ_CHUNK_BYTES; ending or abandoning it closes the download. */
async function* chunksOf(
  body: NodeJS.ReadableStream | undefined,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array, void, undefined> {
  if (!body) return;
  let held: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      held.push(chunk);
      size += chunk.byteLength;
      if (size < READ_CHUNK_BYTES) continue;
      yield held.length === 1 ? chunk : Buffer.concat(held, size);
      held = [];
      size = 0;
    }
    if (size > 0) yield Buffer.concat(held, size);
  } catch (error) {
    if (signal?.aborted) return; // the reader went away: its abort, not a failure
    translateStorageError(error, 'a blob download');
  } finally {
    destroy(body);
  }
}

function destroy(body: NodeJS.ReadableStream): void {
  (body as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
}

export class AzureBlobStore implements BlobStore {
  private readonly pool: BlockPool;
  private readonly batchDeleter: BlobBatchDeleter;

  constructor(
    private readonly container: ContainerClient,
    private readonly uploadOptions: BlockUploadOptions = DEFAULT_BLOCK_UPLOAD,
  ) {
    // Enough idle buffers for one large upload at full concurrency; more are allocated when needed.
    this.pool = new BlockPool(uploadOptions.blockSize, uploadOptions.concurrency + 1);
    this.batchDeleter = new BlobBatchDeleter(container, (name) => this.delete(name));
  }

  beginUpload(name: string, contentType: string): BlobUpload {
    return new StagedBlockUpload(this.container.getBlockBlobClient(name), contentType, this.uploadOptions, this.pool);
  }

  read(name: string, range?: ByteRange, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    return streamBlob(this.container.getBlobClient(name), range, signal);
  }

  async open(name: string, signal?: AbortSignal): Promise<OpenedBlob | undefined> {
    const response = await guarded('a blob download', async () => {
      try {
        return await this.container
          .getBlobClient(name)
          .download(0, undefined, { abortSignal: signal, maxRetryRequests: 3 });
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw error;
      }
    });
    if (!response) return undefined;
    const body = response.readableStreamBody;
    return {
      chunks: chunksOf(body, signal),
      cancel: () => {
        if (body) destroy(body);
      },
    };
  }

  /** One GET (downloadToBuffer would first ask for the size, a second round trip). */
  async readSmall(name: string): Promise<Uint8Array | undefined> {
    const opened = await this.open(name);
    return opened && buffer(opened.chunks);
  }

  /**
   * Appends one block to an append blob, creating the blob on first use. Usually one Append Block;
   * a missing blob costs a failed append, a create and the append again, unless the caller expects
   * it new: then a create conditional on no blob existing (If-None-Match: *, so a concurrent
   * writer's blob and lines are never replaced; 409 means it exists) and one append.
   */
  async append(
    name: string,
    bytes: Uint8Array,
    contentType: string,
    options: { readonly likelyNew?: boolean } = {},
  ): Promise<void> {
    const blob = this.container.getAppendBlobClient(name);
    const create = () => blob.createIfNotExists({ blobHTTPHeaders: { blobContentType: contentType } });
    await guarded('a blob append', async () => {
      if (options.likelyNew) await create();
      try {
        await blob.appendBlock(bytes, bytes.byteLength);
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
        await create();
        await blob.appendBlock(bytes, bytes.byteLength);
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

  deleteMany(names: readonly string[]): Promise<void> {
    return this.batchDeleter.deleteMany(names);
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
