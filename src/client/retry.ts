/**
 * Retries of one request: on 429 and 503 (the server's "try again": storage busy or throttled)
 * and on network errors, with exponential backoff and jitter, honouring Retry-After. Never on
 * another status: a 4xx is the caller's mistake and sending it again changes nothing.
 */
export interface RetryOptions {
  /** Attempts after the first (default 5). */
  readonly retries: number;
  /** Backoff before the first retry, doubled each time (default 500 ms). */
  readonly baseDelayMs: number;
  /** Cap of one backoff and of an honoured Retry-After (default 30 s). */
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { retries: 5, baseDelayMs: 500, maxDelayMs: 30_000 };

const RETRIED_STATUSES = new Set([429, 503]);

export function isRetriedStatus(status: number): boolean {
  return RETRIED_STATUSES.has(status);
}

/**
 * Equal jitter: half the exponential step fixed, half random, so many clients that failed
 * together spread out while none retries at once.
 */
export function backoffMs(attempt: number, options: RetryOptions, random = Math.random): number {
  const step = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** attempt);
  return step / 2 + random() * (step / 2);
}

/** Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3), in ms; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Errors of reading the caller's own files: sending again cannot help. */
const LOCAL_ERRORS = new Set(['ENOENT', 'EACCES', 'EISDIR', 'EPERM', 'ENOTDIR']);

/** A rejected fetch that was no cancellation and no local file error: the network failed. */
export function isNetworkError(error: unknown): boolean {
  if (!(error instanceof Error) || error.name === 'AbortError') return false;
  const cause = (error as { cause?: { code?: unknown } }).cause;
  return !(typeof cause?.code === 'string' && LOCAL_ERRORS.has(cause.code));
}

/** A network error's message with its cause (`fetch failed: ECONNREFUSED …`), for logs. */
export function networkReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const cause = (error as { cause?: { message?: unknown } }).cause?.message;
  return typeof cause === 'string' && cause !== '' ? `${message}: ${cause}` : message;
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
