import { DicomAttributes } from '../dicom/attributes.js';
import { Tag, type TagDef } from '../dicom/tags.js';
import { isValidUid, uidProblem } from '../dicom/uid.js';
import { vrProblem } from '../dicom/vr.js';
import type { InstanceKey } from '../storage/ports.js';
import type { ApiVersion } from './api-version.js';
import { FailureReason, VALIDATION_ERROR_NUMBER, type FailureReasonCode } from './failure-codes.js';

/** Indexed attributes at each level: the Azure service's searchable set plus the usual return keys. */
export const StudyAttributes: readonly TagDef[] = [
  Tag.PatientName,
  Tag.PatientID,
  Tag.PatientBirthDate,
  Tag.PatientSex,
  Tag.AccessionNumber,
  Tag.ReferringPhysicianName,
  Tag.StudyDate,
  Tag.StudyTime,
  Tag.StudyDescription,
  Tag.StudyID,
];
export const SeriesAttributes: readonly TagDef[] = [
  Tag.Modality,
  Tag.PerformedProcedureStepStartDate,
  Tag.PerformedProcedureStepStartTime,
  Tag.ManufacturerModelName,
  Tag.SeriesNumber,
  Tag.SeriesDescription,
];
export const InstanceAttributes: readonly TagDef[] = [
  Tag.InstanceNumber,
  Tag.Rows,
  Tag.Columns,
  Tag.BitsAllocated,
  Tag.SamplesPerPixel,
  Tag.NumberOfFrames,
];

export interface ValidInstance {
  readonly key: InstanceKey;
  readonly sopClassUid: string;
  readonly study: Record<string, string>;
  readonly series: Record<string, string>;
  readonly instance: Record<string, string>;
  readonly numberOfFrames: number | undefined;
  /** ErrorComments of attributes that were invalid and are therefore not searchable (v2 stores anyway). */
  readonly problems: readonly string[];
}

export interface InvalidInstance {
  readonly reason: FailureReasonCode;
  /** ErrorComments naming each attribute at fault, or the reason the file is unreadable. */
  readonly problems: readonly string[];
  /** What the response can still name, when the header had it. */
  readonly sopClassUid?: string | undefined;
  readonly sopInstanceUid?: string | undefined;
}

const REQUIRED_UIDS = [Tag.StudyInstanceUID, Tag.SeriesInstanceUID, Tag.SOPInstanceUID, Tag.SOPClassUID];

/**
 * Checks what the Azure DICOM service checks at store time. The three instance UIDs and the SOP
 * Class UID are required and must be valid UIDs; PatientID must be present (v1: with a value);
 * a study UID in the path must match. Indexed attributes must be valid for their VR: v1 fails the
 * instance, v2 stores it with a warning and leaves the attribute out of the index.
 */
export function validateInstance(
  attributes: DicomAttributes,
  apiVersion: ApiVersion,
  pathStudyUid: string | undefined,
): ValidInstance | InvalidInstance {
  const sopClassUid = attributes.string(Tag.SOPClassUID);
  const sopInstanceUid = attributes.string(Tag.SOPInstanceUID);
  const named = {
    sopClassUid: isValidUid(sopClassUid) ? sopClassUid : undefined,
    sopInstanceUid: isValidUid(sopInstanceUid) ? sopInstanceUid : undefined,
  };
  const fail = (reason: FailureReasonCode, tag: TagDef, message: string): InvalidInstance => ({
    reason,
    problems: [errorComment(tag, message)],
    ...named,
  });
  for (const tag of REQUIRED_UIDS) {
    const value = attributes.string(tag);
    if (value === undefined)
      return fail(FailureReason.ValidationFailure, tag, `The required attribute ${tag.keyword} is missing or empty.`);
    if (!isValidUid(value)) {
      return fail(
        FailureReason.ValidationFailure,
        tag,
        `${tag.keyword} "${printable(value)}" is not a valid UID: ${uidProblem(value)}.`,
      );
    }
  }
  const key: InstanceKey = {
    studyInstanceUid: attributes.string(Tag.StudyInstanceUID) ?? '',
    seriesInstanceUid: attributes.string(Tag.SeriesInstanceUID) ?? '',
    sopInstanceUid: sopInstanceUid ?? '',
  };
  if (pathStudyUid !== undefined && key.studyInstanceUid !== pathStudyUid) {
    return fail(
      FailureReason.StudyInstanceUidMismatch,
      Tag.StudyInstanceUID,
      `The instance belongs to study ${key.studyInstanceUid}, not to study ${pathStudyUid} named in the request URL.`,
    );
  }
  const problems: string[] = [];
  const patientId = attributes.string(Tag.PatientID);
  if (!attributes.has(Tag.PatientID) || (apiVersion === 'v1' && patientId === undefined)) {
    return fail(
      FailureReason.ValidationFailure,
      Tag.PatientID,
      'The required attribute PatientID is missing or empty.',
    );
  }
  if (patientId === undefined) problems.push(errorComment(Tag.PatientID, 'The required attribute PatientID is empty.'));
  let failure: InvalidInstance | undefined;
  const collect = (tags: readonly TagDef[]): Record<string, string> => {
    const values: Record<string, string> = {};
    for (const tag of tags) {
      const value = attributes.string(tag);
      if (value === undefined) continue;
      const problem = vrProblem(tag.vr, value);
      if (problem === undefined) {
        values[tag.keyword] = value;
        continue;
      }
      const message = `${tag.keyword} value "${printable(value)}" ${problem}.`;
      if (tag === Tag.PatientID || apiVersion === 'v1') failure ??= fail(FailureReason.ValidationFailure, tag, message);
      else problems.push(errorComment(tag, message));
    }
    return values;
  };
  const study = collect(StudyAttributes);
  const series = collect(SeriesAttributes);
  const instance = collect(InstanceAttributes);
  if (failure) return failure;
  return {
    key,
    sopClassUid: sopClassUid ?? '',
    study,
    series,
    instance,
    numberOfFrames: attributes.number(Tag.NumberOfFrames),
    problems,
  };
}

/** Azure's ErrorComment form: `DICOM100: (0008,0020) - what is wrong`. */
export function errorComment(tag: TagDef, message: string): string {
  const lower = tag.tag.toLowerCase();
  return `${VALIDATION_ERROR_NUMBER}: (${lower.slice(0, 4)},${lower.slice(4)}) - ${message}`;
}

/** Quotes untrusted text in a message without control characters or unbounded length. */
function printable(value: string): string {
  const clean = value.replace(/\p{Cc}/gu, '?');
  return clean.length > 80 ? `${clean.slice(0, 80)}…` : clean;
}

export function isInvalid(result: ValidInstance | InvalidInstance): result is InvalidInstance {
  return 'reason' in result;
}
