import { personNameGroups } from '../dicom/person-name.js';
import { Tag, type TagDef } from '../dicom/tags.js';
import type { SearchMatch } from '../dicomweb/search/search.js';
import type { SearchQuery } from '../dicomweb/search/query.js';
import { ALL_RETURN, DEFAULT_RETURN, levelsOf, type Level } from '../dicomweb/search/searchable.js';
import type { DicomJsonDataset, DicomJsonValue } from './dicom-json.js';
import type { ResourceUrls } from './urls.js';
import { compareText } from '../util/compare.js';

const NUMERIC_VRS = new Set(['IS', 'DS', 'US', 'UL', 'SS', 'SL']);

/** One attribute in DICOM JSON (PS3.18 F.2): PN as component groups, numbers as numbers. */
function jsonValue(tag: TagDef, text: string | number | undefined): DicomJsonValue {
  if (text === undefined || text === '') return { vr: tag.vr };
  const values = typeof text === 'number' ? [String(text)] : text.split('\\');
  if (tag.vr === 'PN') return { vr: 'PN', Value: values.map((value) => personNameGroups(value)) };
  if (NUMERIC_VRS.has(tag.vr)) {
    return { vr: tag.vr, Value: values.map((value) => Number(value)).filter((value) => Number.isFinite(value)) };
  }
  return { vr: tag.vr, Value: values };
}

/** The attributes of a result: defaults of each returned level, includefield, filtered and path attributes. */
export function returnedTags(query: SearchQuery): TagDef[] {
  const levels: readonly Level[] = levelsOf(query.resource);
  const tags = new Set<TagDef>();
  for (const level of levels) for (const tag of (query.includeAll ? ALL_RETURN : DEFAULT_RETURN)[level]) tags.add(tag);
  for (const tag of query.include) tags.add(tag);
  for (const filter of query.filters) tags.add(filter.attribute.tag);
  tags.add(Tag.StudyInstanceUID);
  if (query.resource.level !== 'study') tags.add(Tag.SeriesInstanceUID);
  if (query.resource.level === 'instance') tags.add(Tag.SOPInstanceUID);
  return [...tags].sort((a, b) => compareText(a.tag, b.tag));
}

function valueOf(tag: TagDef, match: SearchMatch, urls: ResourceUrls): string | number | undefined {
  const { study, series, instance } = match;
  switch (tag.keyword) {
    case 'ModalitiesInStudy':
      return study.modalities.join('\\');
    case 'NumberOfStudyRelatedSeries':
      return study.numberOfSeries;
    case 'NumberOfStudyRelatedInstances':
      return study.numberOfInstances;
    case 'NumberOfSeriesRelatedInstances':
      return series?.numberOfInstances;
    case 'InstanceAvailability':
      return 'ONLINE';
    case 'StudyInstanceUID':
      return study.studyInstanceUid;
    case 'SeriesInstanceUID':
      return series?.seriesInstanceUid;
    case 'SOPInstanceUID':
      return instance?.sopInstanceUid;
    case 'SOPClassUID':
      return instance?.sopClassUid;
    case 'RetrieveURL':
      if (instance) return urls.instance(instance);
      if (series) return urls.series(study.studyInstanceUid, series.seriesInstanceUid);
      return urls.study(study.studyInstanceUid);
    default:
      return instance?.instance[tag.keyword] ?? series?.attributes[tag.keyword] ?? study.attributes[tag.keyword];
  }
}

export function searchResponseBody(
  matches: readonly SearchMatch[],
  query: SearchQuery,
  urls: ResourceUrls,
): DicomJsonDataset[] {
  const tags = returnedTags(query);
  return matches.map((match) => {
    const dataset: DicomJsonDataset = {};
    for (const tag of tags) {
      // An attribute of a level below the result (e.g. Modality on a study) has no single value.
      if (tag === Tag.RetrieveURL || levelHolds(tag, match))
        dataset[tag.tag] = jsonValue(tag, valueOf(tag, match, urls));
    }
    return dataset;
  });
}

/** A tag of the study level has a value in every result; one of a lower level only in results of that level. */
function levelHolds(tag: TagDef, match: SearchMatch): boolean {
  if (DEFAULT_RETURN.study.includes(tag) || tag === Tag.StudyInstanceUID) return true;
  if (DEFAULT_RETURN.series.includes(tag) || tag === Tag.SeriesInstanceUID) return match.series !== undefined;
  if (DEFAULT_RETURN.instance.includes(tag) || tag === Tag.SOPInstanceUID) return match.instance !== undefined;
  return true;
}
