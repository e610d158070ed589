/**
 * The rows of one in-memory table, kept in the service's order (PartitionKey, then RowKey) so a
 * query seeks to its key range and reads only that, as Table Storage does. Built for millions
 * of rows: a row is one string (StoredRow), and the key order is a list of sorted blocks of
 * composite keys (SortedKeys), kept in order on every write.
 */
import type { KeyBounds } from './odata-filter.js';

/**
 * A row as one string, `{version} {JSON of the properties other than the keys}`: a million
 * studies are some twenty million rows, and an object per row would cost more than its text.
 * The version changes on every write of the row: it is the ETag. The string is flat and one
 * byte a character: JSON with characters past Latin-1 (a Japanese name) would make V8 keep the
 * whole row at two bytes a character, so such a row is kept as its UTF-8 bytes, one character
 * each, marked by `*` in place of the space.
 */
export type StoredRow = string;

const UTF8_MARK = '*';
/** Characters that make V8 store a string at two bytes each. */
const WIDE = /[\u0100-\uffff]/;

/**
 * A flat copy of a string to keep: a string built by concatenation is a tree of its parts (a
 * cons string), and once V8 flattens it the tree's head stays alive beside the flat copy. (A
 * string past Latin-1 is returned as it is.)
 */
export function flat(text: string): string {
  return WIDE.test(text) ? text : Buffer.from(text, 'latin1').toString('latin1');
}

export function storedRow(version: number, properties: object): StoredRow {
  const json = JSON.stringify(properties);
  if (!WIDE.test(json)) return Buffer.from(`${version} ${json}`, 'latin1').toString('latin1');
  return Buffer.from(`${version}${UTF8_MARK}${json}`, 'utf8').toString('latin1');
}

/** Where the version ends (it is digits). */
function separatorOf(row: StoredRow): number {
  let at = 0;
  for (let code = row.charCodeAt(0); code >= 48 && code <= 57; code = row.charCodeAt(at)) at += 1;
  return at;
}

export function rowJson(row: StoredRow): string {
  const at = separatorOf(row);
  const body = row.slice(at + 1);
  return row[at] === UTF8_MARK ? Buffer.from(body, 'latin1').toString('utf8') : body;
}

export function rowVersion(row: StoredRow): string {
  return row.slice(0, separatorOf(row));
}

/** The row's length as text (`{version} {JSON}`), whichever way it is kept: what a read of it is metered as. */
export function rowLength(row: StoredRow): number {
  const at = separatorOf(row);
  return row[at] === UTF8_MARK ? at + 1 + rowJson(row).length : row.length;
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

/**
 * Keys per block of the sorted key list: a block splits in two when it passes twice this, so an
 * insertion moves at most a few thousand references, and a seek is two binary searches.
 */
const BLOCK = 1024;

/** The first index in `sorted` whose key is not below `key` (with `after`, not at or below it). */
function lowerBound(sorted: readonly string[], key: string, after = false): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const here = sorted[middle] as string;
    if (here < key || (after && here === key)) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Keys in order, in blocks of at most 2 × BLOCK: inserting or removing one costs a binary search
 * and a move within one block, whatever the table's size, and keys in any order (a study's rows,
 * its pointers across the partitions of the access paths) cost the same.
 */
class SortedKeys {
  private readonly blocks: string[][] = [];
  /** The first key of each block, to find a key's block by binary search. */
  private readonly firsts: string[] = [];
  /** Counts insertions and removals, so an iteration in progress knows to seek again. */
  private changes = 0;

  /** The block a key belongs in: the last whose first key is at or below it (else the first). */
  private blockOf(key: string): number {
    return Math.max(0, lowerBound(this.firsts, key, true) - 1);
  }

  insert(key: string): void {
    this.changes += 1;
    if (this.blocks.length === 0) {
      this.blocks.push([key]);
      this.firsts.push(key);
      return;
    }
    const b = this.blockOf(key);
    const block = this.blocks[b] as string[];
    const at = lowerBound(block, key);
    if (at === block.length) block.push(key);
    else block.splice(at, 0, key);
    if (at === 0) this.firsts[b] = key;
    if (block.length > 2 * BLOCK) {
      const tail = block.splice(BLOCK);
      this.blocks.splice(b + 1, 0, tail);
      this.firsts.splice(b + 1, 0, tail[0] as string);
    }
  }

  remove(key: string): void {
    if (this.blocks.length === 0) return;
    const b = this.blockOf(key);
    const block = this.blocks[b] as string[];
    const at = lowerBound(block, key);
    if (block[at] !== key) return;
    this.changes += 1;
    block.splice(at, 1);
    if (block.length === 0) {
      this.blocks.splice(b, 1);
      this.firsts.splice(b, 1);
    } else if (at === 0) {
      this.firsts[b] = block[0] as string;
    }
  }

  /** The keys at or after `first`, in order; writes between steps are seen (the walk seeks again past the last key given). */
  *from(first: string): Generator<string> {
    let b = this.blockOf(first);
    let i = lowerBound(this.blocks[b] ?? [], first);
    let seen = this.changes;
    let last: string | undefined;
    for (;;) {
      if (seen !== this.changes && last !== undefined) {
        seen = this.changes;
        b = this.blockOf(last);
        i = lowerBound(this.blocks[b] ?? [], last, true);
      }
      const block = this.blocks[b];
      if (!block) return;
      if (i >= block.length) {
        b += 1;
        i = 0;
        continue;
      }
      const key = block[i] as string;
      last = key;
      i += 1;
      yield key;
    }
  }
}

export class TableRows {
  private readonly maps = Array.from({ length: SHARDS }, () => new Map<string, StoredRow>());
  /** The composite keys of the rows held, in order. */
  private readonly sorted = new SortedKeys();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(key: string): StoredRow | undefined {
    return this.maps[shardOf(key)]?.get(key);
  }

  set(key: string, row: StoredRow): void {
    const map = this.maps[shardOf(key)] as Map<string, StoredRow>;
    if (map.has(key)) {
      map.set(key, row);
      return;
    }
    const kept = flat(key);
    this.count += 1;
    this.sorted.insert(kept);
    map.set(kept, row);
  }

  delete(key: string): boolean {
    const removed = this.maps[shardOf(key)]?.delete(key) ?? false;
    if (removed) {
      this.count -= 1;
      this.sorted.remove(key);
    }
    return removed;
  }

  /**
   * Keys of present rows from the first at or after `start` (and inside `partitions` and `rows`),
   * in order. `rows` applies to every partition (callers pass it for a single partition).
   */
  *keys(start: string, partitions: KeyBounds, rows: KeyBounds): Generator<string> {
    const beginning =
      partitions.from === undefined
        ? ''
        : compositeKey(partitions.from, rows.from !== undefined && rows.from !== '' ? rows.from : '');
    const partitionsUpTo = { ...partitions, from: undefined };
    const rowsUpTo = { ...rows, from: undefined };
    const onePartition = partitions.from !== undefined && partitions.from === partitions.to;
    for (const key of this.sorted.from(start > beginning ? start : beginning)) {
      const { partitionKey, rowKey } = splitKey(key);
      if (!within(partitionKey, partitionsUpTo)) return;
      if (!within(partitionKey, partitions)) continue;
      if (onePartition && !within(rowKey, rowsUpTo)) return;
      if (!within(rowKey, rows)) continue;
      yield key;
    }
  }
}

function within(value: string, bounds: KeyBounds): boolean {
  if (bounds.from !== undefined && (bounds.fromInclusive ? value < bounds.from : value <= bounds.from)) return false;
  if (bounds.to !== undefined && (bounds.toInclusive ? value > bounds.to : value >= bounds.to)) return false;
  return true;
}
