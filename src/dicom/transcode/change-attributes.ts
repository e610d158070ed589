/**
 * Streams a Part 10 file with some top-level attributes replaced or added (bulk update): the data
 * set is re-encoded element by element in its own transfer syntax, so memory stays bounded
 * whatever the file's size (large values, pixel data included, pass through in pieces).
 */
import { transferSyntaxInfo } from '../transfer-syntax.js';
import type { Encoding, Token } from './element-reader.js';
import { rewritePart10 } from './part10-rewrite.js';
import { TranscodeError } from './transcode-error.js';

/** A top-level element's new value, already encoded (even length, padded as its VR requires). */
export interface ChangedElement {
  readonly tag: number;
  readonly vr: string;
  readonly value: Uint8Array;
  /**
   * The value as text, when it may hold characters beyond ASCII: it is then encoded in the file's
   * own Specific Character Set (UTF-8 for ISO_IR 192; Latin-1 for ISO_IR 100; a file with the
   * default repertoire is switched to ISO_IR 192, which keeps its ASCII text as it is); a file whose
   * character set cannot hold it fails with TranscodeError.
   */
  readonly text?: string | undefined;
}

const SPECIFIC_CHARACTER_SET = 0x00080005;
const UTF8 = 'ISO_IR 192';
const beyondAscii = (text: string | undefined): boolean => text !== undefined && /[^\t\n\f\r\x20-\x7e]/.test(text);

/** DICOM text padded to an even length with a space. */
function padded(bytes: Buffer): Buffer {
  return bytes.length % 2 === 1 ? Buffer.concat([bytes, Buffer.from(' ')]) : bytes;
}

/** The change's bytes in the file's character set (`charset`: the (0008,0005) value, '' for the default repertoire). */
function encodedIn(change: ChangedElement, charset: string): Uint8Array {
  const { text } = change;
  if (text === undefined || !beyondAscii(text)) return change.value;
  if (charset === UTF8) return padded(Buffer.from(text, 'utf8'));
  if (charset === 'ISO_IR 100' && !/[^\t\n\f\r\x20-\xff]/.test(text)) {
    return padded(Buffer.from(text, 'latin1'));
  }
  throw new TranscodeError(
    `The file's Specific Character Set (${charset || 'the default repertoire'}) cannot hold the new value of (${change.tag
      .toString(16)
      .padStart(8, '0')
      .toUpperCase()}); only files in ISO_IR 192, ISO_IR 100 (for Latin-1 text) or the default repertoire can take it.`,
  );
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
  yield* rewritePart10(source, syntax, syntax, (tokens) => replaceTopLevel(tokens, changes, syntax));
}

/** The tokens with top-level elements of `changes` replaced, or inserted before the first greater tag. */
async function* replaceTopLevel(
  tokens: AsyncIterable<Token>,
  changes: readonly ChangedElement[],
  encoding: Encoding,
): AsyncGenerator<Token> {
  const pending = [...changes].sort((a, b) => a.tag - b.tag);
  const unicode = changes.some((change) => beyondAscii(change.text));
  /** The file's (0008,0005), once read or passed: '' for the default repertoire. */
  let charset: string | undefined;
  const element = (tag: number, vr: string, value: Uint8Array): Token => ({
    type: 'element',
    tag,
    vr,
    length: value.byteLength,
    littleEndian: encoding.littleEndian,
    value,
  });
  const asToken = (change: ChangedElement): Token => element(change.tag, change.vr, encodedIn(change, charset ?? ''));
  /** (0008,0005) set to ISO_IR 192, where non-ASCII text is to go into a file of the default repertoire. */
  const toUtf8 = (): Token => {
    charset = UTF8;
    return element(SPECIFIC_CHARACTER_SET, 'CS', Buffer.from(UTF8, 'latin1'));
  };
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
      if (tag === SPECIFIC_CHARACTER_SET && token.type === 'element' && token.value !== undefined) {
        charset = Buffer.from(token.value).toString('latin1').trim();
        if (unicode && (charset === '' || charset === 'ISO_IR 6')) {
          yield toUtf8();
          continue;
        }
      } else if (charset === undefined && tag > SPECIFIC_CHARACTER_SET) {
        charset = '';
        if (unicode) yield toUtf8();
      }
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
