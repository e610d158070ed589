import type { TableClient } from '@azure/data-tables';
import { EventCheckpointKeys } from './keys.js';
import type { EventCheckpoint, EventCheckpointStore, StoredEventCheckpoint } from './ports.js';
import { guarded, statusOf } from './storage-errors.js';
import { pointRead } from './table-query.js';

interface CheckpointRow {
  sequence: number;
  owner: string;
  leaseUntil: number;
}

/**
 * Checkpoints as rows of the index table (docs/storage.md "Event checkpoints"). Every write is
 * conditional: on the row's ETag when it exists, a create (409 when another got there first)
 * when it does not, so two publishers never both move one checkpoint on.
 */
export class AzureEventCheckpoints implements EventCheckpointStore {
  constructor(private readonly table: TableClient) {}

  async read(name: string): Promise<StoredEventCheckpoint> {
    const row = await pointRead<CheckpointRow>(
      this.table,
      EventCheckpointKeys.partition,
      EventCheckpointKeys.row(name),
      'an event checkpoint read',
    );
    return row
      ? { sequence: row.sequence, owner: row.owner, leaseUntil: row.leaseUntil, etag: row.etag }
      : { sequence: 0, owner: '', leaseUntil: 0, etag: undefined };
  }

  async write(name: string, checkpoint: EventCheckpoint, etag: string | undefined): Promise<string | undefined> {
    const row = {
      partitionKey: EventCheckpointKeys.partition,
      rowKey: EventCheckpointKeys.row(name),
      sequence: checkpoint.sequence,
      owner: checkpoint.owner,
      // Int64 beyond 2^31: the SDK writes a plain number as Int32 when it fits, Double otherwise.
      leaseUntil: checkpoint.leaseUntil,
    };
    return guarded('an event checkpoint write', async () => {
      try {
        const response =
          etag === undefined
            ? await this.table.createEntity(row)
            : await this.table.updateEntity(row, 'Replace', { etag });
        return response.etag;
      } catch (error) {
        const status = statusOf(error);
        if (status === 409 || status === 412) return undefined;
        throw error;
      }
    });
  }
}
