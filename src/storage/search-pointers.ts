import type { TableEntity, TableEntityResult } from '@azure/data-tables';
import { nameTokens } from '../dicom/person-name.js';
import { AccessPathKeys, recentShard } from './keys.js';
import type { InstanceRecord } from './ports.js';

type StoredRow = TableEntityResult<Record<string, unknown>>;

export interface PointerRow {
  readonly partitionKey: string;
  readonly rowKey: string;
  readonly study: string;
  readonly series?: string;
  readonly sop?: string;
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
  const rows: PointerRow[] = [
    {
      partitionKey: AccessPathKeys.sop(record.sopInstanceUid),
      rowKey: `${studyUid}|${seriesUid}`,
      study: studyUid,
      series: seriesUid,
    },
  ];
  if (!series)
    rows.push({ partitionKey: AccessPathKeys.series(seriesUid), rowKey: studyUid, study: studyUid, series: seriesUid });
  const modality = series ? changed('Modality', record.series, series) : record.series['Modality'];
  if (modality) {
    rows.push({
      partitionKey: AccessPathKeys.modality(modality),
      rowKey: `${studyUid}|${seriesUid}`,
      study: studyUid,
      series: seriesUid,
    });
  }
  if (!study)
    rows.push({
      partitionKey: AccessPathKeys.recent(recentShard(studyUid)),
      rowKey: AccessPathKeys.recentRow(now, studyUid),
      study: studyUid,
    });
  const patientId = changed('PatientID', record.study, study);
  if (patientId) rows.push({ partitionKey: AccessPathKeys.patientId(patientId), rowKey: studyUid, study: studyUid });
  const accession = changed('AccessionNumber', record.study, study);
  if (accession) rows.push({ partitionKey: AccessPathKeys.accession(accession), rowKey: studyUid, study: studyUid });
  const studyDate = changed('StudyDate', record.study, study);
  if (studyDate) {
    rows.push({ partitionKey: AccessPathKeys.studyDate(studyDate), rowKey: studyUid, study: studyUid });
  }
  const name = changed('PatientName', record.study, study);
  for (const token of name ? nameTokens(name) : []) {
    rows.push({
      partitionKey: AccessPathKeys.nameToken(token),
      rowKey: AccessPathKeys.nameTokenRow(token, studyUid),
      study: studyUid,
    });
  }
  return rows;
}

export function pointerEntity(row: PointerRow): TableEntity<Record<string, string>> {
  const entity: TableEntity<Record<string, string>> = {
    partitionKey: row.partitionKey,
    rowKey: row.rowKey,
    study: row.study,
  };
  if (row.series !== undefined) entity['series'] = row.series;
  if (row.sop !== undefined) entity['sop'] = row.sop;
  return entity;
}
