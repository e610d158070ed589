/**
 * A STOW-RS answer (200, 202, 409) read into one typed outcome per instance: ReferencedSOPSequence
 * items are stored (WarningReason when the server warned), FailedSOPSequence items failed with a
 * FailureReason; 45070 (already stored) is its own outcome, since a resumed or repeated upload
 * expects it.
 */
import { number, sequence, Tags, text, texts, type DicomJsonDataset } from './dicom-json.js';

/** FailureReason 0xB00E: the same Study, Series and SOP Instance UIDs are already stored. */
export const ALREADY_STORED = 45070;

export type InstanceStatus = 'stored' | 'already-stored' | 'failed';

export interface InstanceOutcome {
  readonly status: InstanceStatus;
  readonly sopInstanceUid?: string | undefined;
  readonly sopClassUid?: string | undefined;
  readonly retrieveUrl?: string | undefined;
  /** PS3.4 failure code (FailureReason, 0008,1197), on `failed` and `already-stored`. */
  readonly failureReason?: number | undefined;
  /** WarningReason (0008,1196) of a stored instance. */
  readonly warningReason?: number | undefined;
  /** The ErrorComments of FailedAttributesSequence, or the request's error message. */
  readonly comments: readonly string[];
}

export interface StoreResult {
  /** 200 all stored, 202 some failed or warned, 409 none stored, 204 empty request. */
  readonly httpStatus: number;
  /** The study's RetrieveURL when the request named a study. */
  readonly retrieveUrl?: string | undefined;
  /** Stored instances first, then failed ones, each in the order the server listed them. */
  readonly instances: readonly InstanceOutcome[];
}

function comments(item: DicomJsonDataset): string[] {
  return sequence(item, Tags.FailedAttributesSequence).flatMap((attribute) => texts(attribute, Tags.ErrorComment));
}

function outcome(item: DicomJsonDataset, failed: boolean): InstanceOutcome {
  const failureReason = failed ? number(item, Tags.FailureReason) : undefined;
  return {
    status: !failed ? 'stored' : failureReason === ALREADY_STORED ? 'already-stored' : 'failed',
    sopInstanceUid: text(item, Tags.ReferencedSOPInstanceUID),
    sopClassUid: text(item, Tags.ReferencedSOPClassUID),
    retrieveUrl: text(item, Tags.RetrieveURL),
    failureReason,
    warningReason: failed ? undefined : number(item, Tags.WarningReason),
    comments: comments(item),
  };
}

export function storeResult(httpStatus: number, body: DicomJsonDataset | undefined): StoreResult {
  if (!body) return { httpStatus, instances: [] };
  return {
    httpStatus,
    retrieveUrl: text(body, Tags.RetrieveURL),
    instances: [
      ...sequence(body, Tags.ReferencedSOPSequence).map((item) => outcome(item, false)),
      ...sequence(body, Tags.FailedSOPSequence).map((item) => outcome(item, true)),
    ],
  };
}

/** PS3.4 names of the codes the server sends, for tables and messages. */
const REASONS: Readonly<Record<number, string>> = {
  272: 'processing failure',
  43264: 'not a valid DICOM instance',
  43265: 'study UID differs from the request',
  45063: 'data set does not match SOP class',
  45070: 'already stored',
  1: 'attributes not indexed',
};

export function describeReason(code: number): string {
  const hex = `0x${code.toString(16).toUpperCase().padStart(4, '0')}`;
  const name = REASONS[code];
  return name ? `${code} (${hex}) ${name}` : `${code} (${hex})`;
}
