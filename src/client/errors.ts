/** The client's one error type for answers it did not expect: the status, and what the server said. */
export class DicomwebHttpError extends Error {
  override readonly name = 'DicomwebHttpError';

  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    /** The response body as text (the server's plain-text message), cut at 2,000 characters. */
    readonly body: string,
  ) {
    const detail = body.trim() === '' ? '' : `: ${body.trim()}`;
    super(`${method} ${url} answered ${status}${detail}`);
  }
}

/** Reads a failed response into a DicomwebHttpError without holding a large body. */
export async function httpError(method: string, url: string, response: Response): Promise<DicomwebHttpError> {
  let body = '';
  try {
    body = (await response.text()).slice(0, 2000);
  } catch {
    // The body broke off; the status alone still says what happened.
  }
  return new DicomwebHttpError(method, url, response.status, body);
}
