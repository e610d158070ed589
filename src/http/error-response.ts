import { DicomwebError, MISSING_CREDENTIALS, type FailureLog } from '../dicomweb/errors.js';
import { StorageUnavailableError } from '../storage/ports.js';
import { textResponse } from './responses.js';

export type ErrorLogger = FailureLog;

/**
 * The one place where a thrown value becomes an HTTP response. Messages of DicomwebError are
 * written for the client; anything unexpected is logged and answered without internals.
 * The body is plain text, as the Azure DICOM service answers request-level errors.
 */
export function errorResponse(error: unknown, log: ErrorLogger): Response {
  if (error instanceof DicomwebError) {
    const headers: Record<string, string> = { ...error.headers };
    if (error.status === 503) headers['retry-after'] = '5';
    if (error.status === 401) {
      // RFC 6750 §3: the challenge names the error so clients know to get a new token.
      headers['www-authenticate'] =
        error.message === MISSING_CREDENTIALS
          ? 'Bearer realm="dicomweb"'
          : `Bearer realm="dicomweb", error="invalid_token", error_description="${error.message.replace(/"/g, "'")}"`;
    }
    return textResponse(error.status, error.message, headers);
  }
  if (error instanceof StorageUnavailableError) {
    log('storage unavailable', error);
    return textResponse(503, 'The storage service is unavailable; nothing partial was stored. Retry later.', {
      'retry-after': '5',
    });
  }
  log('unhandled error', error);
  return textResponse(500, 'An internal error occurred.');
}
