/**
 * Streaming transcoder between the native transfer syntaxes, so WADO-RS can deliver a stored
 * instance in the syntax a client accepts without holding the file in memory.
 */
import { transferSyntaxInfo, type TransferSyntaxInfo } from '../transfer-syntax.js';
import { ByteReader } from './byte-reader.js';
import { readDataSet } from './element-reader.js';
import { writeDataSet } from './element-writer.js';
import { encodeFileMeta, metaTransferSyntax, readFileMeta } from './file-meta.js';
import { TranscodeError } from './transcode-error.js';
import { deflateRaw, inflateRaw } from './zlib-stream.js';

export { TranscodeError } from './transcode-error.js';

function nativeSyntax(uid: string): TransferSyntaxInfo | undefined {
  const info = transferSyntaxInfo(uid);
  return info && !info.encapsulated ? info : undefined;
}

/** True when both are native (uncompressed) syntaxes, including `from` === `to`. */
export function canTranscode(from: string, to: string): boolean {
  return nativeSyntax(from) !== undefined && nativeSyntax(to) !== undefined;
}

/**
 * Streams a Part 10 file stored in `from` as a Part 10 file in `to`. Memory stays bounded: element
 * headers and values up to 64 KiB are read whole, larger values (pixel data) pass through in
 * pieces, byte-swapped when the byte order changes.
 */
export async function* transcode(
  source: AsyncIterable<Uint8Array>,
  from: string,
  to: string,
): AsyncGenerator<Uint8Array> {
  const input = nativeSyntax(from);
  const output = nativeSyntax(to);
  if (!input || !output) {
    const which = input ? to : from;
    throw new TranscodeError(`Cannot transcode ${from} to ${to}: ${which} is not a native transfer syntax.`);
  }
  const file = new ByteReader(source[Symbol.asyncIterator]());
  try {
    const meta = await readFileMeta(file, input.deflated);
    const stored = metaTransferSyntax(meta);
    if (stored !== undefined && stored !== input.uid) {
      throw new TranscodeError(`The file's meta information says transfer syntax ${stored}, not ${input.uid}.`);
    }
    yield encodeFileMeta(meta, output.uid);
    const dataSet = input.deflated ? new ByteReader(inflateRaw(file.rest())[Symbol.asyncIterator]()) : file;
    const encoded = writeDataSet(readDataSet(dataSet, input), output);
    yield* output.deflated ? deflateRaw(encoded) : encoded;
  } finally {
    await file.close();
  }
}
