/**
 * A multipart/related request body (RFC 2387, PS3.18 §8.6.1.2) streamed part by part: a part's
 * source is opened only when the previous one has been sent, and read in its own chunks.
 */
import { randomBytes } from 'node:crypto';
import type { InstanceSource } from './sources.js';

export interface MultipartBody {
  readonly contentType: string;
  /** A fresh stream of the whole body; `onBytes` counts each part's bytes as they are read. */
  stream(onBytes?: (bytes: number) => void): ReadableStream<Uint8Array>;
}

export function multipartRelated(parts: readonly InstanceSource[], partType = 'application/dicom'): MultipartBody {
  const boundary = `dicomweb-${randomBytes(16).toString('hex')}`;
  const encoder = new TextEncoder();
  const partHeader = encoder.encode(`--${boundary}\r\nContent-Type: ${partType}\r\n\r\n`);
  const crlf = encoder.encode('\r\n');
  const closing = encoder.encode(`--${boundary}--\r\n`);
  async function* chunks(onBytes?: (bytes: number) => void): AsyncGenerator<Uint8Array> {
    for (const part of parts) {
      yield partHeader;
      for await (const chunk of part.open()) {
        onBytes?.(chunk.byteLength);
        yield chunk;
      }
      yield crlf;
    }
    yield closing;
  }
  return {
    contentType: `multipart/related; type="${partType}"; boundary=${boundary}`,
    stream: (onBytes) => {
      const iterator = chunks(onBytes);
      return new ReadableStream<Uint8Array>(
        {
          async pull(controller) {
            const next = await iterator.next();
            if (next.done) controller.close();
            else controller.enqueue(next.value);
          },
          async cancel() {
            await iterator.return(undefined);
          },
        },
        { highWaterMark: 0 },
      );
    },
  };
}
