import { randomUUID } from 'node:crypto';

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
 * A multipart/related body (RFC 2387) streamed part by part: each part's bytes are pulled only
 * when the client reads, and cancelling the stream (client gone) closes the part sources.
 */
export function multipartBody(parts: AsyncIterable<OutgoingPart>, boundary: string): ReadableStream<Uint8Array> {
  async function* bytes(): AsyncGenerator<Uint8Array> {
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
  return streamOf(bytes());
}

/**
 * Chunks a response stream keeps ready ahead of the client (about 4 MiB of 256 KiB blob chunks):
 * the blob download and the socket write overlap instead of taking turns.
 */
const CHUNKS_AHEAD = 16;

/** A pull-based ReadableStream over an async generator; cancel() runs the generator's finally blocks. */
export function streamOf(source: AsyncGenerator<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const next = await source.next();
          if (next.done) controller.close();
          else controller.enqueue(next.value);
        } catch (error) {
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
