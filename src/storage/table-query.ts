import type { TableClient, TableEntityResult } from '@azure/data-tables';
import { guarded } from './storage-errors.js';

/** The rows of a Table query, page by page (outages become StorageUnavailableError). */
export async function* queryRows<T extends object>(
  table: TableClient,
  filter: string,
  what: string,
  pageSize = 1000,
): AsyncGenerator<TableEntityResult<T>> {
  const pages = table
    .listEntities<T>({ queryOptions: { filter } })
    .byPage({ maxPageSize: Math.min(1000, Math.max(1, pageSize)) });
  for (;;) {
    const page = await guarded(what, () => pages.next());
    if (page.done) return;
    yield* page.value;
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
