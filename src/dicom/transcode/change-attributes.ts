/**
 * Streams a Part 10 file with some top-level attributes replaced or added (bulk update): the data
 * set is re-encoded element by element in its own transfer syntax, so memory stays bounded
 * whatever the file's size (large values, pixel data included, pass through in pieces).
 */
import { transferSyntaxInfo } from '../transfer-syntax.js';
import { ByteReader } from './byte-reader.js';
import { readDataSet, type Encoding, type Token } from './element-reader.js';
import { writeDataSet } from './element-writer.js';
import { encodeFileMeta, metaTransferSyntax, readFileMeta } from './file-meta.js';
import { TranscodeError } from './transcode-error.js';
import { deflateRaw, inflateRaw } from './zlib-stream.js';

/** A top-level element's new value, already encoded (even length, padded as its VR requires). */
export interface ChangedElement {
  readonly tag: number;
  readonly vr: string;
  readonly value: Uint8Array;
}

/**
 * The file read from `source` (stored in `transferSyntaxUid`) with each change's element set to
 * its value, in tag order among the others; elements inside sequences are never touched.
 */
export async function* changeAttributes(
  source: AsyncIterable<Uint8Array>,
  transferSyntaxUid: string,
  changes: readonly ChangedElement[],
): AsyncGenerator<Uint8Array> {
  const syntax = transferSyntaxInfo(transferSyntaxUid);
  if (!syntax) throw new TranscodeError(`${transferSyntaxUid} is not a transfer syntax this server reads.`);
  const file = new ByteReader(source[Symbol.asyncIterator]());
  try {
    const meta = await readFileMeta(file, syntax.deflated);
    const stored = metaTransferSyntax(meta);
    if (stored !== undefined && stored !== syntax.uid) {
      throw new TranscodeError(`The file's meta information says transfer syntax ${stored}, not ${syntax.uid}.`);
    }
    yield encodeFileMeta(meta, syntax.uid);
    const dataSet = syntax.deflated ? new ByteReader(inflateRaw(file.rest())[Symbol.asyncIterator]()) : file;
    const tokens = replaceTopLevel(readDataSet(dataSet, syntax, syntax.encapsulated), changes, syntax);
    const encoded = writeDataSet(tokens, syntax);
    yield* syntax.deflated ? deflateRaw(encoded) : encoded;
  } finally {
    await file.close();
  }
}

/** The tokens with top-level elements of `changes` replaced, or inserted before the first greater tag. */
async function* replaceTopLevel(
  tokens: AsyncIterable<Token>,
  changes: readonly ChangedElement[],
  encoding: Encoding,
): AsyncGenerator<Token> {
  const pending = [...changes].sort((a, b) => a.tag - b.tag);
  const asToken = (change: ChangedElement): Token => ({
    type: 'element',
    tag: change.tag,
    vr: change.vr,
    length: change.value.byteLength,
    littleEndian: encoding.littleEndian,
    value: change.value,
  });
  let depth = 0;
  /** Inside a replaced sequence (its nesting depth), or after a replaced value's header (its chunks). */
  let skipDepth = 0;
  let skipChunks = false;
  for await (const token of tokens) {
    if (skipDepth > 0) {
      if (token.type === 'sequence' || token.type === 'fragments') skipDepth += 1;
      else if (token.type === 'sequence-end' || token.type === 'fragments-end') skipDepth -= 1;
      continue;
    }
    if (skipChunks && token.type === 'chunk') continue;
    skipChunks = false;
    if (depth === 0 && (token.type === 'element' || token.type === 'sequence' || token.type === 'fragments')) {
      const tag = token.tag >>> 0;
      while (pending[0] !== undefined && pending[0].tag < tag) yield asToken(pending.shift() as ChangedElement);
      if (pending[0]?.tag === tag) {
        yield asToken(pending.shift() as ChangedElement);
        if (token.type === 'element') skipChunks = token.value === undefined;
        else skipDepth = 1;
        continue;
      }
    }
    if (token.type === 'sequence' || token.type === 'fragments') depth += 1;
    else if (token.type === 'sequence-end' || token.type === 'fragments-end') depth -= 1;
    yield token;
  }
  for (const change of pending) yield asToken(change);
}
