/**
 * The attributes this server reads from a stored instance's header. Tags are dicom-parser's
 * lowercase `xggggeeee` form; the VR is needed for implicit VR little endian, which carries none.
 */
export interface TagDef {
  readonly keyword: string;
  /** Eight uppercase hex digits, as in DICOM JSON. */
  readonly tag: string;
  readonly vr: string;
}

function def(keyword: string, tag: string, vr: string): TagDef {
  return { keyword, tag, vr };
}

export const Tag = {
  TransferSyntaxUID: def('TransferSyntaxUID', '00020010', 'UI'),
  SpecificCharacterSet: def('SpecificCharacterSet', '00080005', 'CS'),
  SOPClassUID: def('SOPClassUID', '00080016', 'UI'),
  SOPInstanceUID: def('SOPInstanceUID', '00080018', 'UI'),
  StudyDate: def('StudyDate', '00080020', 'DA'),
  StudyTime: def('StudyTime', '00080030', 'TM'),
  AccessionNumber: def('AccessionNumber', '00080050', 'SH'),
  Modality: def('Modality', '00080060', 'CS'),
  ReferringPhysicianName: def('ReferringPhysicianName', '00080090', 'PN'),
  StudyDescription: def('StudyDescription', '00081030', 'LO'),
  SeriesDescription: def('SeriesDescription', '0008103E', 'LO'),
  ManufacturerModelName: def('ManufacturerModelName', '00081090', 'LO'),
  PatientName: def('PatientName', '00100010', 'PN'),
  PatientID: def('PatientID', '00100020', 'LO'),
  PatientBirthDate: def('PatientBirthDate', '00100030', 'DA'),
  PatientSex: def('PatientSex', '00100040', 'CS'),
  StudyInstanceUID: def('StudyInstanceUID', '0020000D', 'UI'),
  SeriesInstanceUID: def('SeriesInstanceUID', '0020000E', 'UI'),
  StudyID: def('StudyID', '00200010', 'SH'),
  SeriesNumber: def('SeriesNumber', '00200011', 'IS'),
  InstanceNumber: def('InstanceNumber', '00200013', 'IS'),
  SamplesPerPixel: def('SamplesPerPixel', '00280002', 'US'),
  NumberOfFrames: def('NumberOfFrames', '00280008', 'IS'),
  Rows: def('Rows', '00280010', 'US'),
  Columns: def('Columns', '00280011', 'US'),
  BitsAllocated: def('BitsAllocated', '00280100', 'US'),
  PerformedProcedureStepStartDate: def('PerformedProcedureStepStartDate', '00400244', 'DA'),
  PixelData: def('PixelData', '7FE00010', 'OB'),
  ModalitiesInStudy: def('ModalitiesInStudy', '00080061', 'CS'),
  InstanceAvailability: def('InstanceAvailability', '00080056', 'CS'),
  RetrieveURL: def('RetrieveURL', '00081190', 'UR'),
  NumberOfStudyRelatedSeries: def('NumberOfStudyRelatedSeries', '00201206', 'IS'),
  NumberOfStudyRelatedInstances: def('NumberOfStudyRelatedInstances', '00201208', 'IS'),
  NumberOfSeriesRelatedInstances: def('NumberOfSeriesRelatedInstances', '00201209', 'IS'),
  TimezoneOffsetFromUTC: def('TimezoneOffsetFromUTC', '00080201', 'SH'),
  PerformedProcedureStepStartTime: def('PerformedProcedureStepStartTime', '00400245', 'TM'),
} as const satisfies Record<string, TagDef>;

export type TagKeyword = keyof typeof Tag;

/** dicom-parser's element key for a tag. */
export function parserKey(tag: TagDef): string {
  return `x${tag.tag.toLowerCase()}`;
}

const BY_KEYWORD = new Map<string, TagDef>(Object.values(Tag).map((tag) => [tag.keyword, tag]));
const BY_TAG = new Map<string, TagDef>(Object.values(Tag).map((tag) => [tag.tag, tag]));

/** A tag by keyword (case-sensitive, as in PS3.6) or by eight hex digits. */
export function lookupTag(id: string): TagDef | undefined {
  return /^[0-9A-Fa-f]{8}$/.test(id) ? BY_TAG.get(id.toUpperCase()) : BY_KEYWORD.get(id);
}
