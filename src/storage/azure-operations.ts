import { odata, type TableClient } from '@azure/data-tables';
import { OperationKeys } from './keys.js';
import type { OperationRecord, OperationStore, StoredOperation } from './ports.js';
import { guarded, statusOf } from './storage-errors.js';
import { pointRead } from './table-query.js';

interface OperationRow {
  operation: string;
  errors: string;
  status: string;
}

/** The record from its row: the errors are a property of their own (each property holds 32 K characters). */
function recordOf(row: OperationRow & { etag: string }): StoredOperation {
  const errors = JSON.parse(row.errors || '[]') as string[];
  return { ...(JSON.parse(row.operation) as OperationRecord), errors, etag: row.etag };
}

/**
 * Operations as rows of the index table (docs/storage.md "Operations"): the record as JSON, its
 * status beside it so unfinished ones are found by one filtered query of the partition. Writes
 * are conditional on the row's ETag, so two workers never both move one operation on.
 */
export class AzureOperations implements OperationStore {
  constructor(private readonly table: TableClient) {}

  private static rowOf(operation: OperationRecord) {
    return {
      partitionKey: OperationKeys.partition,
      rowKey: OperationKeys.row(operation.id),
      operation: JSON.stringify({ ...operation, errors: undefined }),
      errors: JSON.stringify(operation.errors),
      status: operation.status,
    };
  }

  async create(operation: OperationRecord): Promise<void> {
    await guarded('recording an operation', () => this.table.createEntity(AzureOperations.rowOf(operation)));
  }

  async get(id: string): Promise<StoredOperation | undefined> {
    const row = await pointRead<OperationRow>(
      this.table,
      OperationKeys.partition,
      OperationKeys.row(id),
      'reading an operation',
    );
    return row && recordOf(row);
  }

  async update(operation: OperationRecord, etag: string): Promise<string | undefined> {
    return guarded('updating an operation', async () => {
      try {
        return (await this.table.updateEntity(AzureOperations.rowOf(operation), 'Replace', { etag })).etag;
      } catch (error) {
        if (statusOf(error) === 412 || statusOf(error) === 404) return undefined;
        throw error;
      }
    });
  }

  async unfinished(): Promise<StoredOperation[]> {
    return guarded('listing unfinished operations', async () => {
      const found: StoredOperation[] = [];
      const filter = odata`PartitionKey eq ${OperationKeys.partition} and (status eq 'notStarted' or status eq 'running')`;
      for await (const row of this.table.listEntities<OperationRow>({ queryOptions: { filter } })) {
        found.push(recordOf(row));
      }
      return found.sort((a, b) => a.createdTime.localeCompare(b.createdTime));
    });
  }
}
