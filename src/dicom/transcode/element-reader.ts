import { dictionaryEntry } from '../dictionary.js';
import type { ByteReader } from './byte-reader.js';
import { formatTag, TranscodeError } from './transcode-error.js';
import { hasLongLength, isKnownVr, MAX_SHORT_LENGTH, swapUnit } from './vr-encoding.js';

export interface Encoding {
  readonly explicitVr: boolean;
  readonly littleEndian: boolean;
}

/**
 * A data set as a flat series of tokens, nesting shown by start and end tokens. An element with
 * `value` undefined is followed by `chunk` tokens holding its `length` bytes.
 */
export type Token =
  | {
      readonly type: 'element';
      readonly tag: number;
      readonly vr: string;
      readonly length: number;
      /** Byte order of the value as read (inside a UN sequence it is little endian whatever the file). */
      readonly littleEndian: boolean;
      readonly value: Uint8Array | undefined;
    }
  | { readonly type: 'chunk'; readonly bytes: Uint8Array }
  | { readonly type: 'sequence'; readonly tag: number }
  | { readonly type: 'item' | 'item-end' | 'sequence-end' }
  /** Encapsulated Pixel Data (PS3.5 A.4): its items, the Basic Offset Table first, then the delimiter. */
  | { readonly type: 'fragments'; readonly tag: number }
  | { readonly type: 'fragment'; readonly bytes: Uint8Array }
  | { readonly type: 'fragments-end' };

/** Values up to this size are read whole; larger ones are streamed as chunks. */
export const SMALL_VALUE = 64 * 1024;

export const ITEM = 0xfffee000;
export const ITEM_DELIMITER = 0xfffee00d;
export const SEQUENCE_DELIMITER = 0xfffee0dd;
const UNDEFINED_LENGTH = 0xffffffff;
const PIXEL_DATA = 0x7fe00010;
const BITS_ALLOCATED = 0x00280100;
/** Values in a UN element of undefined length are implicit VR little endian (PS3.5 6.2.2). */
const IMPLICIT_LE: Encoding = { explicitVr: false, littleEndian: true };

interface Frame {
  readonly kind: 'dataset' | 'sequence' | 'item';
  readonly tag: number;
  /** Where a defined-length sequence or item ends; undefined when a delimiter ends it. */
  readonly end: number | undefined;
  /** The nearest defined end of this frame or an enclosing one: nothing inside may pass it. */
  readonly limit: number | undefined;
  readonly encoding: Encoding;
  /** Bits Allocated of this data set, which decides the VR of its Pixel Data in implicit VR. */
  bitsAllocated: number | undefined;
}

/**
 * Reads a data set element by element, descending into sequences. Group lengths (gggg,0000) are
 * dropped: they are retired and would be wrong once header sizes change. With `encapsulated`
 * (a compressed transfer syntax), undefined-length Pixel Data is read as its fragments, each
 * whole: a fragment is at most one frame.
 */
export async function* readDataSet(bytes: ByteReader, encoding: Encoding, encapsulated = false): AsyncGenerator<Token> {
  const stack: Frame[] = [
    { kind: 'dataset', tag: 0, end: undefined, limit: undefined, encoding, bitsAllocated: undefined },
  ];
  for (;;) {
    const frame = stack[stack.length - 1];
    if (frame === undefined) return;
    if (frame.end !== undefined && bytes.position >= frame.end) {
      if (bytes.position > frame.end) throw new TranscodeError(`${where(frame)} runs past its defined length.`);
      stack.pop();
      yield { type: frame.kind === 'item' ? 'item-end' : 'sequence-end' };
      continue;
    }
    if (frame.kind === 'dataset' && (await bytes.atEnd())) return;
    const { littleEndian } = frame.encoding;
    const tagBytes = await bytes.read(4, () => `a tag in ${where(frame)}`);
    const tag = ((uint16(tagBytes, 0, littleEndian) << 16) | uint16(tagBytes, 2, littleEndian)) >>> 0;
    if (frame.kind === 'sequence') {
      const length = uint32(await bytes.read(4, () => `an item header in ${where(frame)}`), 0, littleEndian);
      if (tag === ITEM) {
        const end = length === UNDEFINED_LENGTH ? undefined : bytes.position + length;
        checkFits(end, frame, () => `An item of sequence ${formatTag(frame.tag)}`);
        stack.push({ ...frame, kind: 'item', end, limit: end ?? frame.limit, bitsAllocated: undefined });
        yield { type: 'item' };
      } else if (tag === SEQUENCE_DELIMITER && frame.end === undefined) {
        stack.pop();
        yield { type: 'sequence-end' };
      } else {
        throw new TranscodeError(
          `Sequence ${formatTag(frame.tag)} holds ${formatTag(tag)} where an item was expected.`,
        );
      }
      continue;
    }
    if (tag === ITEM_DELIMITER && frame.kind === 'item' && frame.end === undefined) {
      await bytes.read(4, () => `an item delimiter in ${where(frame)}`);
      stack.pop();
      yield { type: 'item-end' };
      continue;
    }
    if (tag >>> 16 === 0xfffe) {
      throw new TranscodeError(`Unexpected ${formatTag(tag)} in ${where(frame)}, where an element was expected.`);
    }
    const { vr, length } = await readHeader(bytes, tag, frame);
    if (length === UNDEFINED_LENGTH && tag === PIXEL_DATA && encapsulated) {
      yield* readFragments(bytes);
      continue;
    }
    if (length === UNDEFINED_LENGTH) {
      // An undefined-length UN is a sequence whose items are implicit VR little endian (PS3.5 6.2.2).
      if (vr !== 'SQ' && vr !== 'UN') throw undefinedLength(tag, vr);
      const inner = vr === 'UN' ? IMPLICIT_LE : frame.encoding;
      stack.push({
        kind: 'sequence',
        tag,
        end: undefined,
        limit: frame.limit,
        encoding: inner,
        bitsAllocated: undefined,
      });
      yield { type: 'sequence', tag };
      continue;
    }
    const end = bytes.position + length;
    checkFits(end, frame, () => `Element ${formatTag(tag)}`);
    if (vr === 'SQ') {
      stack.push({ ...frame, kind: 'sequence', tag, end, limit: end, bitsAllocated: undefined });
      yield { type: 'sequence', tag };
      continue;
    }
    if ((tag & 0xffff) === 0) {
      await bytes.skip(length, () => describe(tag));
      continue;
    }
    if (length <= SMALL_VALUE) {
      const value = await bytes.read(length, () => describe(tag));
      if (tag === BITS_ALLOCATED && length >= 2) frame.bitsAllocated = uint16(value, 0, littleEndian);
      yield { type: 'element', tag, vr, length, littleEndian, value };
      continue;
    }
    yield { type: 'element', tag, vr, length, littleEndian, value: undefined };
    for await (const piece of bytes.pieces(length, swapUnit(vr), () => describe(tag))) {
      yield { type: 'chunk', bytes: piece };
    }
  }
}

async function* readFragments(bytes: ByteReader): AsyncGenerator<Token> {
  yield { type: 'fragments', tag: PIXEL_DATA };
  for (;;) {
    const header = await bytes.read(8, () => 'an item header of the encapsulated Pixel Data');
    const tag = ((uint16(header, 0, true) << 16) | uint16(header, 2, true)) >>> 0;
    const length = uint32(header, 4, true);
    if (tag === SEQUENCE_DELIMITER) {
      yield { type: 'fragments-end' };
      return;
    }
    if (tag !== ITEM || length === UNDEFINED_LENGTH) {
      throw new TranscodeError(
        `The encapsulated Pixel Data holds ${formatTag(tag)} where a fragment item was expected.`,
      );
    }
    yield { type: 'fragment', bytes: await bytes.read(length, () => 'a fragment of the encapsulated Pixel Data') };
  }
}

async function readHeader(bytes: ByteReader, tag: number, frame: Frame): Promise<{ vr: string; length: number }> {
  const { explicitVr, littleEndian } = frame.encoding;
  const what = () => `the header of ${describe(tag)}`;
  if (!explicitVr) {
    const length = uint32(await bytes.read(4, what), 0, littleEndian);
    return { vr: implicitVr(tag, length, frame), length };
  }
  const vrBytes = await bytes.read(2, what);
  const vr = String.fromCharCode(vrBytes[0] ?? 0, vrBytes[1] ?? 0);
  if (!isKnownVr(vr)) {
    throw new TranscodeError(`${describe(tag)} has an invalid VR ${JSON.stringify(vr)}; is the transfer syntax right?`);
  }
  if (!hasLongLength(vr)) return { vr, length: uint16(await bytes.read(2, what), 0, littleEndian) };
  const length = uint32(await bytes.read(6, what), 2, littleEndian);
  // A value too long for its VR's 16-bit length is written as UN (CP-1066); restoring the VR keeps
  // its byte swapping right.
  const restored = vr === 'UN' && length !== UNDEFINED_LENGTH && length > MAX_SHORT_LENGTH;
  return { vr: restored ? (dictionaryVr(tag, length) ?? vr) : vr, length };
}

/** The VR of an implicit VR element, from the data dictionary. */
function implicitVr(tag: number, length: number, frame: Frame): string {
  if (tag === PIXEL_DATA) {
    // OW unless Bits Allocated says 8 or fewer; absent, OW, as PS3.5 A.1 gives for implicit VR.
    return frame.bitsAllocated !== undefined && frame.bitsAllocated <= 8 ? 'OB' : 'OW';
  }
  // Overlay Data (60xx,3000) is OW in implicit VR (PS3.5 8.1.2), whatever the dictionary lists first.
  if ((tag & 0xff00ffff) === 0x60003000) return 'OW';
  return dictionaryVr(tag, length) ?? 'UN';
}

/**
 * The dictionary's VR (its first, for "US or OW"-style entries), or a long-length alternative it
 * allows when the value is too long for a 16-bit length.
 */
function dictionaryVr(tag: number, length: number): string | undefined {
  const entry = dictionaryEntry(tag.toString(16).padStart(8, '0'));
  if (entry === undefined || entry.vrs.length === 0) return undefined;
  if (length === UNDEFINED_LENGTH || length <= MAX_SHORT_LENGTH || hasLongLength(entry.vr)) return entry.vr;
  return entry.vrs.find((vr) => hasLongLength(vr) && vr !== 'SQ') ?? entry.vr;
}

function checkFits(end: number | undefined, frame: Frame, what: () => string): void {
  if (end !== undefined && frame.limit !== undefined && end > frame.limit) {
    throw new TranscodeError(`${what()} is longer than the sequence or item that holds it.`);
  }
}

function undefinedLength(tag: number, vr: string): TranscodeError {
  if (tag === PIXEL_DATA) {
    return new TranscodeError('The Pixel Data is encapsulated (undefined length), which no native syntax allows.');
  }
  return new TranscodeError(`${describe(tag)} has undefined length, which VR ${vr} does not allow.`);
}

function describe(tag: number): string {
  return `element ${formatTag(tag)}`;
}

function where(frame: Frame): string {
  if (frame.kind === 'dataset') return 'the data set';
  return `${frame.kind === 'item' ? 'an item of sequence' : 'sequence'} ${formatTag(frame.tag)}`;
}

function uint16(bytes: Uint8Array, offset: number, littleEndian: boolean): number {
  const a = bytes[offset] ?? 0;
  const b = bytes[offset + 1] ?? 0;
  return littleEndian ? a | (b << 8) : (a << 8) | b;
}

function uint32(bytes: Uint8Array, offset: number, littleEndian: boolean): number {
  const high = uint16(bytes, offset + (littleEndian ? 2 : 0), littleEndian);
  const low = uint16(bytes, offset + (littleEndian ? 0 : 2), littleEndian);
  return high * 0x10000 + low;
}
