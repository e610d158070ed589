import { odata, type TableClient, type TableEntityResult } from '@azure/data-tables';
import { guarded } from './storage-errors.js';

/**
 * The rows of a Table query, page by page (outages become StorageUnavailableError). The first
 * page may be smaller (`firstPageSize`) when the caller will likely need only a few rows.
 */
export async function* queryRows<T extends object>(
  table: TableClient,
  filter: string,
  what: string,
  pageSize = 1000,
  firstPageSize = pageSize,
): AsyncGenerator<TableEntityResult<T>> {
  const clamp = (size: number) => Math.min(1000, Math.max(1, size));
  let maxPageSize = clamp(firstPageSize);
  let continuationToken: string | undefined;
  for (;;) {
    const pages = table.listEntities<T>({ queryOptions: { filter } }).byPage({ maxPageSize, continuationToken });
    const page = await guarded(what, () => pages.next());
    if (page.done) return;
    yield* page.value;
    continuationToken = page.value.continuationToken;
    if (!continuationToken) return;
    maxPageSize = clamp(pageSize);
  }
}

/** At most `max` rows of a Table query, in key order. */
export async function collectRows<T extends object>(
  table: TableClient,
  filter: string,
  what: string,
  max = Number.POSITIVE_INFINITY,
): Promise<TableEntityResult<T>[]> {
  const rows: TableEntityResult<T>[] = [];
  if (max <= 0) return rows;
  for await (const row of queryRows<T>(table, filter, what, Number.isFinite(max) ? max : 1000)) {
    rows.push(row);
    if (rows.length >= max) break;
  }
  return rows;
}

/** `(RowKey eq 'a' or RowKey eq 'b' …)`: one comparison per key, within TableLimits.maxFilterComparisons. */
export function anyRowKey(keys: readonly string[]): string {
  return `(${keys.map((key) => odata`RowKey eq ${key}`).join(' or ')})`;
}
