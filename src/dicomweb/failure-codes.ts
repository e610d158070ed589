/**
 * STOW-RS per-instance failure and warning reasons (PS3.4 Annex B, PS3.18 §10.5.3) with the
 * values the Azure DICOM service uses. docs/conformance.md lists each; a unit test keeps the two in step.
 */
export const FailureReason = {
  /** 0x0110: processing failure (the part's media type cannot be stored). */
  ProcessingFailure: 272,
  /** 0xA900: not a readable DICOM file, or a required attribute is missing or invalid. */
  ValidationFailure: 43264,
  /** 0xA901: the instance belongs to another study than the one in the request path. */
  StudyInstanceUidMismatch: 43265,
  /** 0xB00E: an instance with these Study, Series and SOP Instance UIDs is already stored. */
  InstanceAlreadyExists: 45070,
} as const;

export const WarningReason = {
  /** 0x0001 (Azure, v2): stored, but some attributes were invalid and are not searchable. */
  DatasetHasValidationWarnings: 1,
  /** 0xB007: Data Set does not match SOP Class; Azure uses it for implicit VR little endian files. */
  DatasetDoesNotMatchSOPClass: 45063,
  /**
   * 0xB006 Elements Discarded (PS3.4 B.2.3, PS3.18 §10.5.3): under the 'accept-identical' duplicate
   * policy, a byte-identical re-send of a stored instance; the received copy was discarded.
   */
  ElementsDiscarded: 45062,
} as const;

export type FailureReasonCode = (typeof FailureReason)[keyof typeof FailureReason];
export type WarningReasonCode = (typeof WarningReason)[keyof typeof WarningReason];

/** Azure's error number for attribute validation problems, shown in each ErrorComment. */
export const VALIDATION_ERROR_NUMBER = 'DICOM100';
