/** QIDO-RS results as typed objects: the attributes the server returns by default, plus the data set itself. */
import { number, Tags, text, texts, type DicomJsonDataset } from './dicom-json.js';

export interface StudyResult {
  readonly studyInstanceUid: string;
  readonly patientName?: string | undefined;
  readonly patientId?: string | undefined;
  readonly patientBirthDate?: string | undefined;
  readonly patientSex?: string | undefined;
  readonly accessionNumber?: string | undefined;
  readonly referringPhysicianName?: string | undefined;
  readonly studyDate?: string | undefined;
  readonly studyTime?: string | undefined;
  readonly studyDescription?: string | undefined;
  readonly studyId?: string | undefined;
  readonly modalitiesInStudy: readonly string[];
  readonly numberOfStudyRelatedSeries?: number | undefined;
  readonly numberOfStudyRelatedInstances?: number | undefined;
  readonly retrieveUrl?: string | undefined;
  /** The whole DICOM JSON data set (includefield attributes too). */
  readonly dataset: DicomJsonDataset;
}

export interface SeriesResult {
  readonly studyInstanceUid?: string | undefined;
  readonly seriesInstanceUid: string;
  readonly modality?: string | undefined;
  readonly seriesNumber?: number | undefined;
  readonly seriesDescription?: string | undefined;
  readonly performedProcedureStepStartDate?: string | undefined;
  readonly manufacturerModelName?: string | undefined;
  readonly numberOfSeriesRelatedInstances?: number | undefined;
  readonly retrieveUrl?: string | undefined;
  readonly dataset: DicomJsonDataset;
}

export interface InstanceResult {
  readonly studyInstanceUid?: string | undefined;
  readonly seriesInstanceUid?: string | undefined;
  readonly sopInstanceUid: string;
  readonly sopClassUid?: string | undefined;
  readonly instanceNumber?: number | undefined;
  readonly rows?: number | undefined;
  readonly columns?: number | undefined;
  readonly bitsAllocated?: number | undefined;
  readonly numberOfFrames?: number | undefined;
  readonly retrieveUrl?: string | undefined;
  readonly dataset: DicomJsonDataset;
}

export type SearchLevel = 'studies' | 'series' | 'instances';

export interface SearchResults {
  studies: StudyResult;
  series: SeriesResult;
  instances: InstanceResult;
}

export function studyResult(dataset: DicomJsonDataset): StudyResult {
  return {
    studyInstanceUid: text(dataset, Tags.StudyInstanceUID) ?? '',
    patientName: text(dataset, Tags.PatientName),
    patientId: text(dataset, Tags.PatientID),
    patientBirthDate: text(dataset, Tags.PatientBirthDate),
    patientSex: text(dataset, Tags.PatientSex),
    accessionNumber: text(dataset, Tags.AccessionNumber),
    referringPhysicianName: text(dataset, Tags.ReferringPhysicianName),
    studyDate: text(dataset, Tags.StudyDate),
    studyTime: text(dataset, Tags.StudyTime),
    studyDescription: text(dataset, Tags.StudyDescription),
    studyId: text(dataset, Tags.StudyID),
    modalitiesInStudy: texts(dataset, Tags.ModalitiesInStudy),
    numberOfStudyRelatedSeries: number(dataset, Tags.NumberOfStudyRelatedSeries),
    numberOfStudyRelatedInstances: number(dataset, Tags.NumberOfStudyRelatedInstances),
    retrieveUrl: text(dataset, Tags.RetrieveURL),
    dataset,
  };
}

export function seriesResult(dataset: DicomJsonDataset): SeriesResult {
  return {
    studyInstanceUid: text(dataset, Tags.StudyInstanceUID),
    seriesInstanceUid: text(dataset, Tags.SeriesInstanceUID) ?? '',
    modality: text(dataset, Tags.Modality),
    seriesNumber: number(dataset, Tags.SeriesNumber),
    seriesDescription: text(dataset, Tags.SeriesDescription),
    performedProcedureStepStartDate: text(dataset, Tags.PerformedProcedureStepStartDate),
    manufacturerModelName: text(dataset, Tags.ManufacturerModelName),
    numberOfSeriesRelatedInstances: number(dataset, Tags.NumberOfSeriesRelatedInstances),
    retrieveUrl: text(dataset, Tags.RetrieveURL),
    dataset,
  };
}

export function instanceResult(dataset: DicomJsonDataset): InstanceResult {
  return {
    studyInstanceUid: text(dataset, Tags.StudyInstanceUID),
    seriesInstanceUid: text(dataset, Tags.SeriesInstanceUID),
    sopInstanceUid: text(dataset, Tags.SOPInstanceUID) ?? '',
    sopClassUid: text(dataset, Tags.SOPClassUID),
    instanceNumber: number(dataset, Tags.InstanceNumber),
    rows: number(dataset, Tags.Rows),
    columns: number(dataset, Tags.Columns),
    bitsAllocated: number(dataset, Tags.BitsAllocated),
    numberOfFrames: number(dataset, Tags.NumberOfFrames),
    retrieveUrl: text(dataset, Tags.RetrieveURL),
    dataset,
  };
}

export const RESULT_READERS: { [L in SearchLevel]: (dataset: DicomJsonDataset) => SearchResults[L] } = {
  studies: studyResult,
  series: seriesResult,
  instances: instanceResult,
};
