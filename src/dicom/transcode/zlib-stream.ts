import { pipeline, Readable, type Transform } from 'node:stream';
import { createDeflateRaw, createInflateRaw } from 'node:zlib';
import { TranscodeError } from './transcode-error.js';

/** Raw-deflates a byte stream (the Deflated Explicit VR Little Endian data set, PS3.5 A.5). */
export function deflateRaw(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  return through(source, createDeflateRaw());
}

/** Inflates a raw-deflated byte stream; corrupt or cut-off compressed data is a TranscodeError. */
export async function* inflateRaw(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    yield* through(source, createInflateRaw());
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code !== 'string' || !code.startsWith('Z_')) throw error;
    throw new TranscodeError(`The deflated data set cannot be inflated (${(error as Error).message}).`, {
      cause: error,
    });
  }
}

/**
 * Streams `source` through a zlib transform with backpressure. An error on either side destroys
 * both and is rethrown here; stopping early destroys them too, which ends `source`.
 */
async function* through(source: AsyncIterable<Uint8Array>, transform: Transform): AsyncGenerator<Uint8Array> {
  pipeline(Readable.from(source, { objectMode: false }), transform, () => {
    // Errors surface through the iteration below.
  });
  for await (const chunk of transform) yield chunk as Uint8Array;
}
