import { odata, type TableClient, type TableEntityResult, type TransactionAction } from '@azure/data-tables';
import { compareText } from '../util/compare.js';
import { followAzurePath } from './azure-search-paths.js';
import {
  instanceCount,
  isExpiredBy,
  isHidden,
  isMarked,
  isVisible,
  recordFromEntity,
  seriesFromEntity,
  studyFromEntity,
  textOf,
  withoutUndefined,
} from './index-entities.js';
import {
  instanceRowKey,
  instanceRowRange,
  SeriesRowRange,
  seriesRowKey,
  StudyPartitionEnd,
  StudyRowKey,
} from './keys.js';
import {
  StorageUnavailableError,
  type AccessPath,
  type AddInstanceOutcome,
  type ExpiryPointer,
  type InstanceIndex,
  type InstanceKey,
  type InstanceRecord,
  type MarkOutcome,
  type SearchPointer,
  type SeriesAggregate,
  type StudyAggregate,
  type StudyWrite,
  type VersionKey,
} from './ports.js';
import { statusOf, translateStorageError } from './storage-errors.js';
import { planRemoval } from './index-removal.js';
import { addOneInstance } from './add-instance.js';
import { StudyRowMemory } from './study-row-memory.js';
import { AzureStudyWrite } from './azure-study-write.js';
import { dropExpiry, expiredBy } from './azure-expiry-index.js';
import { MAX_ATTEMPTS, pause } from './study-races.js';
import { collectRows, pointRead } from './table-query.js';
import {
  GroupedSopMigration,
  NewestFirstMigration,
  pointersReady,
  type PointerMigration,
} from './search-pointer-migration.js';

type StoredRow = TableEntityResult<Record<string, unknown>>;

/**
 * Removals retry longer: under a deletion mark no store commits, so every lost race is another
 * delete's progress, and giving up would turn a race between deletes into a 503.
 */
const REMOVE_ATTEMPTS = 30;

const InstanceRowPrefix = instanceRowRange().from;

/** How long a process trusts "not migrated yet" before it reads the marker again. */
const MIGRATION_RECHECK_MS = 60_000;
/** The properties visibleVersion needs: the instance's version, the study's and series' marks. */
const VERSION_ONLY = ['version'];
const MARK_ONLY = ['deleting'];

export class AzureInstanceIndex implements InstanceIndex {
  /** Each migration marker as last read: once it is there, it is never read again. */
  private readonly migrations = new Map<
    PointerMigration,
    { readonly done: boolean; readonly at: number; readonly read?: Promise<boolean> }
  >();

  /** This process's writers into one study take turns, each from the rows the last one left. */
  private readonly studyRows = new StudyRowMemory();

  constructor(private readonly table: TableClient) {}

  /** Three point reads in parallel: the instance row and the two rows whose marks can hide it. */
  async getInstance(key: InstanceKey): Promise<InstanceRecord | undefined> {
    const [row, study, series] = await Promise.all([
      this.read(key.studyInstanceUid, instanceRowKey(key)),
      this.read(key.studyInstanceUid, StudyRowKey),
      this.read(key.studyInstanceUid, seriesRowKey(key.seriesInstanceUid)),
    ]);
    return row && !isHidden(study, series) ? recordFromEntity(row) : undefined;
  }

  async visibleVersion(key: InstanceKey): Promise<string | undefined> {
    const [row, study, series] = await Promise.all([
      this.read(key.studyInstanceUid, instanceRowKey(key), VERSION_ONLY),
      this.read(key.studyInstanceUid, StudyRowKey, MARK_ONLY),
      this.read(key.studyInstanceUid, seriesRowKey(key.seriesInstanceUid), MARK_ONLY),
    ]);
    const version = row?.['version'];
    return typeof version === 'string' && !isHidden(study, series) ? version : undefined;
  }

  prepareStudy(studyInstanceUid: string, keys: readonly InstanceKey[]): Promise<StudyWrite> {
    return AzureStudyWrite.prepare(this.table, studyInstanceUid, keys, this.studyRows);
  }

  addInstance(record: InstanceRecord): Promise<AddInstanceOutcome> {
    return addOneInstance(this, record);
  }

  async getStudy(studyInstanceUid: string): Promise<StudyAggregate | undefined> {
    const row = await this.read(studyInstanceUid, StudyRowKey);
    return row && isVisible(row) ? studyFromEntity(row) : undefined;
  }

  async studyRevision(studyInstanceUid: string): Promise<string | undefined> {
    return (await this.read(studyInstanceUid, StudyRowKey))?.etag;
  }

  async getSeries(studyInstanceUid: string, seriesInstanceUid: string): Promise<SeriesAggregate | undefined> {
    const [row, study] = await Promise.all([
      this.read(studyInstanceUid, seriesRowKey(seriesInstanceUid)),
      this.read(studyInstanceUid, StudyRowKey),
    ]);
    return row && isVisible(row) && !isMarked(study) ? seriesFromEntity(row) : undefined;
  }

  async isReferenced(key: InstanceKey, version: string): Promise<boolean> {
    const row = await this.read(key.studyInstanceUid, instanceRowKey(key));
    return row?.['version'] === version;
  }

  async *follow(path: AccessPath): AsyncIterable<SearchPointer> {
    const migratable = path.kind === 'nameToken' || path.kind === 'studyDates' || path.kind === 'modality';
    const migrated =
      path.kind === 'sop' ? await this.migrated(GroupedSopMigration) : migratable && (await this.newestFirstPaths());
    yield* followAzurePath(this.table, path, migrated);
  }

  /** Whether the name, date and modality pointers are all newest first. */
  newestFirstPaths(): Promise<boolean> {
    return this.migrated(NewestFirstMigration);
  }

  /** One marker read per process once migrated (docs/storage.md "Migrating search pointers"). */
  private migrated(migration: PointerMigration): Promise<boolean> {
    const known = this.migrations.get(migration);
    if (known?.read) return known.read;
    if (known && (known.done || Date.now() - known.at < MIGRATION_RECHECK_MS)) return Promise.resolve(known.done);
    const read = pointersReady(this.table, migration).then(
      (done) => {
        this.migrations.set(migration, { done, at: Date.now() });
        return done;
      },
      (error: unknown) => {
        if (known) this.migrations.set(migration, known);
        else this.migrations.delete(migration);
        throw error;
      },
    );
    this.migrations.set(migration, { done: false, at: Date.now(), read });
    return read;
  }

  /** One range query: the series rows and the study row after them ("series|..." < "study"). */
  async listSeries(studyInstanceUid: string): Promise<SeriesAggregate[]> {
    const rows = await this.range(studyInstanceUid, SeriesRowRange.from, StudyPartitionEnd);
    if (isMarked(rows.find((row) => row.rowKey === StudyRowKey))) return [];
    return rows.filter((row) => row.rowKey !== StudyRowKey && isVisible(row)).map(seriesFromEntity);
  }

  /**
   * A series: its instance rows plus point reads of its series and study rows, in parallel. A
   * whole study: one query of its partition (instance rows, then series rows, then the study row),
   * so the marks come with the rows (on Azurite every query scans the table anyway).
   */
  async listInstances(studyInstanceUid: string, seriesInstanceUid?: string): Promise<InstanceRecord[]> {
    const { instances, hidden } = await this.instancesWithMarks(studyInstanceUid, seriesInstanceUid);
    return instances.filter((row) => !hidden(row)).map(recordFromEntity);
  }

  async listForDeletion(studyInstanceUid: string, seriesInstanceUid?: string): Promise<InstanceRecord[]> {
    const { instances, hidden } = await this.instancesWithMarks(studyInstanceUid, seriesInstanceUid);
    return instances.filter(hidden).map(recordFromEntity);
  }

  /** Instance rows of a study or series, and whether the marks read with them hide each one. */
  private async instancesWithMarks(
    studyInstanceUid: string,
    seriesInstanceUid: string | undefined,
  ): Promise<{ instances: StoredRow[]; hidden: (row: StoredRow) => boolean }> {
    if (seriesInstanceUid) {
      const { from, to } = instanceRowRange(seriesInstanceUid);
      const [instances, series, study] = await Promise.all([
        this.range(studyInstanceUid, from, to),
        this.read(studyInstanceUid, seriesRowKey(seriesInstanceUid)),
        this.read(studyInstanceUid, StudyRowKey),
      ]);
      const marked = isHidden(study, series);
      return { instances, hidden: () => marked };
    }
    const rows = await this.range(studyInstanceUid, InstanceRowPrefix, StudyPartitionEnd);
    const study = rows.find((row) => row.rowKey === StudyRowKey);
    const markedSeries = new Set(
      rows
        .filter((row) => (row.rowKey ?? '').startsWith(SeriesRowRange.from) && isMarked(row))
        .map((row) => textOf(row['SeriesInstanceUID'])),
    );
    const studyMarked = isMarked(study);
    return {
      instances: rows.filter((row) => (row.rowKey ?? '').startsWith(InstanceRowPrefix)),
      hidden: (row) => studyMarked || markedSeries.has(textOf(row['SeriesInstanceUID'])),
    };
  }

  /**
   * One conditional merge of the study or series row. A series under a marked study is already
   * hidden. Lost races (the row changed or went since it was read) read again.
   */
  async markDeleting(
    studyInstanceUid: string,
    seriesInstanceUid?: string,
    options: { readonly expiredBy?: Date } = {},
  ): Promise<MarkOutcome> {
    const rowKey = seriesInstanceUid ? seriesRowKey(seriesInstanceUid) : StudyRowKey;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
      const [row, study] = await Promise.all([
        this.read(studyInstanceUid, rowKey),
        seriesInstanceUid ? this.read(studyInstanceUid, StudyRowKey) : undefined,
      ]);
      if (!row || instanceCount(row) === 0) return 'missing';
      if (isMarked(row) || isMarked(study)) return 'hidden';
      if (options.expiredBy && !isExpiredBy(row, options.expiredBy)) return 'missing';
      try {
        await this.table.updateEntity({ partitionKey: studyInstanceUid, rowKey, deleting: true }, 'Merge', {
          etag: row.etag,
        });
        return 'marked';
      } catch (error) {
        const status = statusOf(error);
        if (status !== 404 && status !== 412) translateStorageError(error, 'marking a deletion');
        await pause(attempt);
      }
    }
    throw new StorageUnavailableError('The study index is too busy; the delete did not start. Try again.');
  }

  /**
   * Two queries in parallel, whatever the batch size: the series rows with the study row after
   * them, and the instance rows between the lowest and highest key asked (a delete's batch is a
   * run of its study's or series' rows in key order, so that range is the batch). A row's version
   * read here still holds when the transaction commits, because that transaction replaces the
   * study row conditionally on the ETag read with it, and every store or removal replaces the
   * study row too.
   */
  async removeInstances(
    studyInstanceUid: string,
    instances: readonly VersionKey[],
    options: { readonly hiddenOnly?: boolean } = {},
  ): Promise<number> {
    if (instances.length === 0) return 0;
    const wanted = new Map(instances.map((key) => [instanceRowKey(key), key.version]));
    const keys = [...wanted.keys()].sort(compareText);
    for (let attempt = 0; attempt < REMOVE_ATTEMPTS; attempt += 1) {
      const [seriesAndStudy, rows] = await Promise.all([
        this.range(studyInstanceUid, SeriesRowRange.from, StudyPartitionEnd),
        collectRows<Record<string, unknown>>(
          this.table,
          odata`PartitionKey eq ${studyInstanceUid} and RowKey ge ${keys[0] ?? ''} and RowKey le ${keys.at(-1) ?? ''}`,
          'an index query',
        ),
      ]);
      const study = seriesAndStudy.find((row) => row.rowKey === StudyRowKey);
      const series = seriesAndStudy.filter((row) => row.rowKey !== StudyRowKey);
      const markedSeries = new Set(series.filter(isMarked).map((row) => textOf(row['SeriesInstanceUID'])));
      const present = rows.filter(
        (row) =>
          row['version'] === wanted.get(row.rowKey ?? '') &&
          (!options.hiddenOnly || isMarked(study) || markedSeries.has(textOf(row['SeriesInstanceUID']))),
      );
      if (present.length === 0) return 0;
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
      let written: Map<string, string>;
      try {
        const response = await this.table.submitTransaction(actions);
        // The answers come in the order of the actions: the replaced rows' new ETags.
        written = new Map(
          plan.replace.map(({ row }, i) => [
            row.rowKey,
            response.subResponses[plan.remove.length + i]?.etag?.trim() ?? '',
          ]),
        );
      } catch (error) {
        const status = statusOf(error);
        if (status !== 404 && status !== 409 && status !== 412) translateStorageError(error, 'an index removal');
        await pause(attempt);
        continue;
      }
      // Rows left at zero go now, only if no store has changed them since: conditionally on the
      // ETag this transaction gave them (read again when it was not answered or has changed).
      await Promise.all(
        plan.empty.map((rowKey) => this.deleteIfEmpty(studyInstanceUid, rowKey, written.get(rowKey) || undefined)),
      );
      return present.length;
    }
    throw new StorageUnavailableError('The study index is too busy; the delete did not complete and will be retried.');
  }

  async dropEmpty(studyInstanceUid: string, seriesInstanceUid?: string): Promise<void> {
    const series = seriesInstanceUid
      ? [seriesRowKey(seriesInstanceUid)]
      : (await this.range(studyInstanceUid, SeriesRowRange.from, SeriesRowRange.to)).map((row) => row.rowKey ?? '');
    await Promise.all(series.map((rowKey) => this.deleteIfEmpty(studyInstanceUid, rowKey)));
    // Last, so no store can reuse the study's series rows before they are gone.
    await this.deleteIfEmpty(studyInstanceUid, StudyRowKey);
  }

  /**
   * Deletes a study or series row at zero instances, conditionally on its ETag; re-read on a lost
   * race. `knownEmpty`: the ETag of the row as the caller just wrote it at zero, tried first.
   */
  private async deleteIfEmpty(partitionKey: string, rowKey: string, knownEmpty?: string): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
      let etag = attempt === 0 ? knownEmpty : undefined;
      if (etag === undefined) {
        const row = await this.read(partitionKey, rowKey);
        if (!row || instanceCount(row) > 0) return;
        etag = row.etag;
      }
      try {
        await this.table.deleteEntity(partitionKey, rowKey, { etag });
        return;
      } catch (error) {
        const status = statusOf(error);
        if (status === 404) return;
        if (status !== 412) translateStorageError(error, 'an index removal');
        await pause(attempt);
      }
    }
    throw new StorageUnavailableError('The study index is too busy; the delete will be completed later.');
  }

  private async range(partitionKey: string, from: string, to: string): Promise<StoredRow[]> {
    const filter = odata`PartitionKey eq ${partitionKey} and RowKey ge ${from} and RowKey lt ${to}`;
    return collectRows(this.table, filter, 'an index query');
  }

  expiredBy(now: Date): AsyncIterable<ExpiryPointer> {
    return expiredBy(this.table, now);
  }

  dropExpiry(pointer: ExpiryPointer): Promise<void> {
    return dropExpiry(this.table, pointer);
  }

  private read(partitionKey: string, rowKey: string, select?: string[]): Promise<StoredRow | undefined> {
    return pointRead(this.table, partitionKey, rowKey, 'an index read', select);
  }
}
