import { odata, type TableClient } from '@azure/data-tables';
import { UploadSessionKeys } from './keys.js';
import type { UploadSessionRecord, UploadSessionStore } from './ports.js';
import { guarded, statusOf } from './storage-errors.js';
import { pointRead, queryRows } from './table-query.js';

/** A type, not an interface, so that it is a TableEntity's Record<string, unknown>. */
type SessionRow = {
  blobName: string;
  createdAt: Date;
  expiresAt: Date;
  /** A string: sizes pass 2^31, which a plain number property would not hold as Int32. */
  size?: string;
  sha256?: string;
  study?: string;
};

function recordOf(id: string, row: SessionRow): UploadSessionRecord {
  return {
    id,
    blobName: row.blobName,
    createdAt: new Date(row.createdAt),
    expiresAt: new Date(row.expiresAt),
    size: row.size === undefined ? undefined : Number(row.size),
    sha256: row.sha256,
    studyInstanceUid: row.study,
  };
}

/** Upload session records in the index table (keys.ts UploadSessionKeys). */
export class AzureUploadSessions implements UploadSessionStore {
  constructor(private readonly table: TableClient) {}

  async create(session: UploadSessionRecord): Promise<void> {
    const row: SessionRow & { partitionKey: string; rowKey: string } = {
      partitionKey: UploadSessionKeys.partition,
      rowKey: session.id,
      blobName: session.blobName,
      createdAt: session.createdAt,
      expiresAt: session.expiresAt,
      ...(session.size === undefined ? {} : { size: String(session.size) }),
      ...(session.sha256 === undefined ? {} : { sha256: session.sha256 }),
      ...(session.studyInstanceUid === undefined ? {} : { study: session.studyInstanceUid }),
    };
    await guarded('recording an upload session', () => this.table.createEntity(row));
  }

  async get(id: string): Promise<UploadSessionRecord | undefined> {
    const row = await pointRead<SessionRow>(this.table, UploadSessionKeys.partition, id, 'reading an upload session');
    return row && recordOf(id, row);
  }

  async remove(id: string): Promise<boolean> {
    return guarded('removing an upload session', async () => {
      try {
        await this.table.deleteEntity(UploadSessionKeys.partition, id);
        return true;
      } catch (error) {
        if (statusOf(error) === 404) return false;
        throw error;
      }
    });
  }

  async *expired(now: Date): AsyncIterable<UploadSessionRecord> {
    const filter = odata`PartitionKey eq ${UploadSessionKeys.partition} and expiresAt lt ${now}`;
    for await (const row of queryRows<SessionRow>(this.table, filter, 'listing upload sessions')) {
      yield recordOf(row.rowKey ?? '', row);
    }
  }
}
