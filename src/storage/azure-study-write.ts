import {
  odata,
  type TableClient,
  type TableEntity,
  type TableEntityResult,
  type TransactionAction,
} from '@azure/data-tables';
import {
  instanceCount,
  instanceEntity,
  isHidden,
  isNewSeries,
  nextSeriesEntity,
  nextStudyEntity,
  storedVersionOf,
  withoutUndefined,
} from './index-entities.js';
import { instanceRowKey, SeriesRowRange, seriesRowKey, StudyPartitionEnd, StudyRowKey } from './keys.js';
import {
  StorageUnavailableError,
  type AddInstanceOutcome,
  type InstanceKey,
  type InstanceRecord,
  type StoredVersion,
  type StudyAddOptions,
  type StudyAddOutcome,
  type StudyWrite,
} from './ports.js';
import { writeExpiry } from './azure-expiry-index.js';
import { pointerEntity, pointerRows, type PointerRow } from './search-pointers.js';
import { guarded, statusOf, translateStorageError } from './storage-errors.js';
import { checkBatch, entityBytes, TableLimits } from './table-limits.js';
import { anyRowKey, collectRows } from './table-query.js';
import { MAX_ATTEMPTS, pause } from './study-races.js';
import type { StudyRowMemory } from './study-row-memory.js';

type StoredRow = TableEntityResult<Record<string, unknown>>;
type Row = TableEntity;

/** RowKeys OR-ed in one query: the filter's other comparison is the PartitionKey. */
const KEYS_PER_QUERY = TableLimits.maxFilterComparisons - 1;

/**
 * Instance rows' payload in one transaction: Azure's 4 MiB less room for the series and study
 * rows it also carries (a few KiB each) and the multipart framing. checkBatch verifies the whole.
 */
const MAX_PAYLOAD = TableLimits.maxBatchBytes - 512 * 1024;

/** Rows of one partition by RowKey, in as few queries as the filter limit allows (in parallel). */
async function readRows(table: TableClient, partitionKey: string, rowKeys: readonly string[]): Promise<StoredRow[]> {
  const chunks: string[][] = [];
  for (let i = 0; i < rowKeys.length; i += KEYS_PER_QUERY) chunks.push(rowKeys.slice(i, i + KEYS_PER_QUERY));
  const pages = await Promise.all(
    chunks.map((keys) => {
      return collectRows<Record<string, unknown>>(
        table,
        `${odata`PartitionKey eq ${partitionKey}`} and ${anyRowKey(keys)}`,
        'an index read',
      );
    }),
  );
  return pages.flat();
}

/**
 * The study row, the series rows of `keys` and the instance rows of those whose series already
 * has instances. A single-instance request into a known series is one query; a new series needs
 * no instance rows at all (nothing can be stored in it yet).
 */
async function readStudyState(
  table: TableClient,
  studyInstanceUid: string,
  keys: readonly InstanceKey[],
): Promise<Map<string, StoredRow>> {
  const rows = new Map<string, StoredRow>();
  const head = [StudyRowKey, ...new Set(keys.map((key) => seriesRowKey(key.seriesInstanceUid)))];
  let first: StoredRow[];
  let rest: readonly InstanceKey[] = keys;
  if (head.length <= KEYS_PER_QUERY) {
    // Spare places in the first query go to instance rows, so one query often does it all.
    const spare = KEYS_PER_QUERY - head.length;
    first = await readRows(table, studyInstanceUid, [...head, ...keys.slice(0, spare).map(instanceRowKey)]);
    rest = keys.slice(spare);
  } else {
    // Many series: their rows and the study row are one key range ("series|…" < "study" < "study|").
    const filter = odata`PartitionKey eq ${studyInstanceUid} and RowKey ge ${SeriesRowRange.from} and RowKey lt ${StudyPartitionEnd}`;
    first = await collectRows(table, filter, 'an index read');
  }
  for (const row of first) rows.set(row.rowKey ?? '', row);
  const known = rest.filter((key) => instanceCount(rows.get(seriesRowKey(key.seriesInstanceUid))) > 0);
  for (const row of await readRows(table, studyInstanceUid, known.map(instanceRowKey))) rows.set(row.rowKey ?? '', row);
  return rows;
}

/** Create the row if it was absent when read, otherwise replace it only if nobody changed it since. */
function conditional(next: Row, current: StoredRow | undefined): TransactionAction {
  return current ? ['update', next, 'Replace', { etag: current.etag }] : ['create', next];
}

/** The rows one transaction writes, and what it decides for its records. */
interface Chunk {
  /** The records it adds, with their outcome once it commits ('added-series' for a series' first). */
  readonly taken: ReadonlyMap<number, AddInstanceOutcome>;
  /** Records a deletion mark hides: 'deleting' without a write. */
  readonly hidden: readonly number[];
  /** Upserts whose instance row a concurrent store changed since it was first read: 'exists'. */
  readonly lost: readonly number[];
  readonly actions: TransactionAction[];
  readonly pointers: readonly PointerRow[];
  /** The study and series rows as the transaction leaves them (without ETags). */
  readonly next: ReadonlyMap<string, Row>;
}

export class AzureStudyWrite implements StudyWrite {
  private readonly pointersWritten = new Set<string>();
  /** The time the study's new rows and pointers carry: one for writeAhead and add alike. */
  private readonly now = new Date();
  private expiryWritten: Date | undefined;
  /** The version of each instance row as first read: what an upsert of it replaces. */
  private readonly prepared = new Map<string, string>();

  private constructor(
    private readonly table: TableClient,
    private readonly studyInstanceUid: string,
    private readonly rows: Map<string, StoredRow>,
    private readonly memory: StudyRowMemory,
    /** When `rows` were read (performance.now()), to tell them from newer ones in `memory`. */
    private readonly readAt: number,
  ) {
    for (const [rowKey, row] of rows) if (typeof row['version'] === 'string') this.prepared.set(rowKey, row['version']);
  }

  static async prepare(
    table: TableClient,
    studyInstanceUid: string,
    keys: readonly InstanceKey[],
    memory: StudyRowMemory,
  ): Promise<AzureStudyWrite> {
    const rows = await readStudyState(table, studyInstanceUid, keys);
    return new AzureStudyWrite(table, studyInstanceUid, rows, memory, performance.now());
  }

  exists(key: InstanceKey): boolean {
    return this.rows.has(instanceRowKey(key)) && !this.deleting(key);
  }

  deleting(key: InstanceKey): boolean {
    return isHidden(this.rows.get(StudyRowKey), this.rows.get(seriesRowKey(key.seriesInstanceUid)));
  }

  current(key: InstanceKey): StoredVersion | undefined {
    const row = this.exists(key) ? this.rows.get(instanceRowKey(key)) : undefined;
    return row && storedVersionOf(row);
  }

  /**
   * The search pointers (and expiry row) `add` would write first for these records, as the rows
   * read show them; the caller starts this beside the blob commits, so that `add` finds them
   * written and goes straight to the index transaction. A failure is left for `add`, which writes
   * whatever is missing and reports an outage there.
   */
  async writeAhead(records: readonly Omit<InstanceRecord, 'size'>[], options: StudyAddOptions = {}): Promise<void> {
    // Sizes are known only once the blobs commit; they go into instance rows, not into pointers.
    const sized = records.map((record) => ({ ...record, size: 0 }));
    const { pointers } = this.chunk(
      sized,
      sized.map((_, i) => i),
      this.now,
      options,
      false,
    );
    try {
      await Promise.all([this.writeExpiry(options.expiresAt), this.writePointers(pointers)]);
    } catch (error) {
      if (!(error instanceof StorageUnavailableError)) throw error;
    }
  }

  async add(records: readonly InstanceRecord[], options: StudyAddOptions = {}): Promise<StudyAddOutcome[]> {
    const outcomes = new Array<StudyAddOutcome | undefined>(records.length);
    try {
      await this.writeExpiry(options.expiresAt);
      await this.addUntilSettled(records, outcomes, options);
    } catch (error) {
      if (!(error instanceof StorageUnavailableError)) throw error;
      // Array.from, not map: map would keep the holes of records never settled.
      return Array.from(outcomes, (outcome) => outcome ?? 'unavailable');
    }
    return Array.from(outcomes, (outcome) => outcome ?? 'exists');
  }

  /**
   * Fills `outcomes` transaction by transaction; throws StorageUnavailableError on an outage.
   * This process's writers into the study take turns (StudyRowMemory), each starting from the
   * study and series rows the one before it left when those are newer than its own.
   */
  private addUntilSettled(
    records: readonly InstanceRecord[],
    outcomes: (StudyAddOutcome | undefined)[],
    options: StudyAddOptions,
  ): Promise<void> {
    return this.memory.inTurn(this.studyInstanceUid, async () => {
      for (const [rowKey, row] of this.memory.newerThan(this.studyInstanceUid, this.readAt)) {
        if (row) this.rows.set(rowKey, row);
        else this.rows.delete(rowKey);
      }
      await this.addInTurn(records, outcomes, options);
    });
  }

  private async addInTurn(
    records: readonly InstanceRecord[],
    outcomes: (StudyAddOutcome | undefined)[],
    options: StudyAddOptions,
  ): Promise<void> {
    const now = this.now;
    const replace = options.replace === true;
    let failures = 0;
    for (let pending = records.map((_, i) => i); pending.length > 0; pending = pending.filter((i) => !outcomes[i])) {
      const chunk = this.chunk(records, pending, now, options);
      for (const i of chunk.hidden) outcomes[i] = 'deleting';
      for (const i of chunk.lost) outcomes[i] = 'exists';
      if (chunk.taken.size === 0) continue;
      await this.writePointers(chunk.pointers);
      try {
        const response = await this.table.submitTransaction(chunk.actions);
        for (const [i, outcome] of chunk.taken) outcomes[i] = outcome;
        // The answers come in the order of the actions, the study and series rows' last. The SDK
        // finds an answer by row key only where the service names it, which an update's answer
        // does not; its ETag header is there all the same (the SDK keeps the line ending).
        const first = chunk.actions.length - chunk.next.size;
        let stale = false;
        [...chunk.next].forEach(([rowKey, row], j) => {
          const etag = (response.getResponseForEntity(rowKey)?.etag ?? response.subResponses[first + j]?.etag)?.trim();
          if (etag) this.rows.set(rowKey, { ...row, etag });
          else stale = true;
        });
        const answered = [...chunk.next.keys()].map((rowKey) => [rowKey, this.rows.get(rowKey)] as const);
        if (!stale) this.memory.saw(this.studyInstanceUid, answered, performance.now());
        const rest = records.filter((_, i) => !outcomes[i]);
        if (stale && rest.length > 0) await this.refresh(rest);
        failures = 0;
      } catch (error) {
        const status = statusOf(error);
        // 404: a row read was dropped since (a delete finished): create it afresh; 409: a row to
        // create exists (a concurrent store); 412: a row changed (a store, or a deletion mark).
        if (status !== 404 && status !== 409 && status !== 412) translateStorageError(error, 'the index update');
        failures += 1;
        if (failures >= MAX_ATTEMPTS) {
          throw new StorageUnavailableError('The study index is too busy; the instances were not stored.');
        }
        // Back off first, then read: the rows the next attempt is conditional on must be fresh.
        await pause(failures);
        await this.refresh(records.filter((_, i) => !outcomes[i]));
        for (const [i, outcome] of chunk.taken) {
          const record = records[i] as InstanceRecord;
          const row = this.rows.get(instanceRowKey(record));
          // Our own version: the transaction committed and only its answer was lost (a retry). The
          // version an upsert replaces: tried again (chunk decides, from the rows read now).
          if (!row) {
            if (options.replaceOnly === true) outcomes[i] = 'deleting';
            continue;
          }
          if (row['version'] === record.version) outcomes[i] = outcome;
          else if (!replace || row['version'] !== this.prepared.get(instanceRowKey(record))) outcomes[i] = 'exists';
        }
      }
    }
  }

  /**
   * The next transaction: records in order while they fit 100 operations and the payload limit,
   * with the series and study rows they change. With `replace`, a record whose instance row holds
   * the version first read replaces it (conditionally on its ETag); one whose row holds another
   * version lost to a concurrent store.
   */
  private chunk(
    records: readonly InstanceRecord[],
    pending: readonly number[],
    now: Date,
    options: StudyAddOptions,
    /**
     * False for writeAhead's look at all the records at once: only the pointers and the rows as
     * they would end are worked out, no instance row and no transaction.
     */
    limited = true,
  ): Chunk {
    const replace = options.replace === true;
    const next = new Map<string, Row>();
    const taken = new Map<number, AddInstanceOutcome>();
    const hidden: number[] = [];
    const lost: number[] = [];
    const actions: TransactionAction[] = [];
    const pointers: PointerRow[] = [];
    let payload = 0;
    const current = (rowKey: string) => (next.get(rowKey) ?? this.rows.get(rowKey)) as StoredRow | undefined;
    for (const i of pending) {
      const record = records[i] as InstanceRecord;
      const seriesKey = seriesRowKey(record.seriesInstanceUid);
      const study = current(StudyRowKey);
      const series = current(seriesKey);
      if (isHidden(study, series)) {
        hidden.push(i);
        continue;
      }
      const existing = replace ? this.rows.get(instanceRowKey(record)) : undefined;
      if (!existing && options.replaceOnly === true) {
        hidden.push(i); // deleted since it was read: a bulk update must not bring it back
        continue;
      }
      if (existing && existing['version'] !== this.prepared.get(instanceRowKey(record))) {
        lost.push(i);
        continue;
      }
      if (limited) {
        const instance = withoutUndefined(instanceEntity(record)) as Row;
        const bytes = entityBytes(instance as never) * 2;
        const operations = actions.length + 1 + new Set([...next.keys(), seriesKey, StudyRowKey]).size;
        if (taken.size > 0 && (operations > TableLimits.maxBatchOperations || payload + bytes > MAX_PAYLOAD)) break;
        payload += bytes;
        actions.push(existing ? ['update', instance, 'Replace', { etag: existing.etag }] : ['create', instance]);
      }
      const replacing = existing !== undefined;
      // A replaced instance keeps its SOP pointer; the other pointers follow changed attributes.
      pointers.push(...pointerRows(record, study, series, now).slice(replacing ? 1 : 0));
      taken.set(i, replacing ? 'replaced' : isNewSeries(series) ? 'added-series' : 'added');
      next.set(seriesKey, withoutUndefined(nextSeriesEntity(record, series, replacing)));
      next.set(
        StudyRowKey,
        withoutUndefined({
          ...nextStudyEntity(record, study, !replacing && isNewSeries(series), replacing),
          expiresAt: options.expiresAt?.toISOString(),
        }),
      );
    }
    if (limited) {
      for (const [rowKey, row] of next) actions.push(conditional(row, this.rows.get(rowKey)));
      checkBatch(actions.map(([, entity]) => entity as never));
    }
    return { taken, hidden, lost, actions, pointers, next };
  }

  /** Reads again the study row and the series and instance rows of the records still to add. */
  private async refresh(keys: readonly InstanceKey[]): Promise<void> {
    const series = [...new Set(keys.map((key) => seriesRowKey(key.seriesInstanceUid)))];
    const fresh = await readRows(this.table, this.studyInstanceUid, [
      StudyRowKey,
      ...series,
      ...keys.map(instanceRowKey),
    ]);
    // Instance rows too: one deleted since (a concurrent DELETE) must not be retried against.
    for (const rowKey of [StudyRowKey, ...series, ...keys.map(instanceRowKey)]) this.rows.delete(rowKey);
    for (const row of fresh) this.rows.set(row.rowKey ?? '', row);
    const read = [StudyRowKey, ...series].map((rowKey) => [rowKey, this.rows.get(rowKey)] as const);
    this.memory.saw(this.studyInstanceUid, read, performance.now());
  }

  /** Written ahead, as search pointers are: the expiry sweep checks the study row before acting. */
  private async writeExpiry(expiresAt: Date | undefined): Promise<void> {
    if (!expiresAt || this.expiryWritten?.getTime() === expiresAt.getTime()) return;
    await writeExpiry(this.table, { studyInstanceUid: this.studyInstanceUid, expiresAt });
    this.expiryWritten = expiresAt;
  }

  /**
   * Search pointers go first (write-ahead); readers verify them, so early ones are harmless.
   * Pointers that share a partition (the SOP pointers of one series, usually) go in one
   * entity-group transaction per 100; the others one upsert each, all in parallel.
   */
  private async writePointers(rows: readonly PointerRow[]): Promise<void> {
    const byPartition = new Map<string, Map<string, PointerRow>>();
    for (const row of rows) {
      const key = `${row.partitionKey}\n${row.rowKey}`;
      if (this.pointersWritten.has(key)) continue;
      const partition = byPartition.get(row.partitionKey) ?? new Map<string, PointerRow>();
      partition.set(key, row);
      byPartition.set(row.partitionKey, partition);
    }
    const writes: Promise<void>[] = [];
    for (const partition of byPartition.values()) {
      const entries = [...partition];
      for (let at = 0; at < entries.length; at += TableLimits.maxBatchOperations) {
        const group = entries.slice(at, at + TableLimits.maxBatchOperations);
        const entities = group.map(([, row]) => pointerEntity(row));
        checkBatch(entities);
        const [only] = entities;
        writes.push(
          guarded('a search pointer write', async () => {
            if (entities.length === 1 && only) await this.table.upsertEntity(only, 'Replace');
            else await this.table.submitTransaction(entities.map((entity) => ['upsert', entity, 'Replace']));
          }).then(() => {
            for (const [key] of group) this.pointersWritten.add(key);
          }),
        );
      }
    }
    await Promise.all(writes);
  }
}
