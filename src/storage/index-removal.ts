import type { TableEntity, TableEntityResult } from '@azure/data-tables';
import { textOf as text } from './index-entities.js';

type StoredRow = TableEntityResult<Record<string, unknown>>;
type Row = TableEntity;

export interface RemovalPlan {
  /** Instance rows to delete. */
  readonly remove: readonly StoredRow[];
  /** Series and study rows to replace, conditional on the ETag of the row they replace. */
  readonly replace: readonly { readonly row: Row; readonly etag: string }[];
  /** Replaced rows left with no instance, to delete afterwards (conditionally, see removeInstances). */
  readonly empty: readonly string[];
}

const count = (row: StoredRow, name: string) => Number(row[name] ?? 0);

/**
 * What removing some instance rows of one study does to its series and study rows: counts go
 * down and ModalitiesInStudy is recomputed from the series that remain. Both index adapters
 * commit this plan atomically; rows left at zero are invisible to readers and deleted after.
 */
export function planRemoval(
  study: StoredRow | undefined,
  series: readonly StoredRow[],
  instances: readonly StoredRow[],
): RemovalPlan {
  const removedPerSeries = new Map<string, number>();
  for (const instance of instances) {
    const uid = text(instance['SeriesInstanceUID']);
    removedPerSeries.set(uid, (removedPerSeries.get(uid) ?? 0) + 1);
  }
  const replace: { row: Row; etag: string }[] = [];
  const empty: string[] = [];
  const remaining: StoredRow[] = [];
  for (const row of series) {
    const removed = removedPerSeries.get(text(row['SeriesInstanceUID'])) ?? 0;
    const left = Math.max(0, count(row, 'numberOfInstances') - removed);
    if (left > 0) remaining.push(row);
    if (removed === 0) continue;
    replace.push({ row: { ...stripMeta(row), numberOfInstances: left }, etag: row.etag });
    if (left === 0) empty.push(row.rowKey ?? '');
  }
  if (study) {
    const left = Math.max(0, count(study, 'numberOfInstances') - instances.length);
    const modalities = [
      ...new Set(remaining.map((row) => row['Modality']).filter((m) => typeof m === 'string')),
    ].sort();
    replace.push({
      row: {
        ...stripMeta(study),
        numberOfInstances: left,
        numberOfSeries: remaining.length,
        ModalitiesInStudy: modalities.join('\\'),
      },
      etag: study.etag,
    });
    if (left === 0) empty.push(study.rowKey ?? '');
  }
  return { remove: instances, replace, empty };
}

/** The row's own properties, without what the service adds when reading (ETag, Timestamp). */
function stripMeta(row: StoredRow): Row {
  const copy: Record<string, unknown> = { ...row };
  delete copy['etag'];
  delete copy['timestamp'];
  return copy as Row;
}
