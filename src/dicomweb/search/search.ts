import type {
  InstanceIndex,
  InstanceRecord,
  SearchPointer,
  SeriesAggregate,
  StudyAggregate,
} from '../../storage/ports.js';
import { chooseCandidates, pointersOf } from './candidates.js';
import type { Filter } from './matching.js';
import type { SearchQuery } from './query.js';
import type { Level } from './searchable.js';
import { compareText } from '../../util/compare.js';

export interface SearchMatch {
  readonly study: StudyAggregate;
  readonly series?: SeriesAggregate | undefined;
  readonly instance?: InstanceRecord | undefined;
}

export interface SearchResult {
  readonly matches: SearchMatch[];
  /** More matches exist beyond offset + limit. */
  readonly truncated: boolean;
}

/** Point reads in flight at once while checking candidates. */
const PARALLEL_READS = 16;

function passes(filters: readonly Filter[], level: Level, attributes: Readonly<Record<string, string>>): boolean {
  return filters.every(
    (filter) => filter.attribute.level !== level || filter.matches(attributes[filter.attribute.tag.keyword]),
  );
}

function studyAttributes(study: StudyAggregate): Record<string, string> {
  return { ...study.attributes, StudyInstanceUID: study.studyInstanceUid };
}

function seriesAttributes(series: SeriesAggregate): Record<string, string> {
  return { ...series.attributes, SeriesInstanceUID: series.seriesInstanceUid };
}

function instanceAttributes(instance: InstanceRecord): Record<string, string> {
  return { ...instance.instance, SOPInstanceUID: instance.sopInstanceUid, SOPClassUID: instance.sopClassUid };
}

const newestFirst = (a: { createdAt: string }, b: { createdAt: string }) => compareText(b.createdAt, a.createdAt);
/** Newer creation time first; equal times by Study UID, so paging with offset is stable. */
const newestThenUid = (aCreated: string, aUid: string, bCreated: string, bUid: string) =>
  compareText(bCreated, aCreated) || compareText(aUid, bUid);
const newestStudyFirst = (a: StudyAggregate, b: StudyAggregate) =>
  newestThenUid(a.createdAt, a.studyInstanceUid, b.createdAt, b.studyInstanceUid);
const newestInstanceFirst = (a: InstanceRecord, b: InstanceRecord) => compareText(b.storedAt, a.storedAt);

/** Study candidates in result order, each checked against the study partition. */
async function* studies(
  index: InstanceIndex,
  query: SearchQuery,
  needed: () => number,
): AsyncGenerator<{ study: StudyAggregate; pointers: SearchPointer[] }> {
  // Study rows are read PARALLEL_READS at a time, or fewer when the page needs fewer more.
  const batch = () => Math.min(PARALLEL_READS, Math.max(1, needed()));
  const scoped = query.resource.studyInstanceUid;
  const uids = scoped
    ? [scoped]
    : query.filters.find((filter) => filter.attribute.tag.keyword === 'StudyInstanceUID')?.exactValues;
  const check = async (uid: string, pointers: SearchPointer[]) => {
    const study = await index.getStudy(uid);
    return study && passes(query.filters, 'study', studyAttributes(study)) ? { study, pointers } : undefined;
  };
  if (uids) {
    const found = (await Promise.all(uids.map((uid) => check(uid, [])))).filter((hit) => hit !== undefined);
    yield* found.sort((a, b) => newestStudyFirst(a.study, b.study));
    return;
  }
  // Study-level searches need offset + limit + 1 studies; lower levels may find several per study,
  // or none, so for them it is a first guess: paths that stream read on as far as the page needs.
  const wanted = query.offset + query.limit + 1;
  const source = await chooseCandidates(query.filters, wanted, () => index.newestFirstPaths());
  const narrow = (pointers: SearchPointer[]) => (source.narrowsSeries ? pointers : []);
  // Group pointers by study, keeping the order in which studies first appear.
  const groups = new Map<string, SearchPointer[]>();
  const flush = async function* (ordered: boolean) {
    const entries = [...groups.entries()];
    groups.clear();
    const hits = [];
    for (let i = 0; i < entries.length;) {
      const slice = entries.slice(i, i + (ordered ? batch() : PARALLEL_READS));
      i += slice.length;
      const checked = await Promise.all(slice.map(([uid, pointers]) => check(uid, narrow(pointers))));
      for (const hit of checked) if (hit) hits.push(hit);
      if (ordered) {
        yield* hits.splice(0);
      }
    }
    if (!ordered) yield* hits.sort((a, b) => newestStudyFirst(a.study, b.study));
  };
  // A study already checked (its pointers came apart, e.g. an older date of it) is not checked again.
  const checked = new Set<string>();
  for await (const pointer of pointersOf(index, source)) {
    if (!pointerPasses(query.filters, pointer) || checked.has(pointer.studyInstanceUid)) continue;
    const group = groups.get(pointer.studyInstanceUid);
    if (group) {
      group.push(pointer);
      continue;
    }
    // Flushed at a new study, so the pointers of one study (adjacent when ordered) stay together.
    if (source.ordered && groups.size >= batch()) {
      for (const uid of groups.keys()) checked.add(uid);
      yield* flush(true);
    }
    groups.set(pointer.studyInstanceUid, [pointer]);
  }
  // An unordered path is read whole; when its pointers carry the study's createdAt they are put
  // newest first here, so only as many study rows are read as the page needs.
  yield* flush(source.ordered || sortNewestFirst(groups));
}

/** False when a study attribute the pointer carries already fails its filter (a stale or non-matching word). */
function pointerPasses(filters: readonly Filter[], pointer: SearchPointer): boolean {
  const known = pointer.attributes;
  if (!known) return true;
  return filters.every(
    (filter) =>
      filter.attribute.level !== 'study' ||
      !(filter.attribute.tag.keyword in known) ||
      filter.matches(known[filter.attribute.tag.keyword]),
  );
}

/**
 * Reorders the groups newest study first by the createdAt their pointers carry; false (order
 * unchanged) when some pointer lacks it, so the candidates must all be read and sorted.
 */
function sortNewestFirst(groups: Map<string, SearchPointer[]>): boolean {
  const created = new Map<string, string>();
  for (const [uid, pointers] of groups) {
    let newest = '';
    for (const pointer of pointers) {
      if (pointer.createdAt === undefined) return false;
      if (pointer.createdAt > newest) newest = pointer.createdAt;
    }
    created.set(uid, newest);
  }
  const sorted = [...groups.entries()].sort(([a], [b]) =>
    newestThenUid(created.get(a) ?? '', a, created.get(b) ?? '', b),
  );
  groups.clear();
  for (const [uid, pointers] of sorted) groups.set(uid, pointers);
  return true;
}

/** Series of a study that pass the series filters, newest first; pointers narrow them when they name series. */
async function seriesOf(
  index: InstanceIndex,
  query: SearchQuery,
  study: StudyAggregate,
  pointers: SearchPointer[],
): Promise<SeriesAggregate[]> {
  const scoped = query.resource.seriesInstanceUid;
  const named = scoped
    ? [scoped]
    : pointers.map((pointer) => pointer.seriesInstanceUid).filter((uid) => uid !== undefined);
  const all =
    named.length > 0
      ? (await Promise.all([...new Set(named)].map((uid) => index.getSeries(study.studyInstanceUid, uid)))).filter(
          (found) => found !== undefined,
        )
      : await index.listSeries(study.studyInstanceUid);
  return all.filter((series) => passes(query.filters, 'series', seriesAttributes(series))).sort(newestFirst);
}

/**
 * QIDO-RS search at any level (PS3.18 §10.6): candidates from one access path, each checked
 * against every filter; newest first; offset and limit applied to the checked matches.
 */
export async function search(index: InstanceIndex, query: SearchQuery): Promise<SearchResult> {
  const wanted = query.offset + query.limit;
  const matches: SearchMatch[] = [];
  const level = query.resource.level;
  // A study-level page needs wanted + 1 matches (the one past it says the answer is cut).
  const needed = () => (level === 'study' ? wanted + 1 - matches.length : PARALLEL_READS);
  for await (const { study, pointers } of studies(index, query, needed)) {
    if (level === 'study') {
      matches.push({ study });
    } else {
      for (const series of await seriesOf(index, query, study, pointers)) {
        if (level === 'series') {
          matches.push({ study, series });
        } else {
          const sops = new Set(pointers.map((pointer) => pointer.sopInstanceUid).filter((uid) => uid !== undefined));
          const instances = (await index.listInstances(study.studyInstanceUid, series.seriesInstanceUid))
            .filter(
              (instance) =>
                (sops.size === 0 || sops.has(instance.sopInstanceUid)) &&
                passes(query.filters, 'instance', instanceAttributes(instance)),
            )
            .sort(newestInstanceFirst);
          for (const instance of instances) matches.push({ study, series, instance });
        }
        if (matches.length > wanted) break;
      }
    }
    if (matches.length > wanted) break;
  }
  return { matches: matches.slice(query.offset, wanted), truncated: matches.length > wanted };
}
