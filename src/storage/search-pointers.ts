import type { TableEntity, TableEntityResult } from '@azure/data-tables';
import { nameTokens } from '../dicom/person-name.js';
import { AccessPathKeys, NewestFirstKeys, recentShard, SopPointerKeys } from './keys.js';
import type { AccessPath, InstanceRecord, SearchPointer } from './ports.js';

type StoredRow = TableEntityResult<Record<string, unknown>>;

export interface PointerRow {
  readonly partitionKey: string;
  readonly rowKey: string;
  readonly study: string;
  readonly series?: string;
  readonly sop?: string;
  /** The study's createdAt, so a search can order candidates newest first without reading study rows. */
  readonly created: string;
  /** The PatientName a name-word pointer was written for, so a search can test the name first. */
  readonly PatientName?: string;
}

function changed(
  name: string,
  next: Readonly<Record<string, string>>,
  current: StoredRow | undefined,
): string | undefined {
  const value = next[name];
  if (value === undefined) return undefined;
  return current?.[name] === value ? undefined : value;
}

/**
 * The access-path rows an instance needs before its study partition commits: always its SOP
 * pointer; series pointers when the series is new or its Modality changed; study pointers for
 * each study attribute that is new or changed (and the recency pointer for a new study). Pointers
 * of old values are left in place: readers check every pointer against the study partition.
 */
export function pointerRows(
  record: InstanceRecord,
  study: StoredRow | undefined,
  series: StoredRow | undefined,
  now: Date,
): PointerRow[] {
  const studyUid = record.studyInstanceUid;
  const seriesUid = record.seriesInstanceUid;
  // The same createdAt the study row has or is about to get (index-entities.ts nextStudyEntity).
  const created = typeof study?.['createdAt'] === 'string' ? study['createdAt'] : record.storedAt;
  const rows: PointerRow[] = [
    {
      partitionKey: SopPointerKeys.partition(record.sopInstanceUid),
      rowKey: SopPointerKeys.row(record.sopInstanceUid, studyUid, seriesUid),
      study: studyUid,
      series: seriesUid,
      created,
    },
  ];
  if (!series)
    rows.push({
      partitionKey: AccessPathKeys.series(seriesUid),
      rowKey: studyUid,
      study: studyUid,
      series: seriesUid,
      created,
    });
  const modality = series ? changed('Modality', record.series, series) : record.series['Modality'];
  if (modality) {
    rows.push({
      partitionKey: NewestFirstKeys.modality(modality),
      rowKey: NewestFirstKeys.seriesRow(created, studyUid, seriesUid),
      study: studyUid,
      series: seriesUid,
      created,
    });
  }
  if (!study)
    rows.push({
      partitionKey: AccessPathKeys.recent(recentShard(studyUid)),
      rowKey: AccessPathKeys.recentRow(now, studyUid),
      study: studyUid,
      created,
    });
  const patientId = changed('PatientID', record.study, study);
  if (patientId)
    rows.push({ partitionKey: AccessPathKeys.patientId(patientId), rowKey: studyUid, study: studyUid, created });
  const accession = changed('AccessionNumber', record.study, study);
  if (accession)
    rows.push({ partitionKey: AccessPathKeys.accession(accession), rowKey: studyUid, study: studyUid, created });
  const studyDate = changed('StudyDate', record.study, study);
  if (studyDate && NewestFirstKeys.hasDay(studyDate)) {
    rows.push({
      partitionKey: NewestFirstKeys.day(studyDate),
      rowKey: NewestFirstKeys.studyRow(created, studyUid),
      study: studyUid,
      created,
    });
  }
  const name = changed('PatientName', record.study, study);
  for (const token of name ? nameTokens(name) : []) {
    rows.push({
      partitionKey: NewestFirstKeys.nameWord(token),
      rowKey: NewestFirstKeys.nameWordRow(token, created, studyUid),
      study: studyUid,
      created,
      PatientName: name,
    });
  }
  return rows;
}

export function pointerEntity(row: PointerRow): TableEntity<Record<string, string>> {
  const entity: TableEntity<Record<string, string>> = {
    partitionKey: row.partitionKey,
    rowKey: row.rowKey,
    study: row.study,
    created: row.created,
  };
  if (row.series !== undefined) entity['series'] = row.series;
  if (row.sop !== undefined) entity['sop'] = row.sop;
  if (row.PatientName !== undefined) entity['PatientName'] = row.PatientName;
  return entity;
}

/** A pointer row as read back (rows written before `created` existed lack it). */
export type ReadPointerRow = Partial<Record<keyof PointerRow, unknown>>;

/** What search learns from one pointer row of `path`; undefined for a row without a study. */
export function searchPointerOf(row: ReadPointerRow, path: AccessPath): SearchPointer | undefined {
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const study = text(row.study);
  if (!study) return undefined;
  const name = text(row.PatientName);
  const partitionKey = text(row.partitionKey);
  return {
    studyInstanceUid: study,
    seriesInstanceUid: text(row.series),
    sopInstanceUid: path.kind === 'sop' ? path.sopInstanceUid : undefined,
    sortKey: path.kind === 'studyDates' && partitionKey !== undefined ? studyDateOf(partitionKey) : undefined,
    createdAt: text(row.created),
    attributes: name === undefined ? undefined : { PatientName: name },
  };
}

/** The StudyDate a date pointer's partition names, in either form. */
function studyDateOf(partitionKey: string): string {
  return NewestFirstKeys.isDay(partitionKey)
    ? NewestFirstKeys.dayOf(partitionKey)
    : AccessPathKeys.studyDateOf(partitionKey);
}
