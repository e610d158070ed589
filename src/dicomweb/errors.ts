/**
 * The one error type of a request that cannot be served. It carries its HTTP status and a
 * stable code; src/http/error-response.ts is the only place that turns it into a response.
 * Per-instance STOW failures are not errors: they are data in the store result.
 */
export type DicomwebErrorCode =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'InvalidUid'
  | 'MalformedMultipart'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'NotFound'
  | 'Conflict'
  | 'MethodNotAllowed'
  | 'NotImplemented'
  | 'PayloadTooLarge'
  | 'StorageUnavailable'
  | 'InternalError';

const STATUS: Record<DicomwebErrorCode, number> = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  InvalidUid: 400,
  MalformedMultipart: 400,
  NotAcceptable: 406,
  UnsupportedMediaType: 415,
  NotFound: 404,
  Conflict: 409,
  MethodNotAllowed: 405,
  NotImplemented: 501,
  PayloadTooLarge: 413,
  StorageUnavailable: 503,
  InternalError: 500,
};

export class DicomwebError extends Error {
  override readonly name = 'DicomwebError';
  readonly status: number;
  /** Response headers the answer needs, e.g. Allow on a 405. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    readonly code: DicomwebErrorCode,
    message: string,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(message, options);
    this.status = STATUS[code];
    this.headers = options?.headers ?? {};
  }
}

/** The 401 message for a request without credentials: its challenge carries no error code (RFC 6750 §3.1). */
export const MISSING_CREDENTIALS = 'A bearer token is required.';

/**
 * Where a failure is told that no response reports (a change feed append or a cleanup that the
 * orphan sweep finishes later, a response body that broke after its headers were sent). The app
 * hands each request one that names the request's correlation id.
 */
export type FailureLog = (message: string, error: unknown) => void;
