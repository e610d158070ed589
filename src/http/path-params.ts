import { isValidUid, uidProblem } from '../dicom/uid.js';
import { DicomwebError } from '../dicomweb/errors.js';
import type { RequestContext } from './context.js';

/** A UID from the URL path, checked before it can reach a key or a blob name (400 otherwise). */
export function pathUid(context: RequestContext, name: 'study' | 'series' | 'instance'): string | undefined {
  const value = context.params[name];
  if (value !== undefined && !isValidUid(value)) {
    throw new DicomwebError(
      'InvalidUid',
      `The ${name} UID "${value.slice(0, 80)}" in the URL is not a valid UID: ${uidProblem(value)}.`,
    );
  }
  return value;
}

/** The study, series and instance UIDs of a WADO-RS path; the study is always there. */
export function retrieveTarget(context: RequestContext) {
  return {
    studyInstanceUid: pathUid(context, 'study') ?? '',
    seriesInstanceUid: pathUid(context, 'series'),
    sopInstanceUid: pathUid(context, 'instance'),
  };
}
