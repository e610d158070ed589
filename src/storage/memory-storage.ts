import { MemoryOperations } from './memory-operations.js';
import type { TableEntity, TableEntityResult } from '@azure/data-tables';
import { compareText } from '../util/compare.js';
import { planRemoval } from './index-removal.js';
import {
  instanceCount,
  instanceEntity,
  isExpiredBy,
  isHidden,
  isMarked,
  isNewSeries,
  isVisible,
  nextSeriesEntity,
  nextStudyEntity,
  recordFromEntity,
  seriesFromEntity,
  storedVersionOf,
  studyFromEntity,
  textOf,
} from './index-entities.js';
import {
  AccessPathKeys,
  NewestFirstKeys,
  ExpiryKeys,
  instanceRowKey,
  instanceRowRange,
  pendingPartitionKey,
  pendingRowKey,
  RECENT_SHARDS,
  SeriesRowRange,
  seriesRowKey,
  SopPointerKeys,
  StudyRowKey,
} from './keys.js';
import { pointerEntity, pointerRows, searchPointerOf, type PointerRow } from './search-pointers.js';
import type {
  AccessPath,
  ChangeAction,
  ChangeEntry,
  ChangeFeedStore,
  ChangeInput,
  AddInstanceOutcome,
  ExpiryPointer,
  BlobStore,
  OpenedBlob,
  BlobUpload,
  ByteRange,
  InstanceIndex,
  InstanceKey,
  InstanceRecord,
  MarkOutcome,
  PendingBlob,
  PendingBlobs,
  SearchPointer,
  SeriesAggregate,
  Storage,
  StudyAddOptions,
  StudyAggregate,
  StudyWrite,
  VersionKey,
} from './ports.js';
import { addOneInstance } from './add-instance.js';

type StoredRow = TableEntityResult<Record<string, unknown>>;

interface MemoryBlob {
  bytes: Buffer;
  metadata: Record<string, string>;
  createdOn: Date;
}

/** In-memory blobs for unit tests: same visibility rules as the Azure adapter. */
export class MemoryBlobStore implements BlobStore {
  readonly blobs = new Map<string, MemoryBlob>();

  beginUpload(name: string): BlobUpload {
    const chunks: Buffer[] = [];
    return {
      held: 0,
      release: () => Promise.resolve(),
      write: (chunk) => {
        chunks.push(Buffer.from(chunk));
        return Promise.resolve();
      },
      commit: (metadata) => {
        const bytes = Buffer.concat(chunks);
        this.blobs.set(name, { bytes, metadata, createdOn: new Date() });
        return Promise.resolve(bytes.byteLength);
      },
      abort: () => {
        chunks.length = 0;
        return Promise.resolve();
      },
    };
  }

  async *read(name: string, range?: ByteRange): AsyncGenerator<Uint8Array, void, undefined> {
    await Promise.resolve();
    const blob = this.blobs.get(name);
    if (!blob) throw new Error(`no blob ${name}`);
    const start = range?.offset ?? 0;
    const end = range ? start + range.count : blob.bytes.length;
    for (let at = start; at < end; at += 65536) yield blob.bytes.subarray(at, Math.min(end, at + 65536));
  }

  async open(name: string): Promise<OpenedBlob | undefined> {
    await Promise.resolve();
    return this.blobs.has(name) ? { chunks: this.read(name), cancel: () => undefined } : undefined;
  }

  readSmall(name: string): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.blobs.get(name)?.bytes);
  }

  writeSmall(name: string, bytes: Uint8Array, _contentType: string, metadata: Record<string, string>): Promise<void> {
    this.blobs.set(name, { bytes: Buffer.from(bytes), metadata, createdOn: new Date() });
    return Promise.resolve();
  }

  append(name: string, bytes: Uint8Array): Promise<void> {
    const current = this.blobs.get(name);
    const joined = Buffer.concat([current?.bytes ?? Buffer.alloc(0), Buffer.from(bytes)]);
    this.blobs.set(name, {
      bytes: joined,
      metadata: current?.metadata ?? {},
      createdOn: current?.createdOn ?? new Date(),
    });
    return Promise.resolve();
  }

  delete(name: string): Promise<void> {
    this.blobs.delete(name);
    return Promise.resolve();
  }

  deleteMany(names: readonly string[]): Promise<void> {
    for (const name of names) this.blobs.delete(name);
    return Promise.resolve();
  }

  async *list(prefix: string): AsyncIterable<{ name: string; metadata: Record<string, string>; createdOn: Date }> {
    await Promise.resolve();
    for (const [name, blob] of this.blobs) {
      if (name.startsWith(prefix)) yield { name, metadata: blob.metadata, createdOn: blob.createdOn };
    }
  }
}

/** In-memory index built from the same row shapes as the Table adapter; writes are atomic. */
export class MemoryInstanceIndex implements InstanceIndex {
  private readonly rows = new Map<string, StoredRow>();
  private readonly pointers = new Map<string, PointerRow>();
  /** The expiry index: study and time, keyed as the Table rows are. */
  private readonly expiries = new Map<string, ExpiryPointer>();
  /** Row writes so far: each write's ETag, unique as Azure's are. */
  private writes = 0;

  /** Every row as the Table adapter would hold it (index rows and search pointers), for bulk loads. */
  tableEntities(): TableEntity[] {
    const index = [...this.rows.values()].map((stored) => {
      const row: Record<string, unknown> = { ...stored };
      delete row['etag'];
      delete row['timestamp'];
      return { ...row, partitionKey: stored.partitionKey ?? '', rowKey: stored.rowKey ?? '' };
    });
    return [...index, ...[...this.pointers.values()].map(pointerEntity)];
  }

  /** Memory holds only pointers this version wrote: all newest first. */
  newestFirstPaths(): Promise<boolean> {
    return Promise.resolve(true);
  }

  async *follow(path: AccessPath): AsyncIterable<SearchPointer> {
    await Promise.resolve();
    const matches = [...this.pointers.values()].filter((row) => pointerMatches(row, path));
    matches.sort((a, b) => compareText(a.partitionKey, b.partitionKey) || compareText(a.rowKey, b.rowKey));
    // The orders of azure-search-paths.ts: the recency shards merged, a name prefix's words merged.
    if (path.kind === 'recent') matches.sort((a, b) => compareText(a.rowKey, b.rowKey));
    const order = (row: PointerRow) => NewestFirstKeys.splitNameWordRow(row.rowKey).order;
    if (path.kind === 'nameToken') matches.sort((a, b) => compareText(order(a), order(b)));
    for (const row of matches) {
      const pointer = searchPointerOf(row, path);
      if (pointer) yield pointer;
    }
  }

  listSeries(studyInstanceUid: string): Promise<SeriesAggregate[]> {
    if (isMarked(this.row(studyInstanceUid, StudyRowKey))) return Promise.resolve([]);
    return Promise.resolve(
      this.range(studyInstanceUid, SeriesRowRange.from, SeriesRowRange.to).filter(isVisible).map(seriesFromEntity),
    );
  }

  listInstances(studyInstanceUid: string, seriesInstanceUid?: string): Promise<InstanceRecord[]> {
    return Promise.resolve(
      this.instanceRows(studyInstanceUid, seriesInstanceUid)
        .filter((row) => !this.hides(row))
        .map(recordFromEntity),
    );
  }

  listForDeletion(studyInstanceUid: string, seriesInstanceUid?: string): Promise<InstanceRecord[]> {
    return Promise.resolve(
      this.instanceRows(studyInstanceUid, seriesInstanceUid)
        .filter((row) => this.hides(row))
        .map(recordFromEntity),
    );
  }

  private instanceRows(studyInstanceUid: string, seriesInstanceUid: string | undefined): StoredRow[] {
    const { from, to } = instanceRowRange(seriesInstanceUid);
    return this.range(studyInstanceUid, from, to);
  }

  /** Whether a deletion mark on its study or series row hides an instance row. */
  private hides(instance: StoredRow): boolean {
    const pk = instance.partitionKey ?? '';
    return isHidden(this.row(pk, StudyRowKey), this.row(pk, seriesRowKey(textOf(instance['SeriesInstanceUID']))));
  }

  private range(partitionKey: string, from: string, to: string): StoredRow[] {
    return [...this.rows.values()]
      .filter((row) => row.partitionKey === partitionKey && (row.rowKey ?? '') >= from && (row.rowKey ?? '') < to)
      .sort((a, b) => compareText(a.rowKey ?? '', b.rowKey ?? ''));
  }

  getInstance(key: InstanceKey): Promise<InstanceRecord | undefined> {
    const row = this.row(key.studyInstanceUid, instanceRowKey(key));
    return Promise.resolve(row && !this.hides(row) ? recordFromEntity(row) : undefined);
  }

  async visibleVersion(key: InstanceKey): Promise<string | undefined> {
    return (await this.getInstance(key))?.version;
  }

  /** Reads live rows: the fake has no ETags to race on, so nothing needs to be read ahead. */
  prepareStudy(studyInstanceUid: string): Promise<StudyWrite> {
    const write: StudyWrite = {
      exists: (key) => {
        const row = this.row(studyInstanceUid, instanceRowKey(key));
        return row !== undefined && !this.hides(row);
      },
      deleting: (key) =>
        isHidden(
          this.row(studyInstanceUid, StudyRowKey),
          this.row(studyInstanceUid, seriesRowKey(key.seriesInstanceUid)),
        ),
      current: (key) => {
        const row = this.row(studyInstanceUid, instanceRowKey(key));
        return row && !this.hides(row) ? storedVersionOf(row) : undefined;
      },
      // Its searches read the rows themselves: there are no pointers to write ahead.
      writeAhead: () => Promise.resolve(),
      add: (records, options) => {
        if (options?.expiresAt) {
          const pointer = { studyInstanceUid, expiresAt: options.expiresAt };
          this.expiries.set(expiryKey(pointer), pointer);
        }
        return Promise.resolve(records.map((record) => this.addNow(record, options)));
      },
    };
    return Promise.resolve(write);
  }

  addInstance(record: InstanceRecord): Promise<AddInstanceOutcome> {
    return addOneInstance(this, record);
  }

  getStudy(studyInstanceUid: string): Promise<StudyAggregate | undefined> {
    const row = this.row(studyInstanceUid, StudyRowKey);
    return Promise.resolve(row && isVisible(row) ? studyFromEntity(row) : undefined);
  }

  studyRevision(studyInstanceUid: string): Promise<string | undefined> {
    return Promise.resolve(this.row(studyInstanceUid, StudyRowKey)?.etag);
  }

  getSeries(studyInstanceUid: string, seriesInstanceUid: string): Promise<SeriesAggregate | undefined> {
    const row = this.row(studyInstanceUid, seriesRowKey(seriesInstanceUid));
    const visible = row && isVisible(row) && !isMarked(this.row(studyInstanceUid, StudyRowKey));
    return Promise.resolve(visible ? seriesFromEntity(row) : undefined);
  }

  isReferenced(key: InstanceKey, version: string): Promise<boolean> {
    return Promise.resolve(this.row(key.studyInstanceUid, instanceRowKey(key))?.['version'] === version);
  }

  /** Adds (or with `replace`, replaces) one instance at once: the fake's writes cannot race. */
  private addNow(record: InstanceRecord, options: StudyAddOptions = {}): AddInstanceOutcome {
    const replace = options.replace === true;
    const pk = record.studyInstanceUid;
    const replacing = this.row(pk, instanceRowKey(record)) !== undefined;
    if (replacing && !replace) return 'exists';
    if (!replacing && options.replaceOnly === true) return 'deleting';
    const series = this.row(pk, seriesRowKey(record.seriesInstanceUid));
    const study = this.row(pk, StudyRowKey);
    if (isHidden(study, series)) return 'deleting';
    for (const pointer of pointerRows(record, study, series, new Date())) {
      this.pointers.set(`${pointer.partitionKey}\n${pointer.rowKey}`, pointer);
    }
    const newSeries = !replacing && isNewSeries(series);
    for (const entity of [
      instanceEntity(record),
      nextSeriesEntity(record, series, replacing),
      { ...nextStudyEntity(record, study, newSeries, replacing), expiresAt: options.expiresAt?.toISOString() },
    ]) {
      this.set(pk, entity);
    }
    return replacing ? 'replaced' : newSeries ? 'added-series' : 'added';
  }

  markDeleting(
    studyInstanceUid: string,
    seriesInstanceUid?: string,
    options: { readonly expiredBy?: Date } = {},
  ): Promise<MarkOutcome> {
    const study = this.row(studyInstanceUid, StudyRowKey);
    const row = seriesInstanceUid ? this.row(studyInstanceUid, seriesRowKey(seriesInstanceUid)) : study;
    if (!row || instanceCount(row) === 0) return Promise.resolve('missing');
    if (isHidden(study, row)) return Promise.resolve('hidden');
    if (options.expiredBy && !isExpiredBy(row, options.expiredBy)) return Promise.resolve('missing');
    this.set(studyInstanceUid, { ...row, partitionKey: studyInstanceUid, rowKey: row.rowKey ?? '', deleting: true });
    return Promise.resolve('marked');
  }

  removeInstances(
    studyInstanceUid: string,
    instances: readonly VersionKey[],
    options: { readonly hiddenOnly?: boolean } = {},
  ): Promise<number> {
    const present = instances
      .map((key) => this.row(studyInstanceUid, instanceRowKey(key)))
      .filter(
        (row, i): row is StoredRow =>
          row !== undefined && row['version'] === instances[i]?.version && (!options.hiddenOnly || this.hides(row)),
      );
    if (present.length === 0) return Promise.resolve(0);
    const plan = planRemoval(
      this.row(studyInstanceUid, StudyRowKey),
      this.range(studyInstanceUid, SeriesRowRange.from, SeriesRowRange.to),
      present,
    );
    for (const row of plan.remove) this.rows.delete(`${studyInstanceUid}\n${row.rowKey ?? ''}`);
    for (const { row } of plan.replace) this.set(studyInstanceUid, row);
    for (const rowKey of plan.empty) this.rows.delete(`${studyInstanceUid}\n${rowKey}`);
    return Promise.resolve(present.length);
  }

  dropEmpty(studyInstanceUid: string, seriesInstanceUid?: string): Promise<void> {
    const rows = seriesInstanceUid
      ? [this.row(studyInstanceUid, seriesRowKey(seriesInstanceUid))]
      : this.range(studyInstanceUid, SeriesRowRange.from, SeriesRowRange.to);
    for (const row of [...rows, this.row(studyInstanceUid, StudyRowKey)]) {
      if (row && instanceCount(row) === 0) this.rows.delete(`${studyInstanceUid}\n${row.rowKey ?? ''}`);
    }
    return Promise.resolve();
  }

  async *expiredBy(now: Date): AsyncIterable<ExpiryPointer> {
    await Promise.resolve();
    const due = [...this.expiries.values()].filter((pointer) => pointer.expiresAt <= now);
    yield* due.sort((a, b) => a.expiresAt.getTime() - b.expiresAt.getTime());
  }

  dropExpiry(pointer: ExpiryPointer): Promise<void> {
    this.expiries.delete(expiryKey(pointer));
    return Promise.resolve();
  }

  private set(partitionKey: string, entity: TableEntity): void {
    this.writes += 1;
    this.rows.set(`${partitionKey}\n${entity.rowKey}`, { ...entity, etag: `W/"${this.writes}"` });
  }

  private row(partitionKey: string, rowKey: string): StoredRow | undefined {
    return this.rows.get(`${partitionKey}\n${rowKey}`);
  }
}

function expiryKey(pointer: ExpiryPointer): string {
  return `${ExpiryKeys.partition(pointer.expiresAt)}\n${ExpiryKeys.row(pointer.expiresAt, pointer.studyInstanceUid)}`;
}

/** The same key predicates as the Table queries of azure-search-paths.ts. */
function pointerMatches(row: PointerRow, path: AccessPath): boolean {
  switch (path.kind) {
    case 'patientId':
      return row.partitionKey === AccessPathKeys.patientId(path.value);
    case 'accession':
      return row.partitionKey === AccessPathKeys.accession(path.value);
    case 'series':
      return row.partitionKey === AccessPathKeys.series(path.seriesInstanceUid);
    case 'sop': {
      const { from, to } = SopPointerKeys.rows(path.sopInstanceUid);
      return (
        row.partitionKey === SopPointerKeys.partition(path.sopInstanceUid) && row.rowKey >= from && row.rowKey < to
      );
    }
    case 'modality':
      return row.partitionKey === NewestFirstKeys.modality(path.value);
    case 'studyDates':
      return row.partitionKey >= NewestFirstKeys.day(path.to) && row.partitionKey <= NewestFirstKeys.day(path.from);
    case 'nameToken': {
      const { from, to } = path.whole
        ? NewestFirstKeys.nameWordRows(path.prefix)
        : AccessPathKeys.nameTokenRows(path.prefix);
      return row.partitionKey === NewestFirstKeys.nameWord(path.prefix) && row.rowKey >= from && row.rowKey < to;
    }
    case 'recent':
      return RECENT_SHARDS.some((shard) => row.partitionKey === AccessPathKeys.recent(shard));
  }
}

export class MemoryPendingBlobs implements PendingBlobs {
  readonly notes = new Map<string, PendingBlob>();

  /** Keyed as in the Table adapter: partition (hour and group) and row, a version's delete note apart from its store note. */
  add(pending: PendingBlob): Promise<void> {
    const key = memoryNoteKey(pending);
    // As createEntity on Azure: a store note's version is new, so finding it is a bug.
    if ((pending.kind ?? 'store') === 'store' && this.notes.has(key)) throw new Error(`pending note ${key} exists`);
    this.notes.set(key, pending);
    return Promise.resolve();
  }

  async addAll(notes: readonly PendingBlob[]): Promise<void> {
    for (const note of notes) await this.add(note);
  }

  remove(pending: PendingBlob): Promise<void> {
    this.notes.delete(memoryNoteKey(pending));
    return Promise.resolve();
  }

  removeAll(notes: readonly PendingBlob[]): Promise<void> {
    for (const note of notes) this.notes.delete(memoryNoteKey(note));
    return Promise.resolve();
  }

  async *olderThan(cutoff: Date): AsyncIterable<PendingBlob> {
    await Promise.resolve();
    const old = [...this.notes.values()].filter((note) => note.createdAt < cutoff);
    yield* old.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }
}

function memoryNoteKey(note: PendingBlob): string {
  return `${pendingPartitionKey(note.createdAt, note.version, note.group)}\n${pendingRowKey(note)}`;
}

/** The change feed in memory: the same ordering and duplicate rules as the Table adapter. */
export class MemoryChangeFeed implements ChangeFeedStore {
  readonly entries: ChangeEntry[] = [];

  append(changes: readonly ChangeInput[]): Promise<ChangeEntry[]> {
    const last = this.entries.at(-1);
    const now = new Date().toISOString();
    const timestamp = last && last.timestamp > now ? last.timestamp : now;
    const added: ChangeEntry[] = [];
    for (const change of changes) {
      if (this.entries.some((entry) => entry.action === change.action && entry.version === change.version)) continue;
      const entry = { ...change, sequence: this.entries.length + 1, timestamp };
      this.entries.push(entry);
      added.push(entry);
    }
    return Promise.resolve(added);
  }

  has(action: ChangeAction, version: string): Promise<boolean> {
    return Promise.resolve(this.entries.some((entry) => entry.action === action && entry.version === version));
  }

  logged(action: ChangeAction, versions: readonly string[]): Promise<Set<string>> {
    const asked = new Set(versions);
    return Promise.resolve(
      new Set(
        this.entries.filter((entry) => entry.action === action && asked.has(entry.version)).map((e) => e.version),
      ),
    );
  }

  after(sequence: number, limit: number): Promise<ChangeEntry[]> {
    return Promise.resolve(this.entries.filter((entry) => entry.sequence > sequence).slice(0, limit));
  }

  window(start: Date, end: Date, offset: number, limit: number): Promise<ChangeEntry[]> {
    const from = start.toISOString();
    const to = end.toISOString();
    const inside = this.entries.filter((entry) => entry.timestamp >= from && entry.timestamp < to);
    return Promise.resolve(inside.slice(offset, offset + limit));
  }

  latest(): Promise<ChangeEntry | undefined> {
    return Promise.resolve(this.entries.at(-1));
  }
}

export type MemoryStorage = Storage & {
  blobs: MemoryBlobStore;
  index: MemoryInstanceIndex;
  pending: MemoryPendingBlobs;
  changeFeed: MemoryChangeFeed;
  operations: MemoryOperations;
};

export function createMemoryStorage(): MemoryStorage {
  return {
    blobs: new MemoryBlobStore(),
    index: new MemoryInstanceIndex(),
    pending: new MemoryPendingBlobs(),
    changeFeed: new MemoryChangeFeed(),
    operations: new MemoryOperations(),
  };
}
