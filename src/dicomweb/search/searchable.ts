import { Tag, type TagDef } from '../../dicom/tags.js';

export type Level = 'study' | 'series' | 'instance';

/** How a query value is matched (PS3.4 C.2.2.2, PS3.18 §8.3.4). */
export type MatchKind = 'uid' | 'date' | 'time' | 'name' | 'code' | 'text';

export interface SearchAttribute {
  readonly tag: TagDef;
  readonly level: Level;
  readonly match: MatchKind;
}

const attr = (tag: TagDef, level: Level, match: MatchKind): SearchAttribute => ({ tag, level, match });

/** Every attribute a search can filter on: the Azure service's set and a few more we index. */
export const SEARCHABLE: readonly SearchAttribute[] = [
  attr(Tag.StudyInstanceUID, 'study', 'uid'),
  attr(Tag.PatientName, 'study', 'name'),
  attr(Tag.PatientID, 'study', 'text'),
  attr(Tag.PatientBirthDate, 'study', 'date'),
  attr(Tag.PatientSex, 'study', 'code'),
  attr(Tag.AccessionNumber, 'study', 'text'),
  attr(Tag.ReferringPhysicianName, 'study', 'name'),
  attr(Tag.StudyDate, 'study', 'date'),
  attr(Tag.StudyTime, 'study', 'time'),
  attr(Tag.StudyDescription, 'study', 'text'),
  attr(Tag.StudyID, 'study', 'text'),
  attr(Tag.ModalitiesInStudy, 'study', 'code'),
  attr(Tag.SeriesInstanceUID, 'series', 'uid'),
  attr(Tag.Modality, 'series', 'code'),
  attr(Tag.PerformedProcedureStepStartDate, 'series', 'date'),
  attr(Tag.ManufacturerModelName, 'series', 'text'),
  attr(Tag.SeriesNumber, 'series', 'text'),
  attr(Tag.SeriesDescription, 'series', 'text'),
  attr(Tag.SOPInstanceUID, 'instance', 'uid'),
  attr(Tag.SOPClassUID, 'instance', 'uid'),
  attr(Tag.InstanceNumber, 'instance', 'text'),
];

/** Attributes returned by default (PS3.18 Tables 10.6.3-3 to -5, and the Azure v2 defaults). */
export const DEFAULT_RETURN: Readonly<Record<Level, readonly TagDef[]>> = {
  study: [
    Tag.StudyDate,
    Tag.StudyTime,
    Tag.AccessionNumber,
    Tag.InstanceAvailability,
    Tag.ModalitiesInStudy,
    Tag.ReferringPhysicianName,
    Tag.RetrieveURL,
    Tag.PatientName,
    Tag.PatientID,
    Tag.PatientBirthDate,
    Tag.PatientSex,
    Tag.StudyID,
    Tag.StudyInstanceUID,
    Tag.StudyDescription,
    Tag.NumberOfStudyRelatedSeries,
    Tag.NumberOfStudyRelatedInstances,
  ],
  series: [
    Tag.Modality,
    Tag.SeriesDescription,
    Tag.RetrieveURL,
    Tag.SeriesInstanceUID,
    Tag.SeriesNumber,
    Tag.NumberOfSeriesRelatedInstances,
    Tag.PerformedProcedureStepStartDate,
    Tag.PerformedProcedureStepStartTime,
    Tag.ManufacturerModelName,
  ],
  instance: [
    Tag.SOPClassUID,
    Tag.SOPInstanceUID,
    Tag.InstanceAvailability,
    Tag.RetrieveURL,
    Tag.InstanceNumber,
    Tag.Rows,
    Tag.Columns,
    Tag.BitsAllocated,
    Tag.NumberOfFrames,
  ],
};

/** Everything `includefield=all` can add at a level: all that the index holds there. */
export const ALL_RETURN: Readonly<Record<Level, readonly TagDef[]>> = {
  study: [...DEFAULT_RETURN.study],
  series: [...DEFAULT_RETURN.series],
  instance: [...DEFAULT_RETURN.instance],
};

/** The search resources of PS3.18 §10.6 and which levels' attributes each can filter on and returns. */
export interface SearchResource {
  readonly level: Level;
  readonly studyInstanceUid?: string | undefined;
  readonly seriesInstanceUid?: string | undefined;
}

export function levelsOf(resource: SearchResource): readonly Level[] {
  if (resource.level === 'study') return ['study'];
  if (resource.level === 'series') return resource.studyInstanceUid ? ['series'] : ['study', 'series'];
  if (resource.seriesInstanceUid) return ['instance'];
  return resource.studyInstanceUid ? ['series', 'instance'] : ['study', 'series', 'instance'];
}
