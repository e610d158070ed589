import { odata, type TableClient } from '@azure/data-tables';
import { ExpiryKeys } from './keys.js';
import type { ExpiryPointer } from './ports.js';
import { guarded, statusOf } from './storage-errors.js';
import { queryRows } from './table-query.js';

/**
 * The expiry index in the index table (docs/storage.md "Study expiry"): rows written ahead of the
 * study rows they point to, read by time, removed once handled.
 */

/** Records that a study expires at `expiresAt` (an upsert: writing it twice is harmless). */
export async function writeExpiry(table: TableClient, pointer: ExpiryPointer): Promise<void> {
  const entity = {
    partitionKey: ExpiryKeys.partition(pointer.expiresAt),
    rowKey: ExpiryKeys.row(pointer.expiresAt, pointer.studyInstanceUid),
    study: pointer.studyInstanceUid,
  };
  await guarded('an expiry index write', () => table.upsertEntity(entity, 'Replace'));
}

/** The rows expiring at or before `now`: one key range over the partitions up to `now`'s hour. */
export async function* expiredBy(table: TableClient, now: Date): AsyncIterable<ExpiryPointer> {
  const { from, to } = ExpiryKeys.through(now);
  const filter = odata`PartitionKey ge ${from} and PartitionKey lt ${to}`;
  for await (const row of queryRows<Record<string, unknown>>(table, filter, 'reading the expiry index')) {
    const pointer = ExpiryKeys.parse(row.rowKey ?? '');
    if (pointer && pointer.expiresAt <= now) yield pointer;
  }
}

export async function dropExpiry(table: TableClient, pointer: ExpiryPointer): Promise<void> {
  await guarded('removing an expiry index row', async () => {
    try {
      await table.deleteEntity(
        ExpiryKeys.partition(pointer.expiresAt),
        ExpiryKeys.row(pointer.expiresAt, pointer.studyInstanceUid),
      );
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
  });
}
