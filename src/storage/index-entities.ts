import type { TableEntity, TableEntityResult } from '@azure/data-tables';
import { instanceRowKey, seriesRowKey, StudyRowKey } from './keys.js';
import type { InstanceRecord, SeriesAggregate, StoredVersion, StudyAggregate } from './ports.js';

/**
 * How index rows look in Table Storage. Searchable attributes are stored under their DICOM
 * keyword (PatientID, StudyDate, ...) so the search issue can filter on them directly; our own
 * bookkeeping properties start with an underscore-free lower-case name so they never collide.
 */
type Row = Record<string, string | number | Uint8Array | undefined>;

/** Bytes per binary property of an inline sidecar (Table Storage allows 64 KiB per property). */
const SIDECAR_PART_BYTES = 64_000;
const SIDECAR_PROPERTY = 'sidecar';

/** An inline sidecar as binary properties sidecar0, sidecar1, ... */
function sidecarProperties(bytes: Uint8Array | undefined): Row {
  const row: Row = {};
  if (!bytes) return row;
  for (let part = 0; part * SIDECAR_PART_BYTES < bytes.byteLength; part += 1) {
    row[`${SIDECAR_PROPERTY}${part}`] = bytes.subarray(part * SIDECAR_PART_BYTES, (part + 1) * SIDECAR_PART_BYTES);
  }
  return row;
}

function sidecarOf(row: StoredRow): Uint8Array | undefined {
  const parts: Uint8Array[] = [];
  for (let part = 0; ; part += 1) {
    const value = row[`${SIDECAR_PROPERTY}${part}`];
    if (!(value instanceof Uint8Array)) break;
    parts.push(value);
  }
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}
type StoredRow = TableEntityResult<Record<string, unknown>>;

/** An entity without its undefined properties (the SDK would send them as nulls). */
export function withoutUndefined<T extends object>(entity: T): T {
  return Object.fromEntries(Object.entries(entity).filter(([, value]) => value !== undefined)) as T;
}

export function textOf(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

export function instanceEntity(record: InstanceRecord): TableEntity<Row> {
  return {
    partitionKey: record.studyInstanceUid,
    rowKey: instanceRowKey(record),
    ...record.instance,
    StudyInstanceUID: record.studyInstanceUid,
    SeriesInstanceUID: record.seriesInstanceUid,
    SOPInstanceUID: record.sopInstanceUid,
    SOPClassUID: record.sopClassUid,
    version: record.version,
    blobName: record.blobName,
    transferSyntaxUid: record.transferSyntaxUid,
    size: record.size,
    storedAt: record.storedAt,
    pixelDataOffset: record.pixelDataOffset,
    pixelDataLength: record.pixelDataLength,
    numberOfFrames: record.numberOfFrames,
    studyJson: JSON.stringify(record.study),
    seriesJson: JSON.stringify(record.series),
    replaces: record.replaces,
    sha256: record.sha256,
    originalBlobName: record.originalBlobName,
    updatedBy: record.updatedBy,
    ...sidecarProperties(record.inlineSidecar),
  };
}

export function recordFromEntity(row: StoredRow): InstanceRecord {
  const text = (name: string): string => textOf(row[name]);
  const optionalNumber = (name: string): number | undefined => (typeof row[name] === 'number' ? row[name] : undefined);
  const instance: Record<string, string> = {};
  for (const [name, value] of Object.entries(row)) {
    if (/^[A-Z]/.test(name) && typeof value === 'string') instance[name] = value;
  }
  return {
    studyInstanceUid: text('StudyInstanceUID'),
    seriesInstanceUid: text('SeriesInstanceUID'),
    sopInstanceUid: text('SOPInstanceUID'),
    sopClassUid: text('SOPClassUID'),
    version: text('version'),
    blobName: text('blobName'),
    transferSyntaxUid: text('transferSyntaxUid'),
    size: Number(row['size'] ?? 0),
    storedAt: text('storedAt'),
    pixelDataOffset: optionalNumber('pixelDataOffset'),
    pixelDataLength: optionalNumber('pixelDataLength'),
    numberOfFrames: optionalNumber('numberOfFrames'),
    study: JSON.parse(text('studyJson') || '{}') as Record<string, string>,
    series: JSON.parse(text('seriesJson') || '{}') as Record<string, string>,
    instance,
    inlineSidecar: sidecarOf(row),
    replaces: typeof row['replaces'] === 'string' ? row['replaces'] : undefined,
    sha256: typeof row['sha256'] === 'string' ? row['sha256'] : undefined,
    originalBlobName: optionalText(row['originalBlobName']),
    updatedBy: optionalText(row['updatedBy']),
  };
}

function attributesOf(row: StoredRow | undefined): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const [name, value] of Object.entries(row ?? {})) {
    if (/^[A-Z]/.test(name) && typeof value === 'string') attributes[name] = value;
  }
  return attributes;
}

/** What an upsert replaces or a duplicate check compares: an instance row's version, blob and hash. */
export function storedVersionOf(row: StoredRow): StoredVersion {
  return {
    version: textOf(row['version']),
    blobName: textOf(row['blobName']),
    sha256: optionalText(row['sha256']),
    originalBlobName: optionalText(row['originalBlobName']),
    updatedBy: optionalText(row['updatedBy']),
  };
}

function optionalText(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * The study row after adding one instance to it (current: the row as read, if any), or after an
 * upsert replaced one of its instances (`replacing`: the counts stay).
 */
export function nextStudyEntity(
  record: InstanceRecord,
  current: StoredRow | undefined,
  newSeries: boolean,
  replacing = false,
): TableEntity<Row> {
  const previous = current ? studyFromEntity(current) : undefined;
  const modalities = new Set(previous?.modalities ?? []);
  const modality = record.series['Modality'];
  if (modality) modalities.add(modality);
  return {
    partitionKey: record.studyInstanceUid,
    rowKey: StudyRowKey,
    ...attributesOf(current),
    ...record.study,
    StudyInstanceUID: record.studyInstanceUid,
    ModalitiesInStudy: [...modalities].sort().join('\\') || undefined,
    numberOfSeries: (previous?.numberOfSeries ?? 0) + (newSeries ? 1 : 0),
    numberOfInstances: (previous?.numberOfInstances ?? 0) + (replacing ? 0 : 1),
    createdAt: previous?.createdAt ?? record.storedAt,
  };
}

export function nextSeriesEntity(
  record: InstanceRecord,
  current: StoredRow | undefined,
  replacing = false,
): TableEntity<Row> {
  return {
    partitionKey: record.studyInstanceUid,
    rowKey: seriesRowKey(record.seriesInstanceUid),
    ...attributesOf(current),
    ...record.series,
    StudyInstanceUID: record.studyInstanceUid,
    SeriesInstanceUID: record.seriesInstanceUid,
    numberOfInstances: Number(current?.['numberOfInstances'] ?? 0) + (replacing ? 0 : 1),
    createdAt: textOf(current?.['createdAt'], record.storedAt),
  };
}

export function studyFromEntity(row: StoredRow): StudyAggregate {
  const attributes = attributesOf(row);
  const modalities = attributes['ModalitiesInStudy'];
  return {
    studyInstanceUid: textOf(row['StudyInstanceUID'], row.partitionKey),
    attributes,
    numberOfSeries: Number(row['numberOfSeries'] ?? 0),
    numberOfInstances: Number(row['numberOfInstances'] ?? 0),
    modalities: modalities ? modalities.split('\\') : [],
    createdAt: textOf(row['createdAt']),
  };
}

export function seriesFromEntity(row: StoredRow): SeriesAggregate {
  return {
    studyInstanceUid: textOf(row['StudyInstanceUID'], row.partitionKey),
    seriesInstanceUid: textOf(row['SeriesInstanceUID']),
    attributes: attributesOf(row),
    numberOfInstances: Number(row['numberOfInstances'] ?? 0),
    createdAt: textOf(row['createdAt']),
  };
}

/** The instances a study or series row counts. */
export function instanceCount(row: StoredRow | undefined): number {
  return Number(row?.['numberOfInstances'] ?? 0);
}

/** A study or series row a delete has marked (docs/storage.md "Deletes"). */
export function isMarked(row: StoredRow | undefined): boolean {
  return row?.['deleting'] === true;
}

/** A study row whose expiry (msdicom-expiry headers) is at or before `now`. */
export function isExpiredBy(row: StoredRow, now: Date): boolean {
  const expiresAt = row['expiresAt'];
  return typeof expiresAt === 'string' && new Date(expiresAt) <= now;
}

/** Readers do not see a study or series being deleted, nor one whose last instance just went. */
export function isVisible(row: StoredRow): boolean {
  return !isMarked(row) && instanceCount(row) > 0;
}

/**
 * The one visibility rule for instances: its row exists and neither its study row nor its
 * series row is marked for deletion. Every reader applies it, so they all agree.
 */
export function isHidden(study: StoredRow | undefined, series: StoredRow | undefined): boolean {
  return isMarked(study) || isMarked(series);
}

/**
 * Whether adding an instance creates a series for the study's count: no row yet, or one left at
 * zero by a delete that could not drop it.
 */
export function isNewSeries(series: StoredRow | undefined): boolean {
  return instanceCount(series) === 0;
}
