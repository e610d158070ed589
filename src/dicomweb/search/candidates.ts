import { nameTokens } from '../../dicom/person-name.js';
import type { AccessPath, InstanceIndex, SearchPointer } from '../../storage/ports.js';
import type { Filter } from './matching.js';
import { compareText } from '../../util/compare.js';

/**
 * Chooses the access path for a search: the most selective filter that an index path can answer,
 * else the recency path (all studies, newest first). Pointers are only candidates: the caller
 * checks every filter against the study partition.
 */
export interface CandidateSource {
  /** Paths to follow, in the order their results should come. */
  readonly paths: readonly AccessPath[];
  /** True when the paths already yield studies in result order (newest first, or newest date first). */
  readonly ordered: boolean;
  /** True when the pointers name the only series (and instances) that can match. */
  readonly narrowsSeries: boolean;
}

function byKeyword(filters: readonly Filter[], keyword: string): Filter | undefined {
  return filters.find((filter) => filter.attribute.tag.keyword === keyword);
}

/** Months of a date range, newest first, so date searches can stop early. */
function monthsNewestFirst(from: string, to: string): AccessPath[] {
  const paths: AccessPath[] = [];
  let year = Number(to.slice(0, 4));
  let month = Number(to.slice(4, 6));
  const stop = from.slice(0, 6);
  for (;;) {
    const yyyymm = `${String(year).padStart(4, '0')}${String(month).padStart(2, '0')}`;
    if (yyyymm < stop) break;
    const first = `${yyyymm}01` < from ? from : `${yyyymm}01`;
    const last = `${yyyymm}31` > to ? to : `${yyyymm}31`;
    paths.push({ kind: 'studyDates', from: first, to: last });
    month -= 1;
    if (month === 0) {
      month = 12;
      year -= 1;
    }
    if (paths.length > 12 * 200) break; // a range of centuries is scanned whole
  }
  return paths;
}

/** `wanted`: how many matches the page needs (offset + limit + 1), a hint for the recency path. */
export function chooseCandidates(filters: readonly Filter[], wanted?: number): CandidateSource {
  const exact = (keyword: string) => byKeyword(filters, keyword)?.exactValues;
  const sops = exact('SOPInstanceUID');
  if (sops)
    return { paths: sops.map((uid) => ({ kind: 'sop', sopInstanceUid: uid })), ordered: false, narrowsSeries: true };
  const series = exact('SeriesInstanceUID');
  if (series) {
    return {
      paths: series.map((uid) => ({ kind: 'series', seriesInstanceUid: uid })),
      ordered: false,
      narrowsSeries: true,
    };
  }
  const patientIds = exact('PatientID');
  if (patientIds)
    return { paths: patientIds.map((value) => ({ kind: 'patientId', value })), ordered: false, narrowsSeries: false };
  const accessions = exact('AccessionNumber');
  if (accessions) {
    return { paths: accessions.map((value) => ({ kind: 'accession', value })), ordered: false, narrowsSeries: false };
  }
  const name = byKeyword(filters, 'PatientName');
  const leading = name ? /^[^*?]+/.exec(name.value)?.[0] : undefined;
  const word = leading ? nameTokens(leading)[0] : undefined;
  // The first word of the query, up to any wildcard, begins a word of every matching name.
  if (word) return { paths: [{ kind: 'nameToken', prefix: word }], ordered: false, narrowsSeries: false };
  const date = byKeyword(filters, 'StudyDate')?.dateRange;
  if (date) return { paths: monthsNewestFirst(date.from, date.to), ordered: true, narrowsSeries: false };
  const modality = exact('Modality');
  if (modality)
    return { paths: modality.map((value) => ({ kind: 'modality', value })), ordered: false, narrowsSeries: true };
  const inStudy = exact('ModalitiesInStudy');
  if (inStudy)
    return { paths: inStudy.map((value) => ({ kind: 'modality', value })), ordered: false, narrowsSeries: false };
  return { paths: [{ kind: 'recent', wanted }], ordered: true, narrowsSeries: false };
}

/**
 * Pointers of the chosen paths, without repeats. Unordered sources are read whole (they are
 * selective by construction); ordered ones stream, each date month sorted newest first.
 */
export async function* pointersOf(index: InstanceIndex, source: CandidateSource): AsyncGenerator<SearchPointer> {
  const seen = new Set<string>();
  const key = (pointer: SearchPointer) =>
    `${pointer.studyInstanceUid}|${pointer.seriesInstanceUid ?? ''}|${pointer.sopInstanceUid ?? ''}`;
  for (const path of source.paths) {
    if (path.kind === 'recent') {
      for await (const pointer of index.follow(path)) {
        if (seen.has(key(pointer))) continue;
        seen.add(key(pointer));
        yield pointer;
      }
      continue;
    }
    const batch: SearchPointer[] = [];
    for await (const pointer of index.follow(path)) batch.push(pointer);
    if (path.kind === 'studyDates') batch.sort((a, b) => compareText(b.sortKey ?? '', a.sortKey ?? ''));
    for (const pointer of batch) {
      if (seen.has(key(pointer))) continue;
      seen.add(key(pointer));
      yield pointer;
    }
  }
}
