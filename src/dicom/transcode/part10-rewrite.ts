import type { TransferSyntaxInfo } from '../transfer-syntax.js';
import { ByteReader } from './byte-reader.js';
import { readDataSet, type Token } from './element-reader.js';
import { writeDataSet } from './element-writer.js';
import { encodeFileMeta, metaTransferSyntax, readFileMeta } from './file-meta.js';
import { TranscodeError } from './transcode-error.js';
import { deflateRaw, inflateRaw } from './zlib-stream.js';

/**
 * A Part 10 file rewritten element by element, in bounded memory: its meta group checked against
 * `input` (one naming another syntax is refused) and written again naming `output`; its data set
 * read as tokens (inflated first when deflated), passed through `rewrite`, and written in `output`
 * (deflated again when it is). Transcoding and bulk update's attribute changes both run on it.
 */
export async function* rewritePart10(
  source: AsyncIterable<Uint8Array>,
  input: TransferSyntaxInfo,
  output: TransferSyntaxInfo,
  rewrite: (tokens: AsyncGenerator<Token>) => AsyncIterable<Token>,
): AsyncGenerator<Uint8Array> {
  const file = new ByteReader(source[Symbol.asyncIterator]());
  try {
    const meta = await readFileMeta(file, input.deflated);
    const stored = metaTransferSyntax(meta);
    if (stored !== undefined && stored !== input.uid) {
      throw new TranscodeError(`The file's meta information says transfer syntax ${stored}, not ${input.uid}.`);
    }
    yield encodeFileMeta(meta, output.uid);
    const dataSet = input.deflated ? new ByteReader(inflateRaw(file.rest())[Symbol.asyncIterator]()) : file;
    const encoded = writeDataSet(rewrite(readDataSet(dataSet, input, input.encapsulated)), output);
    yield* output.deflated ? deflateRaw(encoded) : encoded;
  } finally {
    await file.close();
  }
}
