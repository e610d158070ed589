import { randomBytes } from 'node:crypto';
import type { InstanceKey, PendingBlob, PendingKind } from './ports.js';

/**
 * The one place that knows blob names and table keys. Every UID reaching here has passed
 * isValidUid (digits and dots only), so none can contain a key's forbidden characters
 * (`/ \ # ?`) or climb out of its blob prefix.
 *
 * Index table layout (docs/storage.md): one partition per study, so a study's rows commit
 * together in one entity-group transaction and a study or series is one partition range query.
 *   study row     PK = StudyInstanceUID  RK = "study"
 *   series row    PK = StudyInstanceUID  RK = "series|{SeriesInstanceUID}"
 *   instance row  PK = StudyInstanceUID  RK = "instance|{SeriesInstanceUID}|{SOPInstanceUID}"
 */
export const StudyRowKey = 'study';

/** Above every row key of a study partition: "instance|…" < "series|…" < "study" < "study|". */
export const StudyPartitionEnd = `${StudyRowKey}|`;

export function seriesRowKey(seriesInstanceUid: string): string {
  return `series|${seriesInstanceUid}`;
}

export function instanceRowKey(key: Pick<InstanceKey, 'seriesInstanceUid' | 'sopInstanceUid'>): string {
  return `instance|${key.seriesInstanceUid}|${key.sopInstanceUid}`;
}

/** Row-key range of the instance rows of a series, or of the whole study ("|" + 1 is "}"). */
export function instanceRowRange(seriesInstanceUid?: string): { from: string; to: string } {
  return seriesInstanceUid
    ? { from: `instance|${seriesInstanceUid}|`, to: `instance|${seriesInstanceUid}}` }
    : { from: 'instance|', to: 'instance}' };
}

/** Row-key range of all series rows of a study. */
export const SeriesRowRange = { from: 'series|', to: 'series}' } as const;

/**
 * A new version id: milliseconds since the epoch (sortable, so the newest copy is last) and
 * 48 random bits, so concurrent writers of one SOP instance never share a blob name.
 */
export function newVersion(now = Date.now()): string {
  return `${now.toString(36).padStart(9, '0')}${randomBytes(6).toString('hex')}`;
}

/** Instances live under their study and series, so a study's blobs are one prefix. */
export function instanceBlobName(key: InstanceKey, version: string): string {
  return `${key.studyInstanceUid}/${key.seriesInstanceUid}/${key.sopInstanceUid}/${version}.dcm`;
}

/** Whether a blob in the container is an instance (not a sidecar or a series metadata log). */
export function isInstanceBlobName(name: string): boolean {
  return name.endsWith('.dcm');
}

/** The sidecar (metadata JSON and frame table) stored beside an instance blob. */
export function sidecarBlobName(instanceBlob: string): string {
  return instanceBlob.replace(/\.dcm$/, '.json');
}

/**
 * The series metadata log: an append blob with one line per stored instance version (its
 * metadata JSON), so study and series metadata are a few blob reads, not one per instance. A
 * UID never contains letters, so this name cannot collide with an instance's folder.
 */
export function seriesMetadataLogName(studyInstanceUid: string, seriesInstanceUid: string): string {
  return `${studyInstanceUid}/${seriesInstanceUid}/metadata.log`;
}

/** The cached metadata response of a study, or of one series of it (src/dicomweb/metadata-document.ts). */
export function metadataDocumentName(studyInstanceUid: string, seriesInstanceUid?: string): string {
  return seriesInstanceUid
    ? `${studyInstanceUid}/${seriesInstanceUid}/metadata.json`
    : `${studyInstanceUid}/metadata.json`;
}

/** Blob metadata that lets the orphan sweeper find the index row a blob belongs to. */
export function instanceBlobMetadata(key: InstanceKey, version: string): Record<string, string> {
  return {
    study: key.studyInstanceUid,
    series: key.seriesInstanceUid,
    sop: key.sopInstanceUid,
    version,
  };
}

/**
 * Pending notes live in the index table, partitioned by the hour they were written and one of
 * 16 shards (no single hot partition under load); the sweep reads past hours as one key range.
 * The shard is the note's `group` when it has one (the notes of one request or delete batch,
 * written and removed together in one transaction), else the version's last, random, digit.
 */
export const PendingPartitionPrefix = 'pending|';

export function pendingPartitionKey(createdAt: Date, version: string, group?: string): string {
  const hour = createdAt.toISOString().slice(0, 13).replace(/\D/g, '');
  return `${PendingPartitionPrefix}${hour}|${group ?? version.slice(-1)}`;
}

/** A shard for notes that are to share one partition (PendingBlob.group): one random hex digit. */
export function newPendingGroup(): string {
  return randomBytes(1).toString('hex').slice(-1);
}

/**
 * Partition-key range of the notes written up to `cutoff`'s hour (that hour included: "~" sorts
 * after its shards), so listing old notes is one range query; the hour itself is filtered by time.
 */
export function pendingPartitionsThrough(cutoff: Date): { from: string; to: string } {
  const hour = cutoff.toISOString().slice(0, 13).replace(/\D/g, '');
  return { from: PendingPartitionPrefix, to: `${PendingPartitionPrefix}${hour}~` };
}

/**
 * A note's row key: the version for a store note; a delete note of a version, and the note of a
 * version an upsert replaces, have their own keys, apart from the store note of that version (a
 * delete may start while the store that wrote the version still holds its note).
 */
const DeleteNotePrefix = 'delete|';
const ReplaceNotePrefix = 'replace|';

export function pendingRowKey(pending: Pick<PendingBlob, 'kind' | 'version'>): string {
  if (pending.kind === 'delete') return `${DeleteNotePrefix}${pending.version}`;
  return pending.kind === 'replace' ? `${ReplaceNotePrefix}${pending.version}` : pending.version;
}

/** The version a note's row key names (a delete note from before delete notes had their own key: the version). */
export function pendingVersionOf(kind: PendingKind, rowKey: string): string {
  const prefix = kind === 'delete' ? DeleteNotePrefix : kind === 'replace' ? ReplaceNotePrefix : undefined;
  return prefix !== undefined && rowKey.startsWith(prefix) ? rowKey.slice(prefix.length) : rowKey;
}

/**
 * Free text (PatientID, AccessionNumber, names) in a key: percent-encoded so no forbidden key
 * character (`/ \ # ?`, control characters) can appear, and `|` stays a separator.
 */
export function keyText(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*|~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A creation time as 13 digits that sort newest first (ms since the epoch subtracted from 10^13 - 1). */
export function newestFirstKey(createdAt: Date | string): string {
  const ms = typeof createdAt === 'string' ? Date.parse(createdAt) : createdAt.getTime();
  return (9_999_999_999_999 - (Number.isNaN(ms) ? 0 : ms)).toString().padStart(13, '0');
}

/**
 * Search access paths (docs/storage.md "Access paths for search"): small pointer rows, each in a partition
 * chosen so one search is one key-range query. They are written before the study partition
 * commits and checked against it when read, so a stale or early pointer never shows up in results.
 */
const StudyDatePrefix = 'sd|';
const DayPrefix = 'sd2|';
/** The day key: 99999999 - YYYYMMDD, so later days sort first. */
const invertDay = (yyyymmdd: string) => (99_999_999 - Number(yyyymmdd)).toString().padStart(8, '0');

export const AccessPathKeys = {
  patientId: (patientId: string) => `pid|${keyText(patientId)}`,
  accession: (accession: string) => `acc|${keyText(accession)}`,
  /** Name tokens share a partition per first character; the RowKey starts with the token. */
  nameToken: (token: string) => `pn|${keyText(Array.from(token)[0] ?? '')}`,
  nameTokenRow: (token: string, studyUid: string) => `${keyText(token)}|${studyUid}`,
  /** Row-key range of the tokens that start with `prefix` ("~" sorts after every character keyText emits). */
  nameTokenRows: (prefix: string) => ({ from: keyText(prefix), to: `${keyText(prefix)}~` }),
  /** One partition per StudyDate; a date range is one PartitionKey range query. */
  studyDate: (yyyymmdd: string) => `${StudyDatePrefix}${yyyymmdd}`,
  /** The StudyDate a studyDate partition key names. */
  studyDateOf: (partitionKey: string) => partitionKey.slice(StudyDatePrefix.length),
  /** Studies by creation time, newest first, in 16 shards so no partition is hot. */
  recent: (shard: string) => `recent|${shard}`,
  recentRow: (createdAt: Date, studyUid: string) => `${newestFirstKey(createdAt)}|${studyUid}`,
  series: (seriesUid: string) => `ser|${seriesUid}`,
  sop: (sopUid: string) => `sop|${sopUid}`,
  modality: (modality: string) => `mod|${keyText(modality)}`,
  /** The RowKey of a pointer to a series (in the sop and modality partitions). */
  seriesRow: (studyUid: string, seriesUid: string) => `${studyUid}|${seriesUid}`,
} as const;

/**
 * The newest-first forms of the name-word, StudyDate and modality paths (the "2" kinds): within
 * one value, rows run from the newest study (by createdAt) to the oldest, so a page of results
 * reads about a page of pointers. The older forms above stay readable until the archive's pointers
 * have been migrated (src/storage/search-pointer-migration.ts).
 */
export const NewestFirstKeys = {
  /** Name words share a partition per first character, as in the older form. */
  nameWord: (token: string) => `pn2|${keyText(Array.from(token)[0] ?? '')}`,
  nameWordRow: (token: string, created: string, studyUid: string) =>
    `${keyText(token)}|${newestFirstKey(created)}|${studyUid}`,
  /** Rows of exactly `word` ("|" + 1 is "}"). */
  nameWordRows: (word: string) => ({ from: `${keyText(word)}|`, to: `${keyText(word)}}` }),
  /** The word a name-word row key starts with (keyText never emits "|"), and the rest: the newest-first order. */
  splitNameWordRow: (rowKey: string) => {
    const at = rowKey.indexOf('|');
    return { word: rowKey.slice(0, at), order: rowKey.slice(at + 1) };
  },
  /** One partition per StudyDate, later days first; rows newest study first. */
  day: (yyyymmdd: string) => `${DayPrefix}${invertDay(yyyymmdd)}`,
  /** The StudyDate a day partition key names. */
  dayOf: (partitionKey: string) => invertDay(partitionKey.slice(DayPrefix.length)),
  /** Whether a partition key is a day partition (not the older `sd|` form). */
  isDay: (partitionKey: string) => partitionKey.startsWith(DayPrefix),
  /** Only YYYYMMDD dates have a day partition (the DA form STOW accepts). */
  hasDay: (value: string) => /^\d{8}$/.test(value),
  studyRow: (created: string, studyUid: string) => `${newestFirstKey(created)}|${studyUid}`,
  modality: (modality: string) => `mod2|${keyText(modality)}`,
  seriesRow: (created: string, studyUid: string, seriesUid: string) =>
    `${newestFirstKey(created)}|${studyUid}|${seriesUid}`,
} as const;

/** A stable 32-bit hash of a UID, to spread keys over shards or buckets (not for security). */
function textHash(text: string): number {
  let hash = 0;
  for (const char of text) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return hash;
}

/** Hash buckets for SOP Instance UIDs that share no series-like prefix (see sopGroup). */
const SOP_BUCKETS = 256;

/**
 * The partition of a SOP pointer: the UID without its last component, which instances of one
 * series usually share (…{series part}.{instance number}), so the pointers of a STOW request's
 * instances go in one entity-group transaction instead of one upsert each. UUID-derived UIDs
 * (2.25.…, PS3.5 B.2) and UIDs of fewer than five components share no such prefix: they spread
 * over SOP_BUCKETS partitions by a hash of the whole UID, so no partition collects all of them.
 */
function sopGroup(sopUid: string): string {
  const at = sopUid.lastIndexOf('.');
  const prefix = at > 0 ? sopUid.slice(0, at) : '';
  if (prefix !== '' && !prefix.startsWith('2.25') && prefix.split('.').length >= 4) return prefix;
  return `~${(textHash(sopUid) % SOP_BUCKETS).toString(16).padStart(2, '0')}`;
}

/**
 * SOP pointers, grouped (docs/storage.md "Access paths for search"): the RowKey starts with the
 * SOP Instance UID, so a lookup is one query of one partition's RowKey range. Versions before them
 * kept one partition per SOP Instance UID (AccessPathKeys.sop), one upsert per instance stored.
 */
export const SopPointerKeys = {
  partition: (sopUid: string) => `sop2|${sopGroup(sopUid)}`,
  row: (sopUid: string, studyUid: string, seriesUid: string) => `${sopUid}|${studyUid}|${seriesUid}`,
  /** The rows of one SOP Instance UID ("|" + 1 is "}"). */
  rows: (sopUid: string) => ({ from: `${sopUid}|`, to: `${sopUid}}` }),
} as const;

/** The older pointer partitions the migration rewrites: each a PartitionKey range ("|" + 1 is "}"). */
export const LegacyPointerRanges = [
  { from: 'pn|', to: 'pn}' },
  { from: StudyDatePrefix, to: 'sd}' },
  { from: 'mod|', to: 'mod}' },
] as const;

/** The older, one-partition-per-UID SOP pointers, which the migration regroups. */
export const LegacySopPointerRange = { from: 'sop|', to: 'sop}' } as const;

/** Where the index notes which migrations have completed (one row each). */
export const MigrationKeys = {
  partition: 'migrations',
  newestFirstPointers: 'search-pointers-newest-first',
  groupedSopPointers: 'search-pointers-sop-grouped',
} as const;

export const RECENT_SHARDS = '0123456789abcdef'.split('');

export function recentShard(studyUid: string): string {
  return RECENT_SHARDS[textHash(studyUid) % RECENT_SHARDS.length] ?? '0';
}

/**
 * The change feed lives in one partition of the index table, so an append is one entity-group
 * transaction: the counter row (compare-and-swap on its ETag), the entries, a marker per
 * (action, version) and one time row for the whole transaction, naming its first sequence (its
 * entries share one timestamp), from which a time window finds where it starts.
 */
const timeFrom = (timestamp: string) => `t|${timestamp}`;

export const ChangeFeedKeys = {
  partition: 'changefeed',
  counter: 'counter',
  entry: (sequence: number) => `e|${sequence.toString().padStart(16, '0')}`,
  /** Above every entry's row key ("|" + 1 is "}"). */
  entriesEnd: 'e}',
  marker: (action: string, version: string) => `m|${action}|${version}`,
  time: (timestamp: string, sequence: number) => `${timeFrom(timestamp)}|${sequence.toString().padStart(16, '0')}`,
  /** The sequence a time row names (the last 16 digits of its key). */
  timeSequence: (rowKey: string) => Number(rowKey.slice(-16)),
  /** Below the time rows at `timestamp` and above those before it. */
  timeFrom,
} as const;

/**
 * Upload sessions: one row each in a partition of their own (open sessions are few, so finding
 * the expired ones is one partition query), and one staging blob each, outside every study prefix.
 */
export const UploadSessionKeys = {
  partition: 'uploadsession',
  blobName: (id: string) => `upload-sessions/${id}.dcm`,
} as const;

/** A session id: 128 random bits, hex (safe in a row key, a blob name and a URL). */
export function newUploadSessionId(): string {
  return randomBytes(16).toString('hex');
}

/**
 * The expiry index: one small row per study expiry time (msdicom-expiry headers), partitioned
 * by the hour the study expires, row key the time and the study. The expiry sweep reads the
 * partitions up to the current hour as one key range, so it reads what has expired (and the rest
 * of the current hour), never the archive; rows are removed once handled.
 */
const ExpiryPartitionPrefix = 'expiry|';
const hourOf = (time: Date) => time.toISOString().slice(0, 13).replace(/\D/g, '');

export const ExpiryKeys = {
  partition: (expiresAt: Date) => `${ExpiryPartitionPrefix}${hourOf(expiresAt)}`,
  row: (expiresAt: Date, studyInstanceUid: string) => `${expiresAt.toISOString()}|${studyInstanceUid}`,
  /** Partition-key range of the rows expiring up to `now`'s hour (that hour included). */
  through: (now: Date) => ({ from: ExpiryPartitionPrefix, to: `${ExpiryPartitionPrefix}${hourOf(now)}~` }),
  /** The time and study a row key names (undefined for a row key of another form). */
  parse(rowKey: string): { expiresAt: Date; studyInstanceUid: string } | undefined {
    const at = rowKey.indexOf('|');
    const expiresAt = new Date(rowKey.slice(0, at));
    if (at < 0 || Number.isNaN(expiresAt.getTime())) return undefined;
    return { expiresAt, studyInstanceUid: rowKey.slice(at + 1) };
  },
} as const;

/**
 * The thumbnail cache of one stored version of an instance (an append blob of rendered
 * thumbnails, src/dicomweb/thumbnail-cache.ts): named after the version, so a newer copy of the
 * instance never finds an older copy's pictures, and deleted with the instance's blobs.
 */
export function thumbnailCacheBlobName(instanceBlob: string): string {
  return instanceBlob.replace(/\.dcm$/, '.thumbnails');
}

/**
 * The thumbnails of a study, or of one series of it (their representative instance's pictures,
 * valid for one study revision: src/dicomweb/thumbnail-cache.ts). UIDs hold no letters, so the
 * name cannot collide with a series or instance folder.
 */
export function studyThumbnailsName(studyInstanceUid: string, seriesInstanceUid?: string): string {
  return seriesInstanceUid ? `${studyInstanceUid}/${seriesInstanceUid}/thumbnails` : `${studyInstanceUid}/thumbnails`;
}

/** Event publishers' checkpoints (src/events/publisher.ts): one row per sink in one partition of the index table. */
export const EventCheckpointKeys = {
  partition: 'events',
  row: (name: string) => `checkpoint|${name}`,
} as const;

/** Long-running operations (bulk update): one row per operation in one partition of the index table. */
export const OperationKeys = {
  partition: 'operations',
  row: (id: string) => id,
} as const;

/**
 * The id of a blob's `index`th block: all ids of a blob must have one length, so a zero-padded
 * counter, base64 as Azure wants it. Decoded, they sort like their positions, which is the order
 * an upload session's commit joins a client's blocks in (the client writes the same ids).
 */
export function blockId(index: number): string {
  return Buffer.from(index.toString().padStart(6, '0')).toString('base64');
}
