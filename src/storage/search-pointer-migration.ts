import { odata, type TableClient, type TableEntity, type TransactionAction } from '@azure/data-tables';
import { checkBatch, TableLimits } from './table-limits.js';
import {
  AccessPathKeys,
  LegacyPointerRanges,
  LegacySopPointerRange,
  MigrationKeys,
  NewestFirstKeys,
  SopPointerKeys,
  StudyRowKey,
} from './keys.js';
import { pointerEntity, type PointerRow, type ReadPointerRow } from './search-pointers.js';
import { guarded } from './storage-errors.js';
import { pointRead, queryRows } from './table-query.js';

/**
 * Two rewrites of search pointers written by older versions, each with its own marker row:
 * - the newest-first pointers (keys.ts NewestFirstKeys): versions before them wrote the name-word,
 *   StudyDate and modality pointers in study order (`pn|`, `sd|`, `mod|`), which a search must
 *   read whole;
 * - the grouped SOP pointers (keys.ts SopPointerKeys): versions before them kept one partition per
 *   SOP Instance UID (`sop|`), which costs a STOW one upsert per instance.
 * Stores now write only the new forms; search reads both forms of a path until the marker of its
 * rewrite says every older pointer has been rewritten, then only the new one (docs/storage.md
 * "Access paths for search", "Migrating search pointers").
 *
 * The migration runs from `npm run migrate` (src/host/migrate.ts), once, after every process of
 * the archive runs this version: a process of an older version would still write the older form,
 * which a migrated archive no longer reads. It is idempotent (upserts of rows computed from the
 * older ones, which stay in place for older processes and are never read again), so an
 * interrupted run is simply run again. A new, empty index table is marked migrated when created.
 */

type LegacyRow = ReadPointerRow & { partitionKey?: string; rowKey?: string; [property: string]: unknown };

const text = (value: unknown) => (typeof value === 'string' ? value : undefined);

/** The newest-first pointer for an older one, given the study's createdAt; undefined for a row of no known form. */
export function newestFirstPointer(row: LegacyRow, created: string): PointerRow | undefined {
  const partitionKey = text(row.partitionKey) ?? '';
  const rowKey = text(row.rowKey) ?? '';
  const study = text(row.study);
  if (!study) return undefined;
  const common = { study, created, ...(text(row.series) === undefined ? {} : { series: text(row.series) }) };
  if (partitionKey.startsWith('pn|')) {
    const word = rowKey.slice(0, rowKey.indexOf('|'));
    return {
      ...common,
      partitionKey: `pn2|${partitionKey.slice('pn|'.length)}`,
      // The word is already key text: the newest-first key built from its parts.
      rowKey: `${word}|${NewestFirstKeys.studyRow(created, study)}`,
      ...(text(row.PatientName) === undefined ? {} : { PatientName: text(row.PatientName) }),
    };
  }
  if (partitionKey.startsWith('sd|')) {
    const date = AccessPathKeys.studyDateOf(partitionKey);
    if (!NewestFirstKeys.hasDay(date)) return undefined;
    return { ...common, partitionKey: NewestFirstKeys.day(date), rowKey: NewestFirstKeys.studyRow(created, study) };
  }
  if (partitionKey.startsWith('mod|') && common.series !== undefined) {
    return {
      ...common,
      partitionKey: `mod2|${partitionKey.slice('mod|'.length)}`,
      rowKey: NewestFirstKeys.seriesRow(created, study, common.series),
    };
  }
  return undefined;
}

/** The grouped SOP pointer for an older one (`sop|{uid}`, RowKey `{study}|{series}`). */
export function groupedSopPointer(row: LegacyRow, created: string): PointerRow | undefined {
  const partitionKey = text(row.partitionKey) ?? '';
  const study = text(row.study);
  const series = text(row.series);
  if (!partitionKey.startsWith(LegacySopPointerRange.from) || !study || !series) return undefined;
  const sop = partitionKey.slice(LegacySopPointerRange.from.length);
  return {
    partitionKey: SopPointerKeys.partition(sop),
    rowKey: SopPointerKeys.row(sop, study, series),
    study,
    series,
    created,
  };
}

/** One rewrite: the older partitions it reads, how it rewrites a row, and its marker. */
export interface PointerMigration {
  readonly marker: string;
  readonly legacy: readonly { readonly from: string; readonly to: string }[];
  readonly rewrite: (row: LegacyRow, created: string) => PointerRow | undefined;
}

export const NewestFirstMigration: PointerMigration = {
  marker: MigrationKeys.newestFirstPointers,
  legacy: LegacyPointerRanges,
  rewrite: newestFirstPointer,
};

export const GroupedSopMigration: PointerMigration = {
  marker: MigrationKeys.groupedSopPointers,
  legacy: [LegacySopPointerRange],
  rewrite: groupedSopPointer,
};

export const PointerMigrations: readonly PointerMigration[] = [NewestFirstMigration, GroupedSopMigration];

const markerKeys = (migration: PointerMigration) => ({
  partitionKey: MigrationKeys.partition,
  rowKey: migration.marker,
});

/** Records that every pointer `migration` rewrites has its new form (by default: all of them). */
export async function markPointersMigrated(
  table: TableClient,
  migrations: readonly PointerMigration[] = PointerMigrations,
  now = new Date(),
): Promise<void> {
  await guarded('the migration marker write', () =>
    Promise.all(
      migrations.map((migration) =>
        table.upsertEntity({ ...markerKeys(migration), completedAt: now.toISOString() }, 'Replace'),
      ),
    ),
  );
}

/** Whether the marker of `migration` is there (one point read). */
export async function pointersMigrated(table: TableClient, migration: PointerMigration): Promise<boolean> {
  const { partitionKey, rowKey } = markerKeys(migration);
  return (await pointRead(table, partitionKey, rowKey, 'the migration marker read')) !== undefined;
}

/**
 * True when the marker of `migration` is there, or when no older pointer exists (one query per
 * older range, a row at most each), in which case the marker is written: an archive deployed
 * empty by this version (its table created by the templates, not by openAzureStorage) needs no
 * `npm run migrate`.
 */
export async function pointersReady(table: TableClient, migration: PointerMigration): Promise<boolean> {
  if (await pointersMigrated(table, migration)) return true;
  for (const range of migration.legacy) {
    const filter = odata`PartitionKey ge ${range.from} and PartitionKey lt ${range.to}`;
    for await (const _row of queryRows(table, filter, 'the search pointer check', 1, 1)) return false;
  }
  await markPointersMigrated(table, [migration]);
  return true;
}

export interface MigrationReport {
  /** Older pointer rows read. */
  readonly read: number;
  /** Newest-first rows written (upserted). */
  readonly written: number;
  /** Older rows left without a newest-first form: their study is gone, or the row is of no known form. */
  readonly skipped: number;
}

/**
 * Rewrites every older pointer of `migrations` (by default all of them) in its new form, then
 * sets their markers. Rows of one partition go in entity-group transactions of up to 100; a row
 * written before pointers carried `created` takes its study's createdAt (one point read).
 */
export async function migrateSearchPointers(
  table: TableClient,
  progress: (report: MigrationReport) => void = () => undefined,
  migrations: readonly PointerMigration[] = PointerMigrations,
): Promise<MigrationReport> {
  let read = 0;
  let written = 0;
  let skipped = 0;
  const createdOf = new Map<string, string | undefined>();
  const studyCreated = async (study: string): Promise<string | undefined> => {
    if (createdOf.has(study)) return createdOf.get(study);
    const row = await pointRead(table, study, StudyRowKey, 'a study read');
    const created = text(row?.['createdAt']);
    if (createdOf.size > 100_000) createdOf.clear();
    createdOf.set(study, created);
    return created;
  };
  let batch: TableEntity<Record<string, string>>[] = [];
  const flush = async () => {
    const rows = batch;
    batch = [];
    if (rows.length === 0) return;
    checkBatch(rows);
    const actions: TransactionAction[] = rows.map((row) => ['upsert', row, 'Replace']);
    await guarded('a search pointer migration', () => table.submitTransaction(actions));
    written += rows.length;
    progress({ read, written, skipped });
  };
  for (const migration of migrations) {
    for (const range of migration.legacy) {
      const filter = odata`PartitionKey ge ${range.from} and PartitionKey lt ${range.to}`;
      for await (const row of queryRows<LegacyRow>(table, filter, 'the search pointer migration')) {
        read += 1;
        const study = text(row.study);
        const created = text(row.created) ?? (study === undefined ? undefined : await studyCreated(study));
        const next = created === undefined ? undefined : migration.rewrite(row, created);
        if (!next) {
          skipped += 1;
          continue;
        }
        const entity = pointerEntity(next);
        if (batch.length >= TableLimits.maxBatchOperations || batch[0]?.partitionKey !== entity.partitionKey)
          await flush();
        batch.push(entity);
      }
      await flush();
    }
  }
  await markPointersMigrated(table, migrations);
  return { read, written, skipped };
}
