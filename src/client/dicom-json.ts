/**
 * Reading the DICOM JSON model (PS3.18 Annex F) that the server answers: a data set is an object
 * keyed by eight-digit tags. These helpers read one attribute as the type a caller wants.
 */
export interface DicomJsonAttribute {
  readonly vr: string;
  readonly Value?: readonly unknown[];
  readonly BulkDataURI?: string;
  readonly InlineBinary?: string;
}

export type DicomJsonDataset = Readonly<Record<string, DicomJsonAttribute | undefined>>;

/** The tags the typed results read (PS3.6 keywords). */
export const Tags = {
  SpecificCharacterSet: '00080005',
  StudyDate: '00080020',
  StudyTime: '00080030',
  AccessionNumber: '00080050',
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  Modality: '00080060',
  ModalitiesInStudy: '00080061',
  ReferringPhysicianName: '00080090',
  StudyDescription: '00081030',
  SeriesDescription: '0008103E',
  ManufacturerModelName: '00081090',
  RetrieveURL: '00081190',
  WarningReason: '00081196',
  FailureReason: '00081197',
  FailedSOPSequence: '00081198',
  ReferencedSOPSequence: '00081199',
  ReferencedSOPClassUID: '00081150',
  ReferencedSOPInstanceUID: '00081155',
  PatientName: '00100010',
  PatientID: '00100020',
  PatientBirthDate: '00100030',
  PatientSex: '00100040',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  StudyID: '00200010',
  SeriesNumber: '00200011',
  InstanceNumber: '00200013',
  NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208',
  NumberOfSeriesRelatedInstances: '00201209',
  NumberOfFrames: '00280008',
  Rows: '00280010',
  Columns: '00280011',
  BitsAllocated: '00280100',
  PerformedProcedureStepStartDate: '00400244',
  FailedAttributesSequence: '00741048',
  ErrorComment: '00000902',
} as const;

function values(dataset: DicomJsonDataset, tag: string): readonly unknown[] {
  return dataset[tag]?.Value ?? [];
}

/** A person name's alphabetic group, or a plain string value. */
function asText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (value && typeof value === 'object' && 'Alphabetic' in value) {
    const alphabetic = (value as { Alphabetic?: unknown }).Alphabetic;
    return typeof alphabetic === 'string' ? alphabetic : undefined;
  }
  return undefined;
}

/** The first value as text (PN: its alphabetic group); values of a multi-valued attribute joined by `\`. */
export function text(dataset: DicomJsonDataset, tag: string): string | undefined {
  const found = values(dataset, tag)
    .map(asText)
    .filter((value) => value !== undefined);
  return found.length === 0 ? undefined : found.join('\\');
}

export function texts(dataset: DicomJsonDataset, tag: string): string[] {
  return values(dataset, tag)
    .map(asText)
    .filter((value) => value !== undefined);
}

export function number(dataset: DicomJsonDataset, tag: string): number | undefined {
  const value = values(dataset, tag)[0];
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value))) return Number(value);
  return undefined;
}

export function sequence(dataset: DicomJsonDataset, tag: string): DicomJsonDataset[] {
  return values(dataset, tag).filter((item): item is DicomJsonDataset => typeof item === 'object' && item !== null);
}
