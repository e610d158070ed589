import {
  odata,
  type TableClient,
  type TableEntity,
  type TableEntityResult,
  type TransactionAction,
} from '@azure/data-tables';
import { followAzurePath } from './azure-search-paths.js';
import {
  instanceEntity,
  isVisible,
  nextSeriesEntity,
  nextStudyEntity,
  recordFromEntity,
  seriesFromEntity,
  studyFromEntity,
} from './index-entities.js';
import { instanceRowKey, instanceRowRange, SeriesRowRange, seriesRowKey, StudyRowKey } from './keys.js';
import {
  StorageUnavailableError,
  type AccessPath,
  type AddInstanceOutcome,
  type InstanceIndex,
  type InstanceKey,
  type InstanceRecord,
  type SearchPointer,
  type SeriesAggregate,
  type StudyAggregate,
} from './ports.js';
import { guarded, statusOf, translateStorageError } from './storage-errors.js';
import { planRemoval } from './index-removal.js';
import { pointerEntity, pointerRows, type PointerRow } from './search-pointers.js';
import { checkBatch, checkEntity } from './table-limits.js';
import { collectRows } from './table-query.js';

type StoredRow = TableEntityResult<Record<string, unknown>>;

/** Optimistic-concurrency retries when writers of one study race for its study row. */
const MAX_ATTEMPTS = 12;

function withoutUndefined<T extends object>(entity: T): T {
  return Object.fromEntries(Object.entries(entity).filter(([, value]) => value !== undefined)) as T;
}

function pause(attempt: number): Promise<void> {
  const ms = Math.min(200, 5 * 2 ** attempt) * (0.5 + Math.random());
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class AzureInstanceIndex implements InstanceIndex {
  constructor(private readonly table: TableClient) {}

  async getInstance(key: InstanceKey): Promise<InstanceRecord | undefined> {
    const row = await this.read(key.studyInstanceUid, instanceRowKey(key));
    return row ? recordFromEntity(row) : undefined;
  }

  async getStudy(studyInstanceUid: string): Promise<StudyAggregate | undefined> {
    const row = await this.read(studyInstanceUid, StudyRowKey);
    return row && isVisible(row) ? studyFromEntity(row) : undefined;
  }

  async getSeries(studyInstanceUid: string, seriesInstanceUid: string): Promise<SeriesAggregate | undefined> {
    const row = await this.read(studyInstanceUid, seriesRowKey(seriesInstanceUid));
    return row && isVisible(row) ? seriesFromEntity(row) : undefined;
  }

  async isReferenced(key: InstanceKey, version: string): Promise<boolean> {
    const record = await this.getInstance(key);
    return record?.version === version;
  }

  follow(path: AccessPath): AsyncIterable<SearchPointer> {
    return followAzurePath(this.table, path);
  }

  async listSeries(studyInstanceUid: string): Promise<SeriesAggregate[]> {
    const rows = await this.range(studyInstanceUid, SeriesRowRange.from, SeriesRowRange.to);
    return rows.filter(isVisible).map(seriesFromEntity);
  }

  /**
   * One range query either way (on Azurite every query scans the table): a series' instance rows
   * plus a point read of its series row, or, for a whole study, the range from the first instance
   * row to the last series row ("instance|..." sorts before "series|...").
   */
  async listInstances(studyInstanceUid: string, seriesInstanceUid?: string): Promise<InstanceRecord[]> {
    if (seriesInstanceUid) {
      const [instances, series] = await Promise.all([
        this.listForDeletion(studyInstanceUid, seriesInstanceUid),
        this.read(studyInstanceUid, seriesRowKey(seriesInstanceUid)),
      ]);
      return series && isVisible(series) ? instances : [];
    }
    const rows = await this.range(studyInstanceUid, instanceRowRange().from, SeriesRowRange.to);
    const isSeriesRow = (row: StoredRow) => (row.rowKey ?? '').startsWith(SeriesRowRange.from);
    const deleting = new Set(
      rows.filter((row) => isSeriesRow(row) && !isVisible(row)).map((row) => String(row['SeriesInstanceUID'])),
    );
    return rows
      .filter((row) => !isSeriesRow(row))
      .map(recordFromEntity)
      .filter((instance) => !deleting.has(instance.seriesInstanceUid));
  }

  async listForDeletion(studyInstanceUid: string, seriesInstanceUid?: string): Promise<InstanceRecord[]> {
    const { from, to } = instanceRowRange(seriesInstanceUid);
    return (await this.range(studyInstanceUid, from, to)).map(recordFromEntity);
  }

  async markDeleting(studyInstanceUid: string, seriesInstanceUid?: string): Promise<boolean> {
    const candidates = seriesInstanceUid
      ? [await this.read(studyInstanceUid, seriesRowKey(seriesInstanceUid))]
      : [
          await this.read(studyInstanceUid, StudyRowKey),
          ...(await this.range(studyInstanceUid, SeriesRowRange.from, SeriesRowRange.to)),
        ];
    const rows = candidates.filter((row) => row !== undefined);
    if (rows.length === 0) return false;
    for (let i = 0; i < rows.length; i += 100) {
      const actions = rows
        .slice(i, i + 100)
        .map((row): TransactionAction => [
          'update',
          { partitionKey: studyInstanceUid, rowKey: row.rowKey ?? '', deleting: true },
          'Merge',
        ]);
      await guarded('marking a deletion', () => this.table.submitTransaction(actions));
    }
    return true;
  }

  async removeInstances(studyInstanceUid: string, instances: readonly InstanceKey[]): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
      const [study, series, rows] = await Promise.all([
        this.read(studyInstanceUid, StudyRowKey),
        this.range(studyInstanceUid, SeriesRowRange.from, SeriesRowRange.to),
        Promise.all(instances.map((key) => this.read(studyInstanceUid, instanceRowKey(key)))),
      ]);
      const present = rows.filter((row) => row !== undefined);
      if (present.length === 0) return;
      const plan = planRemoval(study, series, present);
      const actions: TransactionAction[] = [
        ...plan.remove.map((row): TransactionAction => [
          'delete',
          { partitionKey: studyInstanceUid, rowKey: row.rowKey ?? '' },
        ]),
        ...plan.replace.map(({ row, etag }): TransactionAction => [
          'update',
          withoutUndefined(row),
          'Replace',
          { etag },
        ]),
      ];
      try {
        await this.table.submitTransaction(actions);
      } catch (error) {
        const status = statusOf(error);
        if (status !== 404 && status !== 409 && status !== 412) translateStorageError(error, 'an index removal');
        await pause(attempt);
        continue;
      }
      // Rows left at zero go now, only if no store has changed them since (their new ETag).
      await Promise.all(plan.empty.map((rowKey) => this.deleteIfUnchanged(studyInstanceUid, rowKey)));
      return;
    }
    throw new StorageUnavailableError('The study index is too busy; the delete did not complete and will be retried.');
  }

  private async deleteIfUnchanged(partitionKey: string, rowKey: string): Promise<void> {
    const row = await this.read(partitionKey, rowKey);
    if (!row || Number(row['numberOfInstances'] ?? 0) > 0) return;
    await guarded('an index removal', async () => {
      try {
        await this.table.deleteEntity(partitionKey, rowKey, { etag: row.etag });
      } catch (error) {
        if (statusOf(error) !== 404 && statusOf(error) !== 412) throw error;
      }
    });
  }

  private async range(partitionKey: string, from: string, to: string): Promise<StoredRow[]> {
    const filter = odata`PartitionKey eq ${partitionKey} and RowKey ge ${from} and RowKey lt ${to}`;
    return collectRows(this.table, filter, 'an index query');
  }

  /**
   * One entity-group transaction in the study's partition: create the instance row (fails if it
   * exists), and update the series and study rows conditionally on the ETags just read. A writer
   * that loses the race on the study or series row reads again and retries.
   */
  async addInstance(record: InstanceRecord): Promise<AddInstanceOutcome> {
    const instance = withoutUndefined(instanceEntity(record));
    const written = new Set<string>();
    const now = new Date();
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
      const [study, series] = await Promise.all([
        this.read(record.studyInstanceUid, StudyRowKey),
        this.read(record.studyInstanceUid, seriesRowKey(record.seriesInstanceUid)),
      ]);
      if (study?.['deleting'] || series?.['deleting']) {
        throw new StorageUnavailableError(
          'The study or series is being deleted; store the instance again once the delete has finished.',
        );
      }
      await this.writePointers(pointerRows(record, study, series, now), written);
      const nextSeries = withoutUndefined(nextSeriesEntity(record, series));
      const nextStudy = withoutUndefined(nextStudyEntity(record, study, series === undefined));
      checkBatch([instance, nextSeries, nextStudy]);
      const actions: TransactionAction[] = [
        ['create', instance],
        conditional(nextSeries, series),
        conditional(nextStudy, study),
      ];
      try {
        await this.table.submitTransaction(actions);
        return 'added';
      } catch (error) {
        const status = statusOf(error);
        if (status !== 409 && status !== 412) translateStorageError(error, 'the index update');
        if (await this.getInstance(record)) return 'exists';
        await pause(attempt);
      }
    }
    throw new StorageUnavailableError('The study index is too busy; the instance was not stored.');
  }

  /** Search pointers go first (write-ahead); readers verify them, so early ones are harmless. */
  private async writePointers(rows: readonly PointerRow[], written: Set<string>): Promise<void> {
    const pending = rows.filter((row) => !written.has(`${row.partitionKey}\n${row.rowKey}`));
    await Promise.all(
      pending.map(async (row) => {
        const entity = pointerEntity(row);
        checkEntity(entity);
        await guarded('a search pointer write', () => this.table.upsertEntity(entity, 'Replace'));
        written.add(`${row.partitionKey}\n${row.rowKey}`);
      }),
    );
  }

  private async read(partitionKey: string, rowKey: string): Promise<StoredRow | undefined> {
    return guarded('an index read', async () => {
      try {
        return await this.table.getEntity(partitionKey, rowKey);
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw error;
      }
    });
  }
}

/** Create the row if it was absent when read, otherwise replace it only if nobody changed it since. */
function conditional(next: TableEntity, current: StoredRow | undefined): TransactionAction {
  return current ? ['update', next, 'Replace', { etag: current.etag }] : ['create', next];
}
