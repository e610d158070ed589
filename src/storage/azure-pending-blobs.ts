import { odata, type TableClient, type TransactionAction } from '@azure/data-tables';
import { pendingPartitionKey, pendingPartitionsThrough, pendingRowKey, pendingVersionOf } from './keys.js';
import type { PendingBlob, PendingBlobs, PendingKind } from './ports.js';
import { guarded, statusOf } from './storage-errors.js';
import { queryRows } from './table-query.js';

/** A type, not an interface, so that it is a TableEntity's Record<string, unknown>. */
type PendingRow = {
  kind?: string;
  blobName: string;
  study: string;
  series: string;
  sop: string;
  createdAt: string;
  /** PendingBlob.group, when the note was written with one. */
  group?: string;
  /** PendingBlob.action, when not `create`. */
  action?: string;
  /** PendingBlob.originalBlobName, on a delete note of a bulk-updated instance. */
  originalBlobName?: string;
};

/** Operations in one entity-group transaction (Azure's limit). */
const MAX_TRANSACTION = 100;

function partitionOf(note: PendingBlob): string {
  return pendingPartitionKey(note.createdAt, note.version, note.group);
}

function rowOf(note: PendingBlob): PendingRow & { partitionKey: string; rowKey: string } {
  return {
    partitionKey: partitionOf(note),
    rowKey: pendingRowKey(note),
    kind: note.kind ?? 'store',
    blobName: note.blobName,
    study: note.key.studyInstanceUid,
    series: note.key.seriesInstanceUid,
    sop: note.key.sopInstanceUid,
    createdAt: note.createdAt.toISOString(),
    ...(note.group === undefined ? {} : { group: note.group }),
    ...(note.action === undefined ? {} : { action: note.action }),
    ...(note.originalBlobName === undefined ? {} : { originalBlobName: note.originalBlobName }),
  };
}

/**
 * A store note's version is new, so it is created (finding it is a bug). Delete and replace notes
 * are upserted: concurrent deletes (or upserts) of one instance write the same note and share it.
 */
function shared(note: PendingBlob): boolean {
  return note.kind === 'delete' || note.kind === 'replace';
}

function kindOf(row: PendingRow): PendingKind {
  return row.kind === 'delete' || row.kind === 'replace' ? row.kind : 'store';
}

/**
 * Notes grouped by partition, in chunks that fit one entity-group transaction; a row key named
 * twice is sent once (a transaction may not touch a row twice).
 */
function transactionChunks(notes: readonly PendingBlob[]): { partitionKey: string; notes: PendingBlob[] }[] {
  const partitions = new Map<string, Map<string, PendingBlob>>();
  for (const note of notes) {
    const partitionKey = partitionOf(note);
    let rows = partitions.get(partitionKey);
    if (!rows) partitions.set(partitionKey, (rows = new Map<string, PendingBlob>()));
    rows.set(pendingRowKey(note), note);
  }
  const chunks: { partitionKey: string; notes: PendingBlob[] }[] = [];
  for (const [partitionKey, rows] of partitions) {
    const entries = [...rows.values()];
    for (let i = 0; i < entries.length; i += MAX_TRANSACTION) {
      chunks.push({ partitionKey, notes: entries.slice(i, i + MAX_TRANSACTION) });
    }
  }
  return chunks;
}

export class AzurePendingBlobs implements PendingBlobs {
  constructor(private readonly table: TableClient) {}

  /**
   * A store note is created (its version is new); a delete note is upserted, since concurrent
   * deletes of one instance write the same note, and each removes it only once its work is done.
   */
  async add(pending: PendingBlob): Promise<void> {
    const row = rowOf(pending);
    await guarded('recording a pending blob', () =>
      shared(pending) ? this.table.upsertEntity<PendingRow>(row, 'Replace') : this.table.createEntity(row),
    );
  }

  /**
   * One transaction per partition chunk, with the same create-or-upsert rule per note as add. A
   * store note that exists already fails its whole transaction (409): a version is never reused,
   * so that is a bug, and it is thrown rather than hidden.
   */
  async addAll(notes: readonly PendingBlob[]): Promise<void> {
    await Promise.all(
      transactionChunks(notes).map(async ({ notes: chunk }) => {
        const only = chunk.length === 1 ? chunk[0] : undefined;
        if (only) return this.add(only);
        const actions = chunk.map((note): TransactionAction =>
          shared(note) ? ['upsert', rowOf(note), 'Replace'] : ['create', rowOf(note)],
        );
        await guarded('recording pending notes', () => this.table.submitTransaction(actions));
      }),
    );
  }

  async remove(pending: PendingBlob): Promise<void> {
    const partitionKey = partitionOf(pending);
    const gone = !(await this.deleteRow(partitionKey, pendingRowKey(pending)));
    // A delete note written before delete notes had their own key. Removing a store note of the
    // same version with it is harmless: the delete has done all that note stood for.
    if (gone && pending.kind === 'delete') await this.deleteRow(partitionKey, pending.version);
  }

  /**
   * The notes grouped by partition (hour and shard): a partition's notes go in entity-group
   * transactions of at most 100 deletes, a lone note in one plain delete. A transaction fails
   * whole when one of its notes is gone (a concurrent delete shared it, the sweep took it, a
   * delete note from before they had their own key): its notes are then removed one by one.
   */
  async removeAll(notes: readonly PendingBlob[]): Promise<void> {
    await Promise.all(
      transactionChunks(notes).map(async ({ partitionKey, notes: chunk }) => {
        const only = chunk.length === 1 ? chunk[0] : undefined;
        if (only) return this.remove(only);
        const actions = chunk.map((note): TransactionAction => [
          'delete',
          { partitionKey, rowKey: pendingRowKey(note) },
        ]);
        const removed = await guarded('removing pending notes', async () => {
          try {
            await this.table.submitTransaction(actions);
            return true;
          } catch (error) {
            if (statusOf(error) !== 404) throw error;
            return false;
          }
        });
        if (!removed) await Promise.all(chunk.map((note) => this.remove(note)));
      }),
    );
  }

  /** False when the row was not there. */
  private async deleteRow(partitionKey: string, rowKey: string): Promise<boolean> {
    return guarded('removing a pending note', async () => {
      try {
        await this.table.deleteEntity(partitionKey, rowKey);
        return true;
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
        return false;
      }
    });
  }

  async *olderThan(cutoff: Date): AsyncIterable<PendingBlob> {
    // Whole hours before the cutoff's hour are one partition-key range; the cutoff's own hour is filtered by time.
    const { from, to } = pendingPartitionsThrough(cutoff);
    const filter = odata`PartitionKey ge ${from} and PartitionKey lt ${to}`;
    for await (const row of queryRows<PendingRow>(this.table, filter, 'listing pending notes')) {
      const createdAt = new Date(row.createdAt);
      if (createdAt >= cutoff) continue;
      const kind = kindOf(row);
      yield {
        kind,
        key: { studyInstanceUid: row.study, seriesInstanceUid: row.series, sopInstanceUid: row.sop },
        version: pendingVersionOf(kind, row.rowKey ?? ''),
        blobName: row.blobName,
        createdAt,
        // The group it was written with, so that remove() finds it in its partition.
        ...(row.group === undefined ? {} : { group: row.group }),
        ...(row.action === 'update' ? { action: 'update' as const } : {}),
        ...(row.originalBlobName === undefined ? {} : { originalBlobName: row.originalBlobName }),
      };
    }
  }
}
