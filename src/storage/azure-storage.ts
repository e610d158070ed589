import { AzureOperations } from './azure-operations.js';
import { AzureOperationQueue, poisonQueueName } from './azure-operation-queue.js';
import { QueueClient, QueueServiceClient } from '@azure/storage-queue';
import { TableClient, TableServiceClient } from '@azure/data-tables';
import { DefaultAzureCredential } from '@azure/identity';
import { BlobServiceClient } from '@azure/storage-blob';
import { AzureBlobStore, type BlockUploadOptions } from './azure-blob-store.js';
import { AzureInstanceIndex } from './azure-index-store.js';
import { AzurePendingBlobs } from './azure-pending-blobs.js';
import { AzureChangeFeed } from './azure-change-feed.js';
import { AzureEventCheckpoints } from './azure-event-checkpoints.js';
import { AzureSessionBlobs, signerFor } from './azure-session-blobs.js';
import { AzureUploadSessions } from './azure-upload-sessions.js';
import { meterBlobs, meterTable } from './azure-storage-meter.js';
import type { Storage } from './ports.js';
import { withDirectTransactions } from './table-transaction.js';
import { guarded, statusOf } from './storage-errors.js';
import {
  markPointersMigrated,
  migrateSearchPointers,
  PointerMigrations,
  pointersMigrated,
  type MigrationReport,
} from './search-pointer-migration.js';

/** Where the data lives: a connection string, or account endpoints used with Entra ID (managed identity). */
export type StorageTarget =
  | { readonly kind: 'connection-string'; readonly connectionString: string }
  | {
      readonly kind: 'identity';
      readonly blobEndpoint: string;
      readonly tableEndpoint: string;
      /** The queue service, for the operations queue (DICOMWEB_QUEUE_ENDPOINT). */
      readonly queueEndpoint?: string | undefined;
    };

export interface StorageConfig {
  readonly target: StorageTarget;
  readonly container: string;
  readonly table: string;
  /** The queue that starts bulk update operations (DICOMWEB_OPERATIONS_QUEUE); none: workers poll only. */
  readonly operationsQueue?: string | undefined;
}

/**
 * The operations queue and its poison queue, where the target names a queue service: a connection
 * string (Azure derives the endpoint; Azurite's names QueueEndpoint) or DICOMWEB_QUEUE_ENDPOINT.
 */
function openOperationQueue(config: StorageConfig): AzureOperationQueue | undefined {
  const name = config.operationsQueue;
  if (!name) return undefined;
  const { target } = config;
  if (target.kind === 'connection-string') {
    if (isLocal(target) && !/QueueEndpoint=/i.test(target.connectionString)) return undefined;
    const service = QueueServiceClient.fromConnectionString(target.connectionString);
    return new AzureOperationQueue(service.getQueueClient(name), service.getQueueClient(poisonQueueName(name)));
  }
  if (!target.queueEndpoint) return undefined;
  const credential = new DefaultAzureCredential();
  const base = target.queueEndpoint.replace(/\/+$/, '');
  return new AzureOperationQueue(
    new QueueClient(`${base}/${name}`, credential),
    new QueueClient(`${base}/${poisonQueueName(name)}`, credential),
  );
}

function isLocal(target: StorageTarget): boolean {
  return (
    target.kind === 'connection-string' && /UseDevelopmentStorage|127\.0\.0\.1|localhost/.test(target.connectionString)
  );
}

/** A client of the index table of its own, unmetered, for work that belongs to no request. */
function indexTable(config: StorageConfig): TableClient {
  const { target } = config;
  return withDirectTransactions(
    target.kind === 'connection-string'
      ? TableClient.fromConnectionString(target.connectionString, config.table, {
          allowInsecureConnection: isLocal(target),
        })
      : new TableClient(target.tableEndpoint, config.table, new DefaultAzureCredential()),
    isLocal(target),
  );
}

/** The event publishers' checkpoints, in the index table (which openAzureStorage creates). */
export function openEventCheckpoints(config: StorageConfig): AzureEventCheckpoints {
  return new AzureEventCheckpoints(indexTable(config));
}

/**
 * Rewrites the archive's older search pointers in their current forms, each rewrite unless its
 * marker says it is done (src/storage/search-pointer-migration.ts); undefined when there was
 * nothing to do.
 */
export async function migrateArchiveSearchPointers(
  config: StorageConfig,
  progress?: (report: MigrationReport) => void,
): Promise<MigrationReport | undefined> {
  const table = indexTable(config);
  const done = await Promise.all(PointerMigrations.map((migration) => pointersMigrated(table, migration)));
  const missing = PointerMigrations.filter((_, i) => !done[i]);
  if (missing.length === 0) return undefined;
  return migrateSearchPointers(table, progress, missing);
}

/** Builds the Azure adapters and creates the container and table when they are missing. */
export async function openAzureStorage(config: StorageConfig, uploads?: BlockUploadOptions): Promise<Storage> {
  const { target } = config;
  const tableOptions = isLocal(target) ? { allowInsecureConnection: true } : {};
  let blobService: BlobServiceClient;
  let table: TableClient;
  let tableService: TableServiceClient;
  if (target.kind === 'connection-string') {
    blobService = BlobServiceClient.fromConnectionString(target.connectionString);
    table = TableClient.fromConnectionString(target.connectionString, config.table, tableOptions);
    tableService = TableServiceClient.fromConnectionString(target.connectionString, tableOptions);
  } else {
    const credential = new DefaultAzureCredential();
    blobService = new BlobServiceClient(target.blobEndpoint, credential);
    table = new TableClient(target.tableEndpoint, config.table, credential);
    tableService = new TableServiceClient(target.tableEndpoint, credential);
  }
  withDirectTransactions(table, isLocal(target));
  // Every round trip of a request is counted to its StorageMeter (docs/storage.md, "Operations per request").
  meterBlobs(blobService);
  meterTable(table);
  const container = blobService.getContainerClient(config.container);
  await guarded('creating the blob container', () => container.createIfNotExists());
  await guarded('creating the index table', async () => {
    let status: number | undefined;
    try {
      await tableService.createTable(config.table, { onResponse: (response) => (status = response.status) });
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
    }
    // A new table holds no pointers of older versions: searches take the current paths at once.
    if (status !== undefined && status < 300) await markPointersMigrated(table);
  });
  // Upload sessions need a SAS: signed with the account key, or a user delegation key (Entra ID).
  const signer = signerFor(blobService, config.container);
  return {
    blobs: new AzureBlobStore(container, uploads),
    index: new AzureInstanceIndex(table),
    pending: new AzurePendingBlobs(table),
    changeFeed: new AzureChangeFeed(table),
    operations: new AzureOperations(table),
    operationQueue: openOperationQueue(config),
    sessions: signer && {
      records: new AzureUploadSessions(table),
      blobs: new AzureSessionBlobs(container, signer),
    },
  };
}
