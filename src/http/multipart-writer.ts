import { randomUUID } from 'node:crypto';
import type { FailureLog } from '../dicomweb/errors.js';

export interface OutgoingPart {
  readonly contentType: string;
  readonly body: AsyncIterable<Uint8Array>;
  /** Known length of the body, sent as the part's Content-Length. */
  readonly length?: number | undefined;
}

export function newBoundary(): string {
  return randomUUID();
}

/**
 * Where a response body that breaks after its headers were sent is told: no status can report
 * it any more, and the host only cuts the connection. A client that went away (its request's
 * signal aborted) is not a failure.
 */
export interface BodyFailures {
  readonly log: FailureLog;
  readonly signal: AbortSignal;
}

/**
 * A multipart/related body (RFC 2387) streamed part by part: each part's bytes are pulled only
 * when the client reads, and cancelling the stream (client gone) closes the part sources.
 */
export function multipartBody(
  parts: AsyncIterable<OutgoingPart>,
  boundary: string,
  failures?: BodyFailures,
): ReadableStream<Uint8Array> {
  return streamOf(multipartBytes(parts, boundary), failures);
}

/** The bytes of a multipart/related body, for a caller that sends them some other way than streamOf. */
export async function* multipartBytes(
  parts: AsyncIterable<OutgoingPart>,
  boundary: string,
): AsyncGenerator<Uint8Array> {
  let first = true;
  for await (const part of parts) {
    const length = part.length === undefined ? '' : `Content-Length: ${part.length}\r\n`;
    yield Buffer.from(
      `${first ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${part.contentType}\r\n${length}\r\n`,
      'latin1',
    );
    first = false;
    yield* part.body;
  }
  yield Buffer.from(`${first ? '' : '\r\n'}--${boundary}--\r\n`, 'latin1');
}

/**
 * Chunks a response stream keeps ready ahead of the client (about 4 MiB of 256 KiB blob chunks):
 * the blob download and the socket write overlap instead of taking turns.
 */
const CHUNKS_AHEAD = 16;

/** A pull-based ReadableStream over an async generator; cancel() runs the generator's finally blocks. */
export function streamOf(source: AsyncGenerator<Uint8Array>, failures?: BodyFailures): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const next = await source.next();
          if (next.done) controller.close();
          else controller.enqueue(next.value);
        } catch (error) {
          if (failures && !failures.signal.aborted) {
            failures.log('the response body failed after its headers were sent', error);
          }
          controller.error(error);
        }
      },
      async cancel() {
        await source.return(undefined);
      },
    },
    { highWaterMark: CHUNKS_AHEAD },
  );
}
