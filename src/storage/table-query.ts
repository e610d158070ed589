import { odata, type TableClient, type TableEntityResult } from '@azure/data-tables';
import { guarded, statusOf } from './storage-errors.js';

/**
 * One entity by its keys, undefined when there is none (404); any other failure as `guarded`
 * translates it. `select` names the properties to return.
 */
export function pointRead<T extends object = Record<string, unknown>>(
  table: TableClient,
  partitionKey: string,
  rowKey: string,
  what: string,
  select?: string[],
): Promise<TableEntityResult<T> | undefined> {
  return guarded(what, async () => {
    try {
      return await table.getEntity<T>(partitionKey, rowKey, select && { queryOptions: { select } });
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  });
}

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
