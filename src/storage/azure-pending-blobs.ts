import { odata, type TableClient } from '@azure/data-tables';
import { PendingPartitionPrefix, pendingPartitionKey, pendingPartitionUpperBound } from './keys.js';
import type { PendingBlob, PendingBlobs } from './ports.js';
import { guarded, statusOf } from './storage-errors.js';
import { queryRows } from './table-query.js';

interface PendingRow {
  kind?: string;
  blobName: string;
  study: string;
  series: string;
  sop: string;
  createdAt: string;
}

export class AzurePendingBlobs implements PendingBlobs {
  constructor(private readonly table: TableClient) {}

  async add(pending: PendingBlob): Promise<void> {
    await guarded('recording a pending blob', () =>
      this.table.createEntity<PendingRow>({
        partitionKey: pendingPartitionKey(pending.createdAt, pending.version),
        rowKey: pending.version,
        kind: pending.kind ?? 'store',
        blobName: pending.blobName,
        study: pending.key.studyInstanceUid,
        series: pending.key.seriesInstanceUid,
        sop: pending.key.sopInstanceUid,
        createdAt: pending.createdAt.toISOString(),
      }),
    );
  }

  async remove(pending: PendingBlob): Promise<void> {
    await guarded('removing a pending note', async () => {
      try {
        await this.table.deleteEntity(pendingPartitionKey(pending.createdAt, pending.version), pending.version);
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
      }
    });
  }

  async *olderThan(cutoff: Date): AsyncIterable<PendingBlob> {
    // Whole hours before the cutoff's hour are one partition-key range; the cutoff's own hour is filtered by time.
    const upper = `${pendingPartitionUpperBound(cutoff)}~`;
    const filter = odata`PartitionKey ge ${PendingPartitionPrefix} and PartitionKey lt ${upper}`;
    for await (const row of queryRows<PendingRow>(this.table, filter, 'listing pending notes')) {
      const createdAt = new Date(row.createdAt);
      if (createdAt >= cutoff) continue;
      yield {
        kind: row.kind === 'delete' ? 'delete' : 'store',
        key: { studyInstanceUid: row.study, seriesInstanceUid: row.series, sopInstanceUid: row.sop },
        version: row.rowKey ?? '',
        blobName: row.blobName,
        createdAt,
      };
    }
  }
}
