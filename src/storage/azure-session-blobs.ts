import {
  BlobSASPermissions,
  type BlobSASSignatureValues,
  SASProtocol,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
  type BlobServiceClient,
  type BlockBlobClient,
  type ContainerClient,
  type UserDelegationKey,
} from '@azure/storage-blob';
import { streamBlob } from './azure-blob-store.js';
import { blockId } from './keys.js';
import type { BlobUpload, FrozenBlob, SessionBlobs, StagingBlobState } from './ports.js';
import { guarded, statusOf } from './storage-errors.js';

/** Signs a SAS for one blob (or one snapshot of it): the query string, without "?". */
type Signer = (values: {
  readonly blobName: string;
  readonly permissions: string;
  readonly expiresOn: Date;
  readonly snapshotTime?: string;
}) => Promise<string>;

/** Clock skew allowance: a SAS starts a little in the past, as Azure recommends. */
const SKEW_MS = 5 * 60_000;

/**
 * Azure's limit on a user delegation key's validity (7 days); a SAS it signs cannot outlive it,
 * so sessions are capped below it (config.ts).
 */
const DELEGATION_KEY_MS = 7 * 24 * 3_600_000 - SKEW_MS;

/**
 * Bytes per Put Block From URL. Azure takes up to 4000 MiB per block; 100 MiB keeps a 5 GiB copy
 * to ~50 parallel-able requests, each well inside the storage service's timeout.
 */
const COPY_BLOCK_BYTES = 100 * 1024 * 1024;
const COPY_PARALLELISM = 8;

/** The validating read: ranges of this size, this many downloading at once (memory: their product). */
const READ_RANGE_BYTES = 4 * 1024 * 1024;
const READ_AHEAD = 4;

/**
 * Upload sessions on Azure Blob Storage. Clients get a SAS that can only create and write the
 * session's staging blob (`cw`: Put Block, Put Block List, Put Blob); the app reads what arrived
 * through its own credential, freezes it as a snapshot and has the storage service copy the
 * snapshot to the instance's blob (Put Block From URL), so the validated bytes are the stored ones.
 */
export class AzureSessionBlobs implements SessionBlobs {
  constructor(
    private readonly container: ContainerClient,
    private readonly sign: Signer,
  ) {}

  async uploadUrl(name: string, expiresAt: Date): Promise<string> {
    const sas = await this.sign({ blobName: name, permissions: 'cw', expiresOn: expiresAt });
    return `${this.container.getBlockBlobClient(name).url}?${sas}`;
  }

  async inspect(name: string): Promise<StagingBlobState> {
    const blob = this.container.getBlockBlobClient(name);
    return guarded('reading an upload session', async () => {
      try {
        const list = await blob.getBlockList('all');
        const blocks = (list.committedBlocks ?? []).map((block) => ({ id: block.name, size: block.size }));
        return {
          // A blob written by one Put Blob has a length but no committed blocks.
          committed: list.etag === undefined ? undefined : { size: list.blobContentLength ?? 0, blocks },
          uncommitted: (list.uncommittedBlocks ?? []).map((block) => ({ id: block.name, size: block.size })),
        };
      } catch (error) {
        if (statusOf(error) === 404) return { committed: undefined, uncommitted: [] };
        throw error;
      }
    });
  }

  /** Block ids staged again replace their committed namesakes (Put Block List's "Latest"). */
  async commitBlocks(name: string, blockIds: readonly string[]): Promise<void> {
    await guarded('committing an upload session', () =>
      this.container.getBlockBlobClient(name).commitBlockList([...blockIds], {
        blobHTTPHeaders: { blobContentType: 'application/dicom' },
      }),
    );
  }

  async freeze(name: string): Promise<FrozenBlob> {
    const blob = this.container.getBlockBlobClient(name);
    const snapshot = await guarded('freezing an upload session', () => blob.createSnapshot());
    if (!snapshot.snapshot) throw new Error('The storage service returned no snapshot time.');
    const properties = await guarded('reading an upload session', () =>
      blob.withSnapshot(snapshot.snapshot ?? '').getProperties(),
    );
    return { name, snapshot: snapshot.snapshot, size: properties.contentLength ?? 0 };
  }

  /**
   * The snapshot in READ_RANGE_BYTES ranges, READ_AHEAD of them downloading at once and handed
   * on in order: one download stream is capped well below what the storage account serves (per
   * connection on Azure; Azurite's single stream even more), and the commit's time is this read.
   * Memory: at most READ_AHEAD ranges.
   */
  async *read(frozen: FrozenBlob): AsyncIterable<Uint8Array> {
    const blob = this.container.getBlobClient(frozen.name).withSnapshot(frozen.snapshot);
    const fetchRange = async (offset: number): Promise<Uint8Array[]> => {
      const chunks: Uint8Array[] = [];
      const count = Math.min(READ_RANGE_BYTES, frozen.size - offset);
      for await (const chunk of streamBlob(blob, { offset, count })) chunks.push(chunk);
      return chunks;
    };
    const pending: Promise<Uint8Array[]>[] = [];
    let next = 0;
    const refill = (): void => {
      while (pending.length < READ_AHEAD && next < frozen.size) {
        const range = fetchRange(next);
        range.catch(() => undefined); // its error is thrown when it is awaited, in order
        pending.push(range);
        next += READ_RANGE_BYTES;
      }
    };
    refill();
    try {
      for (let range = pending.shift(); range; range = pending.shift()) {
        const chunks = await range;
        refill();
        yield* chunks;
      }
    } finally {
      await Promise.allSettled(pending);
    }
  }

  beginCopy(target: string, source: FrozenBlob, contentType: string): BlobUpload {
    return new CopiedUpload(this.container.getBlockBlobClient(target), source, contentType, async () => {
      const sas = await this.sign({
        blobName: source.name,
        permissions: 'r',
        snapshotTime: source.snapshot,
        expiresOn: new Date(Date.now() + 3_600_000),
      });
      const url = new URL(this.container.getBlobClient(source.name).url);
      url.search = `snapshot=${encodeURIComponent(source.snapshot)}&${sas}`;
      return url.toString();
    });
  }

  async discard(name: string): Promise<void> {
    const blob = this.container.getBlockBlobClient(name);
    await guarded('removing an upload session', async () => {
      // Staged blocks of a blob never committed cannot be deleted: an empty commit drops them.
      await blob.commitBlockList([]);
      try {
        await blob.delete({ deleteSnapshots: 'include' });
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
      }
    });
  }
}

/**
 * A BlobUpload fed with the bytes of `source` for validation only. As the validated bytes pass
 * each COPY_BLOCK_BYTES boundary, the storage service is asked to copy that range into a staged
 * block of the target (Put Block From URL), so copying runs alongside the read instead of after
 * it; the commit copies the tail and commits the block list (If-None-Match: *, as every instance
 * blob is created once). Staged blocks stay invisible until then, so an abandoned upload leaves
 * nothing visible.
 */
class CopiedUpload implements BlobUpload {
  private size = 0;
  private readonly ids: string[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;
  private url: Promise<string> | undefined;
  readonly held = 0;

  constructor(
    private readonly blob: BlockBlobClient,
    private readonly source: FrozenBlob,
    private readonly contentType: string,
    private readonly sourceUrl: () => Promise<string>,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    this.size += chunk.byteLength;
    while ((this.ids.length + 1) * COPY_BLOCK_BYTES <= this.size) await this.copyNext();
  }

  release(): Promise<void> {
    return Promise.resolve();
  }

  async commit(metadata: Record<string, string>): Promise<number> {
    if (this.size !== this.source.size) {
      throw new Error(`The copy read ${this.size} bytes of a ${this.source.size}-byte upload.`);
    }
    if (this.ids.length * COPY_BLOCK_BYTES < this.size) await this.copyNext();
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
    await guarded('the blob commit', () =>
      this.blob.commitBlockList(this.ids, {
        metadata,
        blobHTTPHeaders: { blobContentType: this.contentType },
        conditions: { ifNoneMatch: '*' },
      }),
    );
    return this.size;
  }

  async abort(): Promise<void> {
    await Promise.allSettled(this.inFlight); // what was staged stays uncommitted, so invisible
  }

  /** Copies the next range (a whole block, or the tail at commit); waits while COPY_PARALLELISM are in flight. */
  private async copyNext(): Promise<void> {
    if (this.failure) throw this.failure;
    const index = this.ids.length;
    const offset = index * COPY_BLOCK_BYTES;
    const count = Math.min(COPY_BLOCK_BYTES, this.source.size - offset);
    const id = blockId(index);
    this.ids.push(id);
    this.url ??= this.sourceUrl();
    const url = this.url;
    const copy = guarded('copying an uploaded instance', async () =>
      this.blob.stageBlockFromURL(id, await url, offset, count),
    ).then(
      () => undefined,
      (error: unknown) => {
        this.failure ??= error instanceof Error ? error : new Error(String(error));
      },
    );
    const tracked = copy.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    if (this.inFlight.size >= COPY_PARALLELISM) await Promise.race(this.inFlight);
  }
}

/** What a SAS says, whoever signs it: one blob (or snapshot), its permissions, its window, the protocol. */
type SasRequest = Parameters<Signer>[0];

function sasValues(containerName: string, request: SasRequest, https: boolean): BlobSASSignatureValues {
  return {
    containerName,
    blobName: request.blobName,
    snapshotTime: request.snapshotTime,
    permissions: BlobSASPermissions.parse(request.permissions),
    startsOn: new Date(Date.now() - SKEW_MS),
    expiresOn: request.expiresOn,
    protocol: https ? SASProtocol.Https : SASProtocol.HttpsAndHttp,
  };
}

/** SAS signed with the account key (Azurite, or a connection string with a key). */
export function accountKeySigner(
  credential: StorageSharedKeyCredential,
  containerName: string,
  https: boolean,
): Signer {
  return (request) =>
    Promise.resolve(generateBlobSASQueryParameters(sasValues(containerName, request, https), credential).toString());
}

/**
 * User delegation SAS, signed with a key the app's managed identity asks for (needs
 * generateUserDelegationKey, which Storage Blob Data Owner grants). One key serves every SAS until
 * it would expire before the SAS it signs.
 */
export function userDelegationSigner(service: BlobServiceClient, containerName: string): Signer {
  let cached: Promise<{ key: UserDelegationKey; until: number }> | undefined;
  const keyFor = async (expiresOn: Date): Promise<UserDelegationKey> => {
    const current = cached ? await cached.catch(() => undefined) : undefined;
    if (current && current.until >= expiresOn.getTime()) return current.key;
    const startsOn = new Date(Date.now() - SKEW_MS);
    const until = Date.now() + DELEGATION_KEY_MS;
    cached = guarded('getting a user delegation key', () =>
      service.getUserDelegationKey(startsOn, new Date(until)),
    ).then((key) => ({ key, until }));
    return (await cached).key;
  };
  return async (request) =>
    generateBlobSASQueryParameters(
      sasValues(containerName, request, true),
      await keyFor(request.expiresOn),
      service.accountName,
    ).toString();
}

/** The signer a blob service supports, if any: an account key, or Entra ID (user delegation). */
export function signerFor(service: BlobServiceClient, containerName: string): Signer | undefined {
  const credential = service.credential;
  if (credential instanceof StorageSharedKeyCredential) {
    return accountKeySigner(credential, containerName, service.url.startsWith('https:'));
  }
  if ('getToken' in credential) return userDelegationSigner(service, containerName);
  return undefined;
}
