/**
 * One HTTP request with the client's rules: base URL, bearer token, retries (retry.ts) and
 * cancellation. Everything else in the client sends through `send`.
 */
import { bearerHeader, type Authorization } from './auth.js';
import { httpError } from './errors.js';
import {
  backoffMs,
  DEFAULT_RETRY,
  isNetworkError,
  isRetriedStatus,
  networkReason,
  retryAfterMs,
  sleep,
  type RetryOptions,
} from './retry.js';

export interface TransportOptions {
  /** The DICOMweb base URL, version included: `https://host/v2`. */
  readonly baseUrl: string;
  readonly authorization?: Authorization;
  readonly retry?: Partial<RetryOptions>;
  /** Node's fetch by default; tests and proxies may pass their own. */
  readonly fetch?: typeof fetch;
  /** Called before each retry, e.g. for a log line. */
  readonly onRetry?: (event: RetryEvent) => void;
}

export interface RetryEvent {
  readonly method: string;
  readonly url: string;
  readonly attempt: number;
  readonly delayMs: number;
  /** The status that caused it, or the network error's message. */
  readonly reason: string;
}

export interface SendOptions {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  /** Makes the body afresh for each attempt (a stream can be read once). */
  readonly body?: () => BodyInit;
  readonly signal?: AbortSignal | undefined;
  /** Statuses returned to the caller; any other throws a DicomwebHttpError (default: 2xx). */
  readonly accept?: (status: number) => boolean;
  /** False when the body cannot be made again (a caller's one-shot stream). */
  readonly retry?: boolean;
}

const ok = (status: number): boolean => status >= 200 && status < 300;

export class Transport {
  readonly baseUrl: string;
  private readonly retry: RetryOptions;
  private readonly fetch: typeof fetch;
  private readonly bearer: (signal?: AbortSignal) => Promise<string | undefined>;

  constructor(private readonly options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.fetch = options.fetch ?? globalThis.fetch;
    this.bearer = bearerHeader(options.authorization);
  }

  /** `path` relative to the base URL (`/studies`), or an absolute URL (a RetrieveURL). */
  url(path: string): string {
    return /^https?:\/\//.test(path) ? path : `${this.baseUrl}${path}`;
  }

  async send(path: string, options: SendOptions = {}): Promise<Response> {
    const method = options.method ?? 'GET';
    const url = this.url(path);
    const { signal } = options;
    const retries = options.retry === false ? 0 : this.retry.retries;
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      const headers = new Headers(options.headers);
      const authorization = await this.bearer(signal);
      if (authorization) headers.set('authorization', authorization);
      let response: Response;
      try {
        const body = options.body?.();
        response = await this.fetch(url, {
          method,
          headers,
          ...(body === undefined ? {} : { body, duplex: 'half' }),
          ...(signal ? { signal } : {}),
        });
      } catch (error) {
        if (signal?.aborted) throw signal.reason as Error;
        if (attempt >= retries || !isNetworkError(error)) throw error;
        await this.pause(method, url, attempt, backoffMs(attempt, this.retry), networkReason(error), signal);
        continue;
      }
      if (isRetriedStatus(response.status) && attempt < retries) {
        const wait = retryAfterMs(response.headers.get('retry-after')) ?? backoffMs(attempt, this.retry);
        await response.body?.cancel().catch(() => undefined);
        await this.pause(method, url, attempt, Math.min(wait, this.retry.maxDelayMs), String(response.status), signal);
        continue;
      }
      if (!(options.accept ?? ok)(response.status)) throw await httpError(method, url, response);
      return response;
    }
  }

  private async pause(
    method: string,
    url: string,
    attempt: number,
    delayMs: number,
    reason: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    this.options.onRetry?.({ method, url, attempt: attempt + 1, delayMs, reason });
    await sleep(delayMs, signal);
  }
}
