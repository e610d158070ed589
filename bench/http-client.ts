/** The load generator's side of the read workloads: plain node:http GET/DELETE with a keep-alive agent. */
import { request as httpRequest, type Agent, type IncomingHttpHeaders } from 'node:http';

export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Body bytes received. */
  readonly bytes: number;
  /** The body, when asked to keep it; otherwise it was discarded as it arrived (like `> /dev/null`). */
  readonly body: Buffer | undefined;
}

export interface CallOptions {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Keep the body (for checks); by default it is counted and dropped. */
  readonly keep?: boolean;
}

export function call(agent: Agent, url: string, options: CallOptions = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', agent, headers: options.headers });
    req.once('error', reject);
    req.once('response', (res) => {
      let bytes = 0;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.byteLength;
        if (options.keep) chunks.push(chunk);
      });
      res.once('error', reject);
      res.once('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          bytes,
          body: options.keep ? Buffer.concat(chunks) : undefined,
        });
      });
    });
    req.end();
  });
}

/** Fails unless the answer has the expected status; the message names the request. */
export function expectStatus(answer: Answer, expected: number, what: string): Answer {
  if (answer.status !== expected) {
    const text = answer.body ? `: ${answer.body.toString('utf8').slice(0, 300)}` : '';
    throw new Error(`${what} answered ${answer.status}, not ${expected}${text}`);
  }
  return answer;
}

/** GETs JSON and parses it (fails on another status). */
export async function getJson<T>(agent: Agent, url: string, what: string, status = 200): Promise<T> {
  const answer = expectStatus(
    await call(agent, url, { headers: { accept: 'application/dicom+json, application/json' }, keep: true }),
    status,
    what,
  );
  return JSON.parse(answer.body?.toString('utf8') ?? 'null') as T;
}
