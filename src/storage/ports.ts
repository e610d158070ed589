/**
 * The storage the DICOMweb transactions need, defined by them and implemented by the Azure
 * adapters and the in-memory fakes. Every method may throw StorageUnavailableError.
 */

/** Storage cannot be reached or answered with a server error: the request is retried later (503). */
export class StorageUnavailableError extends Error {
  override readonly name = 'StorageUnavailableError';
}

/** A blob being written. Nothing is visible under its name until commit() returns. */
export interface BlobUpload {
  /** Appends bytes; resolves when the caller may send more (backpressure). */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Bytes held in memory rather than sent: a blob smaller than one block is kept whole until it
   * is committed (then one Put Blob instead of a block and a block list) or released.
   */
  readonly held: number;
  /** Sends the held bytes as staged (still invisible) data, so they no longer take memory. */
  release(): Promise<void>;
  /** Makes the blob visible with all bytes written so far; returns its size in bytes. */
  commit(metadata: Record<string, string>): Promise<number>;
  /** Abandons the upload; staged bytes are discarded and nothing becomes visible. */
  abort(): Promise<void>;
}

/** The most bytes one append may add (Azure's append block limit). */
export const APPEND_BLOCK_LIMIT = 4 * 1024 * 1024;

/** A byte range of a blob: `count` bytes from `offset`. */
export interface ByteRange {
  readonly offset: number;
  readonly count: number;
}

/** A blob whose download has started (BlobStore.open). */
export interface OpenedBlob {
  readonly chunks: AsyncGenerator<Uint8Array, void, undefined>;
  readonly cancel: () => void;
}

export interface BlobStore {
  beginUpload(name: string, contentType: string): BlobUpload;
  /**
   * Streams a committed blob, or a range of it. The download stops when `signal` aborts (the
   * client went away), so an abandoned retrieve costs no more bandwidth.
   */
  read(name: string, range?: ByteRange, signal?: AbortSignal): AsyncIterable<Uint8Array>;
  /**
   * Starts streaming a whole blob; undefined when it does not exist. The caller reads `chunks` to
   * the end or calls `cancel()`, which ends the download (an unread download holds a connection).
   */
  open(name: string, signal?: AbortSignal): Promise<OpenedBlob | undefined>;
  /** A small blob read whole (sidecar metadata); undefined when missing. */
  readSmall(name: string): Promise<Uint8Array | undefined>;
  /**
   * Appends bytes (at most APPEND_BLOCK_LIMIT) to an append blob as one atomic block, creating it
   * when missing; concurrent appends never interleave within a block. `likelyNew` (the caller has
   * just created what the blob belongs to) creates the blob first unless it exists, sparing the
   * append that would find it missing; a blob that exists is never replaced either way.
   */
  append(
    name: string,
    bytes: Uint8Array,
    contentType: string,
    options?: { readonly likelyNew?: boolean },
  ): Promise<void>;
  /** Writes a small blob in one request (sidecar metadata). */
  writeSmall(name: string, bytes: Uint8Array, contentType: string, metadata: Record<string, string>): Promise<void>;
  /** Deletes a blob; a missing blob is not an error. */
  delete(name: string): Promise<void>;
  /**
   * Deletes many blobs in few round trips (Blob Batch on Azure: up to 256 per request); missing
   * blobs are not errors.
   */
  deleteMany(names: readonly string[]): Promise<void>;
  /** Names and metadata of committed blobs under a prefix, for cleanup and tests. */
  list(prefix: string): AsyncIterable<{ name: string; metadata: Record<string, string>; createdOn: Date }>;
}

/** What the index holds of one stored instance. */
export interface InstanceRecord {
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly sopInstanceUid: string;
  readonly sopClassUid: string;
  /** Server-assigned, unique for each stored copy; names the blob. */
  readonly version: string;
  readonly blobName: string;
  readonly transferSyntaxUid: string;
  readonly size: number;
  readonly storedAt: string;
  /** Byte offset and length of the Pixel Data value (length -1 when encapsulated). */
  readonly pixelDataOffset?: number | undefined;
  readonly pixelDataLength?: number | undefined;
  readonly numberOfFrames?: number | undefined;
  /** Searchable attributes by keyword, as decoded text. */
  readonly study: Readonly<Record<string, string>>;
  readonly series: Readonly<Record<string, string>>;
  readonly instance: Readonly<Record<string, string>>;
  /**
   * The instance's sidecar (metadata and frame table), compressed, when it is kept in the index
   * row (at most INLINE_SIDECAR_LIMIT bytes); otherwise it is a blob beside the instance.
   */
  readonly inlineSidecar?: Uint8Array | undefined;
  /** The version an upsert replaced with this one (its change feed entry is then `update`). */
  readonly replaces?: string | undefined;
  /**
   * SHA-256 of the stored bytes (base64), recorded when the duplicate policy is
   * 'accept-identical', so a byte-identical re-send is known without reading the blob.
   */
  readonly sha256?: string | undefined;
  /**
   * The blob of the instance as first stored, kept when a bulk update wrote a new version
   * (retrieved with `msdicom-request-original: true`) until the instance is deleted.
   */
  readonly originalBlobName?: string | undefined;
  /** The bulk update operation that wrote this version (a resumed operation skips it). */
  readonly updatedBy?: string | undefined;
}

/**
 * The largest compressed sidecar kept in an index row: three binary properties below Table
 * Storage's 64 KiB each, a fifth of its 1 MiB entity limit. Typical CT or MR headers compress to
 * a few KiB; enhanced multi-frame headers with large per-frame sequences go to a blob.
 */
export const INLINE_SIDECAR_LIMIT = 3 * 64_000;

export interface InstanceKey {
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly sopInstanceUid: string;
}

/**
 * 'added-series': added, and this call created the series row (a new series, or one left at zero
 * instances counted afresh). 'replaced': an upsert replaced the version it was prepared against.
 * 'deleting': the study or series is marked for deletion; the index is unchanged.
 */
export type AddInstanceOutcome = 'added' | 'added-series' | 'replaced' | 'exists' | 'deleting';

/** AddInstanceOutcome, or 'unavailable': storage failed before the record's addition was confirmed. */
export type StudyAddOutcome = AddInstanceOutcome | 'unavailable';

export interface StudyAggregate {
  readonly studyInstanceUid: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly numberOfSeries: number;
  readonly numberOfInstances: number;
  readonly modalities: readonly string[];
  /** When the study's first instance was stored (ISO 8601); results are ordered newest first. */
  readonly createdAt: string;
}

export interface SeriesAggregate {
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly numberOfInstances: number;
  readonly createdAt: string;
}

/** Where a search pointer leads: a study, and for series and instance paths the rest of the key. */
export interface SearchPointer {
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid?: string | undefined;
  readonly sopInstanceUid?: string | undefined;
  /** The value the path is sorted by (StudyDate for the date path), for ordering. */
  readonly sortKey?: string | undefined;
  /** The study's createdAt when the pointer was written (absent on rows from older versions). */
  readonly createdAt?: string | undefined;
  /** Study attributes the pointer was written for (PatientName on name-word pointers). */
  readonly attributes?: Readonly<Record<string, string>> | undefined;
}

/** The access paths search can follow (docs/storage.md "Access paths for search"). */
export type AccessPath =
  | { readonly kind: 'patientId'; readonly value: string }
  | { readonly kind: 'accession'; readonly value: string }
  /**
   * Studies with a PatientName word starting with `prefix` (folded, see foldName), or with
   * `whole`, that word itself. `wanted` (here and below) hints how many the caller expects to need.
   */
  | {
      readonly kind: 'nameToken';
      readonly prefix: string;
      readonly whole?: boolean;
      readonly wanted?: number | undefined;
    }
  /** StudyDate from `from` to `to` (YYYYMMDD, inclusive); pointers carry the date as sortKey. */
  | { readonly kind: 'studyDates'; readonly from: string; readonly to: string; readonly wanted?: number | undefined }
  /** All studies, newest first; `wanted` hints how many the caller expects to need (the first page size). */
  | { readonly kind: 'recent'; readonly wanted?: number | undefined }
  | { readonly kind: 'series'; readonly seriesInstanceUid: string }
  | { readonly kind: 'sop'; readonly sopInstanceUid: string }
  | { readonly kind: 'modality'; readonly value: string; readonly wanted?: number | undefined };

/**
 * What a delete's mark did: 'marked' hid the study or series (this caller's delete takes effect
 * now), 'hidden' found it already hidden by another delete's mark, 'missing' found nothing stored.
 */
export type MarkOutcome = 'marked' | 'hidden' | 'missing';

/** An instance row as one stored version: removals only remove that version. */
export type VersionKey = InstanceKey & { readonly version: string };

/**
 * Visibility, the same for every reader (docs/storage.md "What a concurrent reader sees"): an
 * instance is visible when its row exists and neither its study row nor its series row carries a
 * deletion mark; a study or series when its row exists, has instances and neither it nor (for a
 * series) its study row is marked.
 */
export interface InstanceIndex {
  /** A visible instance (three point reads in parallel: instance, series and study rows). */
  getInstance(key: InstanceKey): Promise<InstanceRecord | undefined>;
  /**
   * The version of a visible instance, by the same rule and the same three point reads, each
   * asking only for the property it needs: a frame read started from what this process remembers
   * of a version is served only when this answers that version.
   */
  visibleVersion(key: InstanceKey): Promise<string | undefined>;
  /**
   * Reads what a request's instances of one study need before their blobs are committed (the
   * study row, their series rows and, for series that already have instances, their instance
   * rows: a few queries, not one read per instance), so re-sends and deletions in progress are
   * known before anything is written. The returned write adds the rest.
   */
  prepareStudy(studyInstanceUid: string, keys: readonly InstanceKey[]): Promise<StudyWrite>;
  /**
   * Adds one instance (prepareStudy and add in one call).
   * 'exists' when the SOP Instance UID is already stored in that study and series, 'deleting' when
   * the study or series is being deleted: in both cases the index is unchanged.
   */
  addInstance(record: InstanceRecord): Promise<AddInstanceOutcome>;
  getStudy(studyInstanceUid: string): Promise<StudyAggregate | undefined>;
  /**
   * A token that changes whenever anything of the study changes (every store, removal and mark
   * rewrites its study row: the row's ETag), marked or not; undefined when it has no study row.
   * One point read.
   */
  studyRevision(studyInstanceUid: string): Promise<string | undefined>;
  getSeries(studyInstanceUid: string, seriesInstanceUid: string): Promise<SeriesAggregate | undefined>;
  /** True when the index row of this instance refers to exactly this stored version, marked or not. */
  isReferenced(key: InstanceKey, version: string): Promise<boolean>;
  /**
   * Pointers along one access path. They may be stale (an attribute changed since) or early (a
   * store still in progress): search checks each against the study partition. The recent path
   * yields newest studies first; so do the name-word and modality paths, and the StudyDate path
   * latest day first, when newestFirstPaths() says so; the others in key order.
   */
  follow(path: AccessPath): AsyncIterable<SearchPointer>;
  /**
   * True when the name-word, StudyDate and modality paths stream in result order (every pointer
   * has its newest-first form: docs/storage.md "Access paths for search"); false while an archive
   * written by an older version awaits its migration, when they are read whole.
   */
  newestFirstPaths(): Promise<boolean>;
  /** The visible series of a study. */
  listSeries(studyInstanceUid: string): Promise<SeriesAggregate[]>;
  /** Visible instances of a study, or of one series of it. */
  listInstances(studyInstanceUid: string, seriesInstanceUid?: string): Promise<InstanceRecord[]>;
  /**
   * Marks a study or one series as being deleted, conditionally on the row's ETag, so exactly one
   * of several concurrent deletes gets 'marked'. From then on readers do not see it and no store
   * into it commits (addInstance answers 'deleting') until the delete has dropped its rows. With
   * `expiredBy` (a study's expiry), only a study whose row carries an expiry time at or before it
   * is marked, still conditionally on the ETag read; any other is 'missing'.
   */
  markDeleting(
    studyInstanceUid: string,
    seriesInstanceUid?: string,
    options?: { readonly expiredBy?: Date },
  ): Promise<MarkOutcome>;
  /**
   * Expiry index rows whose time is at or before `now` (docs/storage.md "Study expiry"): one key
   * range over the expiry partitions up to `now`'s hour, whatever the size of the archive. A row
   * may be stale (the study was stored again without or with another expiry, or deleted): the
   * caller checks the study row (markDeleting with `expiredBy`).
   */
  expiredBy(now: Date): AsyncIterable<ExpiryPointer>;
  /** Removes a handled expiry index row; one already gone is not an error. */
  dropExpiry(pointer: ExpiryPointer): Promise<void>;
  /** Instance rows of a study (or series) that a deletion mark hides: what a delete still has to remove. */
  listForDeletion(studyInstanceUid: string, seriesInstanceUid?: string): Promise<InstanceRecord[]>;
  /**
   * Removes instance rows of one study (at most REMOVE_BATCH), each only while it still holds the
   * given version, and with `hiddenOnly` only while a deletion mark hides it; updates the series
   * and study rows in the same atomic step (retried on ETag conflicts). Rows already gone are
   * skipped. Returns how many rows this call removed.
   */
  removeInstances(
    studyInstanceUid: string,
    instances: readonly VersionKey[],
    options?: { readonly hiddenOnly?: boolean },
  ): Promise<number>;
  /**
   * The last step of a study or series delete: drops its rows left with no instance (series rows
   * first, the study row last, each conditionally on its ETag), so the mark goes with them and the
   * UIDs can be stored again. Rows a later store has filled again stay.
   */
  dropEmpty(studyInstanceUid: string, seriesInstanceUid?: string): Promise<void>;
}

/** One study's share of a STOW request, between InstanceIndex.prepareStudy and its index rows. */
export interface StudyWrite {
  /** Whether a visible instance is stored under this key (a re-send: 45070). */
  exists(key: InstanceKey): boolean;
  /** Whether a deletion mark hides the study or the key's series: nothing can be stored into it now. */
  deleting(key: InstanceKey): boolean;
  /** The stored version of a visible instance under this key (what an upsert replaces), as read. */
  current(key: InstanceKey): StoredVersion | undefined;
  /**
   * Adds the instances (all of this study, none a re-send found by `exists`, no SOP Instance UID
   * twice) with their search pointers, and updates their series and study rows: the fewest
   * entity-group transactions that fit Table Storage's limits (up to about 95 instances each),
   * each atomic and conditional on the rows it replaces, retried when a concurrent writer wins.
   * One outcome per record, in order; a record that lost to a concurrent store of the same
   * instance is 'exists', one a deletion mark now hides is 'deleting', and 'unavailable' one
   * whose transaction storage failed to confirm (it may or may not be in the index).
   *
   * With `replace` (PUT upsert), a record whose instance `current` showed replaces that version in
   * the same transaction instead (its instance row replaced conditionally on its ETag, the counts
   * unchanged): 'replaced'. If the row holds another version by then (a concurrent store), the
   * record is 'exists'; if it is gone (a concurrent delete), the record is added afresh.
   */
  add(records: readonly InstanceRecord[], options?: StudyAddOptions): Promise<StudyAddOutcome[]>;
  /**
   * Writes now what `add` would write before its first transaction (search pointers, the expiry
   * row), so that it can run beside the blob commits instead of after them. Optional to await
   * for correctness: `add` writes whatever is still missing, and a storage failure here is left
   * for `add` to meet and report.
   */
  writeAhead(records: readonly Omit<InstanceRecord, 'size'>[], options?: StudyAddOptions): Promise<void>;
}

export interface StudyAddOptions {
  /** PUT upsert: replace the versions `current` showed (see add). */
  readonly replace?: boolean | undefined;
  /**
   * Bulk update: with `replace`, never add. A record whose instance row is gone by the time it is
   * written (a concurrent delete) is 'deleting', so an update cannot bring a deleted instance back.
   */
  readonly replaceOnly?: boolean | undefined;
  /**
   * The study's expiry (msdicom-expiry headers): kept in the study row, with an expiry index row
   * written first. Without it the study row has none: as on the Azure service, the last store
   * into a study decides, and one without expiry headers cancels an earlier expiry.
   */
  readonly expiresAt?: Date | undefined;
}

/** One stored version of an instance: what its blobs are named after. */
/** An expiry index row: a study that expires at `expiresAt` (unless a later store changed that). */
export interface ExpiryPointer {
  readonly studyInstanceUid: string;
  readonly expiresAt: Date;
}

export interface StoredVersion {
  readonly version: string;
  readonly blobName: string;
  /** InstanceRecord.sha256, when it was recorded. */
  readonly sha256?: string | undefined;
  readonly originalBlobName?: string | undefined;
  readonly updatedBy?: string | undefined;
}

/** Instance rows removed per transaction: with their series and study rows, within 100 operations. */
export const REMOVE_BATCH = 48;

/**
 * A note written just before an instance's blob is committed and removed once its index rows
 * are: whatever a crash leaves between the two steps, the sweep finds here and cleans.
 */
export interface PendingBlob {
  /**
   * A store in progress (the default), a delete whose blobs and change feed entry may still be
   * due, or a version an upsert replaces: its blobs go once the index no longer refers to it.
   */
  readonly kind?: PendingKind | undefined;
  readonly key: InstanceKey;
  readonly version: string;
  readonly blobName: string;
  readonly createdAt: Date;
  /**
   * One lower-case hex digit naming the shard of the note's partition, so that the notes of one
   * request or delete batch share a partition and are written (addAll) and removed (removeAll) in
   * one transaction; without it the shard is the version's last digit. A note is always removed
   * with the group it was written with (olderThan gives it back).
   */
  readonly group?: string | undefined;
  /** A delete note's original blob (InstanceRecord.originalBlobName), deleted with the version. */
  readonly originalBlobName?: string | undefined;
  /** A store note's change feed action, when not `create` (an upsert that replaces a version). */
  readonly action?: ChangeAction | undefined;
}

export type PendingKind = 'store' | 'delete' | 'replace';

export interface PendingBlobs {
  /**
   * Records a note. A version's delete note is kept apart from its store note, and adding it
   * again (concurrent deletes of one instance) is not an error: they share it.
   */
  add(pending: PendingBlob): Promise<void>;
  /**
   * Records many notes in few round trips: one entity-group transaction per note partition (at
   * most 100 notes each), a note alone in its partition in a plain write. As with add, a delete
   * note already there is shared; a store note already there is a bug and throws.
   */
  addAll(notes: readonly PendingBlob[]): Promise<void>;
  remove(pending: PendingBlob): Promise<void>;
  /**
   * Removes many notes (those of one request or one delete batch) in few round trips: one
   * entity-group transaction per note partition. A note already gone is not an error.
   */
  removeAll(notes: readonly PendingBlob[]): Promise<void>;
  /** Notes written before `cutoff`, oldest first. */
  olderThan(cutoff: Date): AsyncIterable<PendingBlob>;
}

/** `update`: an upsert (PUT) replaced the instance's stored version with this one. */
export type ChangeAction = 'create' | 'update' | 'delete';

export interface ChangeInput {
  readonly action: ChangeAction;
  readonly key: InstanceKey;
  /** The stored version the change is about. */
  readonly version: string;
}

export interface ChangeEntry extends ChangeInput {
  /** Strictly increasing, without gaps. */
  readonly sequence: number;
  /** ISO 8601 UTC; never decreases as the sequence grows. */
  readonly timestamp: string;
}

/**
 * The change feed: an append-only log whose entries commit in sequence order, so a reader
 * paging forward by sequence never misses one that commits later.
 */
export interface ChangeFeedStore {
  /**
   * Appends the changes in order. A change already logged (the same action on the same version,
   * by this or a concurrent append) is dropped, so appends are idempotent; resolves to the entries
   * of this call's changes.
   */
  append(changes: readonly ChangeInput[]): Promise<ChangeEntry[]>;
  /** Whether the log has an entry for this action on this version (for completing interrupted work). */
  has(action: ChangeAction, version: string): Promise<boolean>;
  /**
   * Which of these versions the log has an entry for with this action (a delete's check for
   * missing `create` entries): a few queries for many versions, not one read each.
   */
  logged(action: ChangeAction, versions: readonly string[]): Promise<Set<string>>;
  /** Entries with a sequence above `sequence`, in order, at most `limit`. */
  after(sequence: number, limit: number): Promise<ChangeEntry[]>;
  /** Entries with start <= timestamp < end, in order, skipping `offset`, at most `limit`. */
  window(start: Date, end: Date, offset: number, limit: number): Promise<ChangeEntry[]>;
  latest(): Promise<ChangeEntry | undefined>;
}

/** An upload session (docs/conformance.md "Upload sessions"): one staging blob a client writes directly. */
export interface UploadSessionRecord {
  readonly id: string;
  /** The staging blob the session's URL may write. */
  readonly blobName: string;
  readonly createdAt: Date;
  /** The session and its URL end here; the sweep removes the session and its blocks after it. */
  readonly expiresAt: Date;
  /** What the client announced; the commit refuses bytes that differ. */
  readonly size?: number | undefined;
  readonly sha256?: string | undefined;
  /** The study the instance must belong to (like `POST /studies/{study}`). */
  readonly studyInstanceUid?: string | undefined;
}

export interface UploadSessionStore {
  create(session: UploadSessionRecord): Promise<void>;
  get(id: string): Promise<UploadSessionRecord | undefined>;
  /** Removes the record; false when it was already gone (another commit or the sweep won). */
  remove(id: string): Promise<boolean>;
  /** Sessions whose expiry is before `now` (open sessions are few: one partition). */
  expired(now: Date): AsyncIterable<UploadSessionRecord>;
}

/** A block a client staged but has not committed. */
export interface StagedBlock {
  readonly id: string;
  readonly size: number;
}

/**
 * What a staging blob holds: its committed content (if any; `blocks` empty when it was written
 * whole by one Put Blob) and the blocks staged since.
 */
export interface StagingBlobState {
  readonly committed: { readonly size: number; readonly blocks: readonly StagedBlock[] } | undefined;
  readonly uncommitted: readonly StagedBlock[];
}

/** A staging blob's content at one moment (a snapshot). */
export interface FrozenBlob {
  readonly name: string;
  readonly snapshot: string;
  readonly size: number;
}

/** The storage side of upload sessions: URLs clients write to, and copies made by the storage service. */
export interface SessionBlobs {
  /**
   * A URL whose holder may stage blocks and commit the one blob `name` until `expiresAt`, and do
   * nothing else (no read, no list, no other blob).
   */
  uploadUrl(name: string, expiresAt: Date): Promise<string>;
  inspect(name: string): Promise<StagingBlobState>;
  /** Commits the given staged blocks, in order, as the blob's content. */
  commitBlocks(name: string, blockIds: readonly string[]): Promise<void>;
  /**
   * Freezes the blob's committed content as a snapshot, so what is validated is exactly what is
   * copied, whatever the URL's holder writes meanwhile.
   */
  freeze(name: string): Promise<FrozenBlob>;
  read(frozen: FrozenBlob): AsyncIterable<Uint8Array>;
  /**
   * An upload of `target` whose bytes the storage service copies from `source` instead of
   * receiving them: writes only count the bytes (the caller reads the same bytes to validate
   * them), so the instance crosses the app's network once, not twice.
   */
  beginCopy(target: string, source: FrozenBlob, contentType: string): BlobUpload;
  /** Removes the blob, its snapshots and its staged blocks. */
  discard(name: string): Promise<void>;
}

export interface Storage {
  readonly blobs: BlobStore;
  readonly index: InstanceIndex;
  readonly pending: PendingBlobs;
  readonly changeFeed: ChangeFeedStore;
  /** Upload sessions, where the storage service can hand out upload URLs (Azure and Azurite). */
  readonly sessions?: { readonly records: UploadSessionStore; readonly blobs: SessionBlobs } | undefined;
  /** Long-running operations (bulk update); absent in adapters that do not keep them. */
  readonly operations?: OperationStore | undefined;
  /** The queue that starts each operation's worker; absent: the workers find operations by polling. */
  readonly operationQueue?: OperationQueue | undefined;
}

/**
 * A storage queue of operation ids (docs/storage.md "Operations"): one message per operation
 * started, consumed by the Functions queue trigger in Azure and by the local host's poller.
 */
export interface OperationQueue {
  readonly name: string;
  send(operationId: string): Promise<void>;
  /** Up to `count` messages, each hidden from other receivers for `visibilityMs`. */
  receive(count: number, visibilityMs: number): Promise<ReceivedOperationMessage[]>;
}

export interface ReceivedOperationMessage {
  /** The operation id the message names; undefined when the message is not one this app writes. */
  readonly operationId: string | undefined;
  /** How many times the message has been received, this time included. */
  readonly dequeueCount: number;
  /** Removes it: its operation is finished or needs no worker. */
  complete(): Promise<void>;
  /** Hides it for `visibilityMs` more (a worker still on it, or a retry later). */
  hide(visibilityMs: number): Promise<void>;
  /** Moves it to the poison queue, `{name}-poison`, and removes it from this one. */
  poison(): Promise<void>;
}

/** An operation's state, as the Azure service names it in the operation status. */
export type OperationStatus = 'notStarted' | 'running' | 'completed' | 'failed';

/** One attribute a bulk update sets: its tag (eight hex digits), VR and value as DICOM text. */
export interface AttributeChange {
  readonly tag: string;
  readonly vr: string;
  readonly value: string;
}

/**
 * A bulk update operation (docs/storage.md "Operations"): what it changes, how far it has got
 * (studies done, and instances done in the study under way), and the lease of the worker on it.
 */
export interface OperationRecord {
  readonly id: string;
  readonly type: 'update';
  readonly status: OperationStatus;
  /** ISO 8601 UTC. */
  readonly createdTime: string;
  readonly lastUpdatedTime: string;
  readonly studyInstanceUids: readonly string[];
  readonly changes: readonly AttributeChange[];
  /** Studies finished, in the order of studyInstanceUids. */
  readonly studiesDone: number;
  /** Of the study under way: instances handled, how many it has, and how many this operation wrote. */
  readonly studyProgress: { readonly done: number; readonly total: number; readonly updated: number };
  readonly studiesUpdated: number;
  readonly instancesUpdated: number;
  readonly errors: readonly string[];
  /** The worker holding the lease, '' when none does; milliseconds since the epoch it lapses. */
  readonly owner: string;
  readonly leaseUntil: number;
}

export interface StoredOperation extends OperationRecord {
  readonly etag: string;
}

export interface OperationStore {
  create(operation: OperationRecord): Promise<void>;
  get(id: string): Promise<StoredOperation | undefined>;
  /** Replaces it only if unchanged since `etag`; the new etag, or undefined when another writer won. */
  update(operation: OperationRecord, etag: string): Promise<string | undefined>;
  /** Operations not finished yet (notStarted or running), oldest first. */
  unfinished(): Promise<StoredOperation[]>;
}

/**
 * Where an event publisher has got to in the change feed, and who may move it on: a lease (owner
 * and expiry) taken before publishing, so that of several publishers one publishes at a time.
 */
export interface EventCheckpoint {
  /** The last change feed sequence whose event the sink accepted (0: none yet). */
  readonly sequence: number;
  /** The publisher holding the lease, '' when none does. */
  readonly owner: string;
  /** Milliseconds since the epoch when the lease lapses (0: no lease). */
  readonly leaseUntil: number;
}

/** A checkpoint with the token that a conditional write must present (undefined: not written yet). */
export interface StoredEventCheckpoint extends EventCheckpoint {
  readonly etag: string | undefined;
}

export interface EventCheckpointStore {
  /** The checkpoint named `name`; a new one ({ sequence: 0, no lease, etag undefined }) when missing. */
  read(name: string): Promise<StoredEventCheckpoint>;
  /**
   * Writes it only if it is unchanged since `etag` was read (undefined: only if it does not exist
   * yet). Resolves to the new etag, or undefined when another writer changed it first.
   */
  write(name: string, checkpoint: EventCheckpoint, etag: string | undefined): Promise<string | undefined>;
}
