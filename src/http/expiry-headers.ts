import type { ApiVersion } from '../dicomweb/api-version.js';
import { DicomwebError } from '../dicomweb/errors.js';

const TIME = 'msdicom-expiry-time-milliseconds';
const OPTION = 'msdicom-expiry-option';
const LEVEL = 'msdicom-expiry-level';

/** The latest instant a JavaScript Date (and an ISO 8601 row value) can hold. */
const LATEST = 8.64e15;

/**
 * The expiry a STOW asks for with the Azure service's headers (v2): `msdicom-expiry-time-milliseconds`
 * (a whole number above 0, required when either of the others is sent), `msdicom-expiry-option`
 * (`RelativeToNow`, the default and only option) and `msdicom-expiry-level` (`Study`, likewise).
 * Undefined when none is sent, and on v1, which has no expiry. A bad value is 400 before the body
 * is read, so nothing of the request is stored.
 */
export function requestedExpiry(headers: Headers, apiVersion: ApiVersion, now = new Date()): Date | undefined {
  if (apiVersion === 'v1') return undefined;
  const time = headers.get(TIME)?.trim();
  const option = headers.get(OPTION)?.trim();
  const level = headers.get(LEVEL)?.trim();
  if (time === undefined && option === undefined && level === undefined) return undefined;
  if (time === undefined || time === '') {
    throw new DicomwebError(
      'BadRequest',
      `The ${TIME} header is required to set an expiry (with ${OPTION}, ${LEVEL}).`,
    );
  }
  const milliseconds = /^\d+$/.test(time) ? Number(time) : Number.NaN;
  if (!(milliseconds > 0) || now.getTime() + milliseconds > LATEST) {
    throw new DicomwebError(
      'BadRequest',
      `The ${TIME} header "${time.slice(0, 40)}" is invalid: give the milliseconds until the study is deleted, a whole number above 0.`,
    );
  }
  if (option !== undefined && option.toLowerCase() !== 'relativetonow') {
    throw new DicomwebError(
      'BadRequest',
      `The ${OPTION} header "${option.slice(0, 40)}" is not supported; the only option is RelativeToNow.`,
    );
  }
  if (level !== undefined && level.toLowerCase() !== 'study') {
    throw new DicomwebError(
      'BadRequest',
      `The ${LEVEL} header "${level.slice(0, 40)}" is not supported; expiry is set per Study.`,
    );
  }
  return new Date(now.getTime() + milliseconds);
}
