import { odata, type TableClient, type TransactionAction } from '@azure/data-tables';
import { compareText } from '../util/compare.js';
import { ChangeFeedKeys } from './keys.js';
import {
  StorageUnavailableError,
  type ChangeAction,
  type ChangeEntry,
  type ChangeFeedStore,
  type ChangeInput,
} from './ports.js';
import { guarded, statusOf, translateStorageError } from './storage-errors.js';
import { anyRowKey, collectRows, pointRead } from './table-query.js';
import { checkBatch, TableLimits } from './table-limits.js';

interface EntryRow {
  sequence: number;
  action: string;
  study: string;
  series: string;
  sop: string;
  version: string;
  /** Our timestamp; not named "timestamp", which the Table service uses for its own. */
  at: string;
}

/** Two rows per entry, the counter and the time row stay within Azure's 100 operations per transaction. */
const ENTRIES_PER_TRANSACTION = (TableLimits.maxBatchOperations - 2) / 2;
const MAX_ATTEMPTS = 50;

/** Marker row keys OR-ed in one query: the other 3 comparisons are the partition and a RowKey range (see logged). */
const MARKERS_PER_QUERY = TableLimits.maxFilterComparisons - 3;

/** The counter row as last written or read: its sequence, its timestamp and the ETag to replace it with. */
interface Counter {
  readonly sequence: number;
  readonly timestamp: string;
  readonly etag: string;
}

function toEntry(row: EntryRow): ChangeEntry {
  return {
    sequence: row.sequence,
    action: row.action as ChangeAction,
    key: { studyInstanceUid: row.study, seriesInstanceUid: row.series, sopInstanceUid: row.sop },
    version: row.version,
    timestamp: row.at,
  };
}

/** A change is logged at most once per action and version (its marker row). */
function changeKey(change: ChangeInput): string {
  return `${change.action}|${change.version}`;
}

interface Waiting {
  readonly changes: readonly ChangeInput[];
  resolve(entries: ChangeEntry[]): void;
  reject(error: unknown): void;
}

/**
 * Appends go through one counter entity updated with compare-and-swap in the same transaction as
 * the entries: an entry with sequence N exists exactly when the counter passed N, so entries
 * become visible in sequence order with no gaps, whatever the number of writers. Concurrent
 * appends of one process are grouped into one transaction (group commit) to keep contention low.
 */
export class AzureChangeFeed implements ChangeFeedStore {
  private queue: Waiting[] = [];
  private flushing = false;
  /**
   * The counter as this process last wrote it (the ETag from the transaction's answer) or last
   * read it. The next append tries it first and so spares the counter read when no other writer
   * moved it meanwhile; when one did, its ETag no longer matches (412), and the counter is read
   * again. Appends of one process are serialized (flush), so nothing else here changes it.
   */
  private lastCounter: Counter | undefined;

  constructor(private readonly table: TableClient) {}

  append(changes: readonly ChangeInput[]): Promise<ChangeEntry[]> {
    if (changes.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.queue.push({ changes, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  async has(action: ChangeAction, version: string): Promise<boolean> {
    const marker = ChangeFeedKeys.marker(action, version);
    return (await pointRead(this.table, ChangeFeedKeys.partition, marker, 'a change feed read')) !== undefined;
  }

  /**
   * Marker rows read by queries rather than one point read each: a $filter holds at most
   * TableLimits.maxFilterComparisons (15), so each query names 12 markers OR-ed, and bounds them
   * with a RowKey range (the partition key and the two bounds are the other 3). Azure runs an OR of row keys as a scan of the partition, which
   * grows with the feed; the range keeps that scan to the markers between the lowest and highest
   * version asked, and versions are sorted first so that each query's range is narrow (a
   * batch's versions were mostly stored together, so they sort together).
   */
  async logged(action: ChangeAction, versions: readonly string[]): Promise<Set<string>> {
    const sorted = [...new Set(versions)].sort(compareText);
    const chunks: string[][] = [];
    for (let i = 0; i < sorted.length; i += MARKERS_PER_QUERY) chunks.push(sorted.slice(i, i + MARKERS_PER_QUERY));
    const found = await Promise.all(
      chunks.map(async (chunk) => {
        const keys = chunk.map((version) => ChangeFeedKeys.marker(action, version));
        const filter = `${odata`PartitionKey eq ${ChangeFeedKeys.partition} and RowKey ge ${keys[0] ?? ''} and RowKey le ${keys.at(-1) ?? ''}`} and ${anyRowKey(keys)}`;
        const rows = await collectRows<object>(this.table, filter, 'a change feed read');
        return rows.map((row) => (row.rowKey ?? '').slice(ChangeFeedKeys.marker(action, '').length));
      }),
    );
    return new Set(found.flat());
  }

  async after(sequence: number, limit: number): Promise<ChangeEntry[]> {
    const filter = odata`PartitionKey eq ${ChangeFeedKeys.partition} and RowKey gt ${ChangeFeedKeys.entry(sequence)} and RowKey lt ${ChangeFeedKeys.entriesEnd}`;
    return (await collectRows<EntryRow>(this.table, filter, 'a change feed read', limit)).map(toEntry);
  }

  /**
   * Timestamps never decrease along the sequence and sequences have no gaps, so the entries of a
   * window are one run of sequences: the first is the one the window's first time row names (the
   * lowest sequence at the lowest timestamp at or after `start`), and the entry at `offset` is
   * that sequence plus `offset`, read directly whatever the offset. The run ends at the first
   * entry at or after `end`. Feeds written before one time row per transaction have a time row
   * per entry, each naming its own sequence, which serves the same way.
   */
  async window(start: Date, end: Date, offset: number, limit: number): Promise<ChangeEntry[]> {
    const to = end.toISOString();
    const filter = odata`PartitionKey eq ${ChangeFeedKeys.partition} and RowKey ge ${ChangeFeedKeys.timeFrom(start.toISOString())} and RowKey lt ${ChangeFeedKeys.timeFrom(to)}`;
    const [first] = await collectRows<object>(this.table, filter, 'a change feed read', 1);
    if (!first?.rowKey) return [];
    const entries = await this.after(ChangeFeedKeys.timeSequence(first.rowKey) - 1 + offset, limit);
    const past = entries.findIndex((entry) => entry.timestamp >= to);
    return past === -1 ? entries : entries.slice(0, past);
  }

  async latest(): Promise<ChangeEntry | undefined> {
    const counter = await this.counter();
    if (!counter || counter.sequence === 0) return undefined;
    const row = await guarded('a change feed read', () =>
      this.table.getEntity<EntryRow>(ChangeFeedKeys.partition, ChangeFeedKeys.entry(counter.sequence)),
    );
    return toEntry(row);
  }

  private async counter(): Promise<Counter | undefined> {
    const row = await pointRead<{ sequence: number; at: string }>(
      this.table,
      ChangeFeedKeys.partition,
      ChangeFeedKeys.counter,
      'a change feed read',
    );
    return row && { sequence: row.sequence, timestamp: row.at, etag: row.etag };
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        // Take whole requests up to one transaction's worth (a larger request gets its own batches).
        const batch: Waiting[] = [];
        let size = 0;
        while (
          this.queue.length > 0 &&
          (batch.length === 0 || size + (this.queue[0]?.changes.length ?? 0) <= ENTRIES_PER_TRANSACTION)
        ) {
          const next = this.queue.shift() as Waiting;
          batch.push(next);
          size += next.changes.length;
        }
        try {
          // Concurrent deletes of one instance append the same change: once per transaction (a
          // row may appear only once in a batch), and each waiter gets the entries of its changes.
          const unique = new Map<string, ChangeInput>();
          for (const change of batch.flatMap((waiting) => waiting.changes)) unique.set(changeKey(change), change);
          const entries = new Map(
            (await this.commit([...unique.values()])).map((entry) => [changeKey(entry), entry] as const),
          );
          for (const waiting of batch) {
            waiting.resolve(
              waiting.changes.flatMap((change) => {
                const entry = entries.get(changeKey(change));
                return entry ? [entry] : [];
              }),
            );
          }
        } catch (error) {
          for (const waiting of batch) waiting.reject(error);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async commit(changes: readonly ChangeInput[]): Promise<ChangeEntry[]> {
    const all: ChangeEntry[] = [];
    for (let i = 0; i < changes.length; i += ENTRIES_PER_TRANSACTION) {
      all.push(...(await this.commitChunk(changes.slice(i, i + ENTRIES_PER_TRANSACTION))));
    }
    return all;
  }

  private async commitChunk(input: readonly ChangeInput[]): Promise<ChangeEntry[]> {
    let changes = input;
    let counter = this.lastCounter ?? (await this.counter());
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
      if (changes.length === 0) return [];
      const previous = counter?.sequence ?? 0;
      // Timestamps never decrease along the sequence, even when writers' clocks disagree.
      const now = new Date().toISOString();
      const timestamp = counter && counter.timestamp > now ? counter.timestamp : now;
      const entries: ChangeEntry[] = changes.map((change, i) => ({ ...change, sequence: previous + 1 + i, timestamp }));
      const last = previous + changes.length;
      const counterRow = {
        partitionKey: ChangeFeedKeys.partition,
        rowKey: ChangeFeedKeys.counter,
        sequence: last,
        at: timestamp,
      };
      const timeRow = {
        partitionKey: ChangeFeedKeys.partition,
        rowKey: ChangeFeedKeys.time(timestamp, previous + 1),
        sequence: previous + 1,
      };
      const rows = entries.flatMap((entry) => {
        const row: EntryRow = {
          sequence: entry.sequence,
          action: entry.action,
          study: entry.key.studyInstanceUid,
          series: entry.key.seriesInstanceUid,
          sop: entry.key.sopInstanceUid,
          version: entry.version,
          at: timestamp,
        };
        return [
          { partitionKey: ChangeFeedKeys.partition, rowKey: ChangeFeedKeys.entry(entry.sequence), ...row },
          {
            partitionKey: ChangeFeedKeys.partition,
            rowKey: ChangeFeedKeys.marker(entry.action, entry.version),
            sequence: entry.sequence,
          },
        ];
      });
      rows.push(timeRow);
      checkBatch([counterRow, ...rows]);
      const actions: TransactionAction[] = [
        counter ? ['update', counterRow, 'Replace', { etag: counter.etag }] : ['create', counterRow],
        ...rows.map((row): TransactionAction => ['create', row]),
      ];
      try {
        const response = await this.table.submitTransaction(actions);
        // The counter is the transaction's first operation, and so its first answer (the SDK
        // finds an answer's row key only where the service names it, which an update's does not);
        // the SDK keeps the ETag header's line ending.
        const etag = response.subResponses[0]?.etag?.trim();
        this.lastCounter = etag ? { sequence: last, timestamp, etag } : undefined;
        return entries;
      } catch (error) {
        const status = statusOf(error);
        if (status !== 409 && status !== 412) translateStorageError(error, 'a change feed append');
        // 412: another writer moved the counter (or the one remembered is stale); 409: the counter
        // matched (its ETag is checked first) but a row to create exists, so a marker does: that
        // change is logged already (by a concurrent delete of the same version, say). Either way
        // the counter is read again for the next attempt, and what is logged is dropped.
        counter = await this.counter();
        this.lastCounter = counter;
        if (status === 409 || counter?.sequence === previous) {
          const byAction = new Map<ChangeAction, Set<string>>();
          for (const action of new Set(changes.map((change) => change.action))) {
            const versions = changes.filter((change) => change.action === action).map((change) => change.version);
            byAction.set(action, await this.logged(action, versions));
          }
          changes = changes.filter((change) => byAction.get(change.action)?.has(change.version) !== true);
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(100, 2 ** attempt) * Math.random()));
      }
    }
    throw new StorageUnavailableError('The change feed is too busy; try again.');
  }
}
