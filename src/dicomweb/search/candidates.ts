import { nameTokens } from '../../dicom/person-name.js';
import type { AccessPath, InstanceIndex, SearchPointer } from '../../storage/ports.js';
import type { Filter } from './matching.js';
import { compareText } from '../../util/compare.js';
import { mergeSorted } from '../../util/merge-sorted.js';

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
  /** True when each path yields its pointers in result order, so they need not be read whole. */
  readonly streams?: boolean;
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

/**
 * `wanted`: how many matches the page needs (offset + limit + 1), a hint for the paths that stream.
 * `newestFirst`: the name-word, StudyDate and modality paths stream in result order
 * (InstanceIndex.newestFirstPaths); else they are read whole, the date month by month.
 */
export async function chooseCandidates(
  filters: readonly Filter[],
  wanted?: number,
  newestFirstPaths: () => Promise<boolean> = () => Promise.resolve(false),
): Promise<CandidateSource> {
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
  // The first word of the query, up to any wildcard, begins a word of every matching name; an
  // exact name (no wildcard, no fuzzy matching) has that word whole.
  const newestFirst =
    word || byKeyword(filters, 'StudyDate')?.dateRange || exact('Modality') || exact('ModalitiesInStudy')
      ? await newestFirstPaths()
      : false;
  if (word) {
    const whole = name?.exactValues !== undefined;
    const paths = [{ kind: 'nameToken', prefix: word, whole, wanted } as const];
    return { paths, ordered: newestFirst, narrowsSeries: false, streams: newestFirst };
  }
  const date = byKeyword(filters, 'StudyDate')?.dateRange;
  if (date) {
    const paths = newestFirst
      ? [{ kind: 'studyDates', ...date, wanted } as const]
      : monthsNewestFirst(date.from, date.to);
    return { paths, ordered: true, narrowsSeries: false, streams: newestFirst };
  }
  const modality = exact('Modality') ?? exact('ModalitiesInStudy');
  if (modality) {
    return {
      paths: modality.map((value) => ({ kind: 'modality', value, wanted })),
      ordered: newestFirst,
      narrowsSeries: exact('Modality') !== undefined,
      streams: newestFirst,
    };
  }
  return { paths: [{ kind: 'recent', wanted }], ordered: true, narrowsSeries: false, streams: true };
}

const pointerKey = (pointer: SearchPointer) =>
  `${pointer.studyInstanceUid}|${pointer.seriesInstanceUid ?? ''}|${pointer.sopInstanceUid ?? ''}`;

/** Result order: newest study first (ties by Study UID, as search sorts), a study's pointers together. */
const newestStudyFirst = (a: SearchPointer, b: SearchPointer) =>
  compareText(b.createdAt ?? '', a.createdAt ?? '') ||
  compareText(a.studyInstanceUid, b.studyInstanceUid) ||
  compareText(pointerKey(a), pointerKey(b));

/**
 * Pointers of the chosen paths, without repeats. Paths that yield in result order stream (several
 * merged); the others are read whole, each older-form date month sorted latest day first.
 */
export async function* pointersOf(index: InstanceIndex, source: CandidateSource): AsyncGenerator<SearchPointer> {
  const seen = new Set<string>();
  async function* unseen(pointers: AsyncIterable<SearchPointer> | Iterable<SearchPointer>) {
    for await (const pointer of pointers) {
      const key = pointerKey(pointer);
      if (seen.has(key)) continue;
      seen.add(key);
      yield pointer;
    }
  }
  if (source.streams === true && source.paths.length > 1) {
    // Several modalities: each path streams newest first, so their merge does too.
    const streams = source.paths.map((path) => index.follow(path)[Symbol.asyncIterator]());
    yield* unseen(mergeSorted(streams, newestStudyFirst));
    return;
  }
  for (const path of source.paths) {
    if (source.streams === true) {
      yield* unseen(index.follow(path));
      continue;
    }
    const batch: SearchPointer[] = [];
    for await (const pointer of index.follow(path)) batch.push(pointer);
    if (path.kind === 'studyDates') batch.sort((a, b) => compareText(b.sortKey ?? '', a.sortKey ?? ''));
    yield* unseen(batch);
  }
}
