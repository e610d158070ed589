/**
 * The body of `POST /studies/$bulkUpdate`, checked as the Azure service checks it: the studies
 * (at most MAX_BULK_UPDATE_STUDIES, valid UIDs) and a change data set in DICOM JSON of the
 * patient- and study-level attributes it allows, each with one non-empty value.
 */
import { dictionaryEntry } from '../dicom/dictionary.js';
import { isValidUid, uidProblem } from '../dicom/uid.js';
import type { AttributeChange } from '../storage/ports.js';
import { DicomwebError } from './errors.js';

/** The Azure service's limit of studies per operation. */
export const MAX_BULK_UPDATE_STUDIES = 50;

/**
 * Attributes a bulk update may change, by tag: the Azure service's list (microsoft/dicom-server
 * src/Microsoft.Health.Dicom.Core/Features/Update/UpdateTags.cs, UpdateStudyFilterTags; its
 * docs/concepts/bulk-update.md): the Patient Identification and Demographic modules' attributes and
 * three of the General Study module's, none a sequence. UIDs are not among them.
 */
export const UPDATABLE_ATTRIBUTES: ReadonlySet<string> = new Set([
  // Patient Identification
  '00100010', // PatientName
  '00100020', // PatientID
  '00101000', // OtherPatientIDs (retired)
  '00100022', // TypeOfPatientID
  '00101001', // OtherPatientNames
  '00101005', // PatientBirthName
  '00101060', // PatientMotherBirthName
  '00101090', // MedicalRecordLocator (retired)
  '00100021', // IssuerOfPatientID
  // Patient Demographic
  '00101010', // PatientAge
  '00102180', // Occupation
  '00403001', // ConfidentialityConstraintOnPatientDataDescription
  '00100030', // PatientBirthDate
  '00100032', // PatientBirthTime
  '00100040', // PatientSex
  '00100200', // QualityControlSubject
  '00101020', // PatientSize
  '00101030', // PatientWeight
  '00101040', // PatientAddress
  '00101080', // MilitaryRank
  '00101081', // BranchOfService
  '00102150', // CountryOfResidence
  '00102152', // RegionOfResidence
  '00102154', // PatientTelephoneNumbers
  '00102160', // EthnicGroup
  '001021F0', // PatientReligiousPreference
  '00104000', // PatientComments
  '00102297', // ResponsiblePerson
  '00102298', // ResponsiblePersonRole
  '00102299', // ResponsibleOrganization
  '00102201', // PatientSpeciesDescription
  '00102292', // PatientBreedDescription
  '00102295', // BreedRegistrationNumber
  // General Study
  '00080050', // AccessionNumber
  '00080090', // ReferringPhysicianName
  '00081030', // StudyDescription
]);

/** Longest value per VR (PS3.5 6.2; PN per component group). */
const MAX_LENGTH: Readonly<Record<string, number>> = {
  AS: 4,
  CS: 16,
  DA: 8,
  DS: 16,
  LO: 64,
  LT: 10240,
  PN: 64,
  SH: 16,
  ST: 1024,
  TM: 14,
  UT: 0xfffffffe,
};

const FORMAT: Readonly<Record<string, { pattern: RegExp; what: string }>> = {
  AS: { pattern: /^\d{3}[DWMY]$/, what: 'an age like 042Y' },
  CS: { pattern: /^[A-Z0-9_ ]*$/, what: 'upper-case letters, digits, space and underscore' },
  DA: { pattern: /^\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$/, what: 'a date YYYYMMDD' },
  DS: { pattern: /^ *[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)? *$/, what: 'a decimal number' },
  TM: { pattern: /^([01]\d|2[0-3])([0-5]\d([0-5]\d(\.\d{1,6})?)?)?$/, what: 'a time HHMMSS.FFFFFF' },
};

export interface BulkUpdateRequest {
  readonly studyInstanceUids: readonly string[];
  readonly changes: readonly AttributeChange[];
}

function bad(message: string): DicomwebError {
  return new DicomwebError('BadRequest', message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses and checks the request body; 400 with what to fix for anything it does not accept. */
export function parseBulkUpdateRequest(text: string): BulkUpdateRequest {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw bad('The request body is not valid JSON.');
  }
  if (!isObject(body)) throw bad('The request body must be a JSON object with studyInstanceUids and changeDataset.');
  const studies = body['studyInstanceUids'];
  if (!Array.isArray(studies) || studies.length === 0) {
    throw bad('studyInstanceUids must be a non-empty array of Study Instance UIDs.');
  }
  if (studies.length > MAX_BULK_UPDATE_STUDIES) {
    throw bad(
      `At most ${MAX_BULK_UPDATE_STUDIES} studies can be updated in one operation; ${studies.length} were given.`,
    );
  }
  const studyInstanceUids: string[] = [];
  for (const uid of studies) {
    if (typeof uid !== 'string' || !isValidUid(uid)) {
      throw bad(
        `studyInstanceUids holds ${JSON.stringify(uid)}: ${typeof uid === 'string' ? uidProblem(uid) : 'not a string'}.`,
      );
    }
    if (!studyInstanceUids.includes(uid)) studyInstanceUids.push(uid);
  }
  const dataset = body['changeDataset'];
  if (!isObject(dataset) || Object.keys(dataset).length === 0) {
    throw bad('changeDataset must be a DICOM JSON object with at least one attribute.');
  }
  const changes: AttributeChange[] = [];
  const failures: AttributeFailure[] = [];
  for (const [key, element] of Object.entries(dataset)) {
    try {
      changes.push(changeOf(key, element));
    } catch (error) {
      if (!(error instanceof DicomwebError)) throw error;
      failures.push({ tag: key, message: error.message });
    }
  }
  if (failures.length > 0) throw new ChangeDatasetError(failures);
  return { studyInstanceUids, changes };
}

/** One attribute of the change data set that cannot be applied, and why. */
export interface AttributeFailure {
  /** The key as the request wrote it. */
  readonly tag: string;
  readonly message: string;
}

/**
 * The change data set holds attributes that cannot be applied: 400 listing every one of them,
 * as the Azure service does (UpdateRequestValidator.ValidateDicomDataset: the errors of all
 * attributes, not just the first); src/http/bulk-update-handler.ts writes them as its data set.
 */
export class ChangeDatasetError extends DicomwebError {
  constructor(readonly failures: readonly AttributeFailure[]) {
    super('BadRequest', failures.map((failure) => failure.message).join(' '));
  }
}

function changeOf(key: string, element: unknown): AttributeChange {
  const tag = key.toUpperCase();
  const entry = /^[0-9A-F]{8}$/.test(tag) ? dictionaryEntry(tag) : undefined;
  const name = entry ? `${entry.keyword} (${tag})` : key;
  if (!entry || !UPDATABLE_ATTRIBUTES.has(tag)) {
    throw bad(
      `changeDataset: ${name} cannot be updated; only these patient and study attributes can: ${[
        ...UPDATABLE_ATTRIBUTES,
      ]
        .map((each) => dictionaryEntry(each)?.keyword ?? each)
        .join(', ')}.`,
    );
  }
  if (!isObject(element) || element['vr'] !== entry.vr) {
    throw bad(`changeDataset: ${name} must be an object with "vr": "${entry.vr}".`);
  }
  const values = element['Value'];
  if (!Array.isArray(values) || values.length !== 1 || values[0] === null || values[0] === undefined) {
    throw bad(`changeDataset: ${name} must have exactly one value (an attribute cannot be set to empty).`);
  }
  const value = textOf(entry.vr, values[0], name);
  // Non-ASCII text is written in each file's own character set (change-attributes.ts); control
  // characters and the backslash (DICOM's value separator) are never a single value.
  if (hasControlCharacter(value) || value.includes('\\')) {
    throw bad(`changeDataset: ${name} may not hold control characters or a backslash.`);
  }
  const format = FORMAT[entry.vr];
  if (format && !format.pattern.test(value)) throw bad(`changeDataset: ${name} must be ${format.what}.`);
  const limit = MAX_LENGTH[entry.vr] ?? 64;
  const longest = Math.max(...value.split('=').map((group) => group.length));
  if ((entry.vr === 'PN' ? longest : value.length) > limit) {
    throw bad(`changeDataset: ${name} is longer than the ${limit} characters its VR ${entry.vr} allows.`);
  }
  return { tag, vr: entry.vr, value };
}

/** A DICOM JSON value (PS3.18 F.2) as DICOM text: PN objects as their component groups, numbers as text. */
/** C0 controls other than tab, line feed, form feed and carriage return, and DEL. */
function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i += 1) {
    const code = value.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0c && code !== 0x0d) || code === 0x7f) return true;
  }
  return false;
}

function textOf(vr: string, value: unknown, name: string): string {
  if (vr === 'PN') {
    if (!isObject(value))
      throw bad(`changeDataset: ${name} must be a person name object like {"Alphabetic": "Doe^Jane"}.`);
    const groups = ['Alphabetic', 'Ideographic', 'Phonetic'].map((group) => value[group] ?? '');
    if (groups.some((group) => typeof group !== 'string') || groups.every((group) => group === '')) {
      throw bad(`changeDataset: ${name} must have a non-empty Alphabetic, Ideographic or Phonetic string.`);
    }
    return (groups as string[]).join('=').replace(/=+$/, '');
  }
  if (vr === 'DS' && typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string' || value.trim() === '') {
    throw bad(`changeDataset: ${name} must be a non-empty string.`);
  }
  return value;
}
