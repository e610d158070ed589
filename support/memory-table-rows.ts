/**
 * The rows of one in-memory table, kept in the service's order (PartitionKey, then RowKey) so a
 * query seeks to its key range and reads only that, as Table Storage does. Built for millions
 * of rows: a row is one string (StoredRow), and the key order
 * is one sorted array of composite keys, brought up to date only when a query needs it (a bulk
 * load of writes, with no query between them, sorts once).
 */
import type { KeyBounds } from './odata-filter.js';

/**
 * A row as one string, `{version} {JSON of the properties other than the keys}`: a million
 * studies are some twenty million rows, and an object per row would cost more than its text.
 * The version changes on every write of the row: it is the ETag.
 */
export type StoredRow = string;

export function storedRow(version: number, properties: object): StoredRow {
  return `${version} ${JSON.stringify(properties)}`;
}

export function rowJson(row: StoredRow): string {
  return row.slice(row.indexOf(' ') + 1);
}

export function rowVersion(row: StoredRow): string {
  return row.slice(0, row.indexOf(' '));
}

/**
 * Between a partition key and a row key in a composite key: the service forbids control
 * characters in keys, so it sorts below every key character and (PartitionKey, RowKey) order
 * is the composite key's order.
 */
const SEPARATOR = '\u0000';
/** Maps above V8's 2^24-entry limit fail, so rows are spread over several. */
const SHARDS = 64;

export function compositeKey(partitionKey: string, rowKey: string): string {
  return `${partitionKey}${SEPARATOR}${rowKey}`;
}

export function splitKey(key: string): { partitionKey: string; rowKey: string } {
  const at = key.indexOf(SEPARATOR);
  return { partitionKey: key.slice(0, at), rowKey: key.slice(at + 1) };
}

function shardOf(key: string): number {
  // A cheap hash of the key's last characters (UIDs and versions differ there).
  let hash = key.length;
  for (let i = Math.max(0, key.length - 12); i < key.length; i++) hash = (hash * 31 + key.charCodeAt(i)) | 0;
  return (hash >>> 0) % SHARDS;
}

/** Keys added out of order that are kept apart from the main sorted list before it is rebuilt. */
const RECENT_KEYS = 16_384;

/** The first index in `sorted` whose key is not below `key`. */
function lowerBound(sorted: readonly string[], key: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((sorted[middle] as string) < key) low = middle + 1;
    else high = middle;
  }
  return low;
}

export class TableRows {
  private readonly maps = Array.from({ length: SHARDS }, () => new Map<string, StoredRow>());
  /** Composite keys in order; may still hold keys deleted since (skipped on reading). */
  private sorted: string[] = [];
  /** Keys added since the main list was built, kept sorted (binary insertion; see inOrder). */
  private added: string[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(key: string): StoredRow | undefined {
    return this.maps[shardOf(key)]?.get(key);
  }

  set(key: string, row: StoredRow): void {
    const map = this.maps[shardOf(key)] as Map<string, StoredRow>;
    if (!map.has(key)) {
      this.count += 1;
      const last = this.added.length === 0 ? this.sorted.at(-1) : undefined;
      // Keys arriving in order (a change feed, a recency shard) stay sorted without a sort.
      if (last !== undefined && key > last) this.sorted.push(key);
      else this.added.splice(lowerBound(this.added, key), 0, key);
    }
    map.set(key, row);
  }

  delete(key: string): boolean {
    const removed = this.maps[shardOf(key)]?.delete(key) ?? false;
    if (removed) this.count -= 1;
    return removed;
  }

  /**
   * Keys of present rows from the first at or after `start` (and inside `partitions` and `rows`),
   * in order. `rows` applies to every partition (callers pass it for a single partition).
   */
  *keys(start: string, partitions: KeyBounds, rows: KeyBounds): Generator<string> {
    const { sorted, recent } = this.inOrder();
    const beginning =
      partitions.from === undefined
        ? ''
        : compositeKey(partitions.from, rows.from !== undefined && rows.from !== '' ? rows.from : '');
    const first = start > beginning ? start : beginning;
    let i = lowerBound(sorted, first);
    let j = lowerBound(recent, first);
    let previous: string | undefined;
    while (i < sorted.length || j < recent.length) {
      // The two sorted lists merged on the fly: the next key of either, the smaller first.
      const a = sorted[i];
      const b = recent[j];
      const key = (b === undefined || (a !== undefined && a <= b) ? a : b) as string;
      if (key === a) i += 1;
      else j += 1;
      if (key === previous) continue;
      previous = key;
      const { partitionKey, rowKey } = splitKey(key);
      if (!within(partitionKey, { ...partitions, from: undefined })) return;
      if (!within(partitionKey, partitions)) continue;
      if (
        partitions.from !== undefined &&
        partitions.from === partitions.to &&
        !within(rowKey, { ...rows, from: undefined })
      ) {
        return;
      }
      if (!within(rowKey, rows)) continue;
      if (this.get(key)) yield key;
    }
  }

  /**
   * The keys in order, as two sorted lists to merge while reading: the main list and the keys
   * added since it was built. Rebuilding the main list costs the whole table, so it waits until
   * RECENT_KEYS have been added: a store that queries between its writes (every STOW reads its
   * study's rows) then costs a binary insertion per key and one rebuild per RECENT_KEYS keys.
   */
  private inOrder(): { sorted: readonly string[]; recent: readonly string[] } {
    if (this.added.length === 0) return { sorted: this.sorted, recent: [] };
    if (this.added.length < RECENT_KEYS) return { sorted: this.sorted, recent: this.added };
    const added = this.added;
    this.added = [];
    const merged: string[] = [];
    let i = 0;
    let j = 0;
    while (i < this.sorted.length || j < added.length) {
      const a = this.sorted[i];
      const b = added[j];
      const next = b === undefined || (a !== undefined && a <= b) ? a : b;
      if (next === a) i += 1;
      else j += 1;
      if (next !== undefined && next !== merged.at(-1) && this.get(next)) merged.push(next);
    }
    this.sorted = merged;
    return { sorted: merged, recent: [] };
  }
}

function within(value: string, bounds: KeyBounds): boolean {
  if (bounds.from !== undefined && (bounds.fromInclusive ? value < bounds.from : value <= bounds.from)) return false;
  if (bounds.to !== undefined && (bounds.toInclusive ? value > bounds.to : value >= bounds.to)) return false;
  return true;
}
