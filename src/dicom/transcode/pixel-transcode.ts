/**
 * Re-codes the Pixel Data of a data set streamed as tokens: compressed frames decoded to native
 * samples, native frames encoded, or both. One frame is held at a time (its fragments, then its
 * samples), whatever the number of frames. The image attributes that the new pixels change are
 * rewritten as they pass: Photometric Interpretation, Planar Configuration, Lossy Image
 * Compression; the Extended Offset Table, which no longer fits, is dropped.
 */
import { decodedDescription, decodeFrame } from '../codecs/decode-frame.js';
import { encodedDescription, encodeFrame } from '../codecs/encode-frame.js';
import { frameLength } from '../codecs/frame-layout.js';
import { describePixels, frameCount, PixelTag, type PixelAttributes } from '../codecs/describe-pixels.js';
import type { PixelDescription } from '../codecs/pixel-description.js';
import { JPEG_BASELINE, JPEG_EXTENDED } from '../codecs/syntaxes.js';
import type { Token } from './element-reader.js';
import { TranscodeError } from './transcode-error.js';

const LOSSY_IMAGE_COMPRESSION = 0x00282110;
const EXTENDED_OFFSET_TABLE = 0x7fe00001;
const EXTENDED_OFFSET_TABLE_LENGTHS = 0x7fe00002;
const PIXEL_DATA = 0x7fe00010;

export interface PixelRecoding {
  readonly from: string;
  readonly to: string;
  /** The source's frames are compressed (decoded before anything else). */
  readonly decode: boolean;
  /** The target is compressed (frames encoded after any decoding). */
  readonly encode: boolean;
}

type ElementToken = Extract<Token, { type: 'element' }>;

/** The top-level image attributes seen so far, as their raw values. */
class ImageAttributes implements PixelAttributes {
  private readonly values = new Map<number, ElementToken>();

  keep(token: ElementToken): void {
    if (token.tag >>> 16 === 0x0028 && token.value) this.values.set(token.tag, token);
  }

  number(tag: number): number | undefined {
    const token = this.values.get(tag);
    const value = token?.value;
    if (!token || !value) return undefined;
    if (token.vr === 'US' && value.byteLength >= 2) {
      return token.littleEndian ? (value[0] ?? 0) | ((value[1] ?? 0) << 8) : ((value[0] ?? 0) << 8) | (value[1] ?? 0);
    }
    const text = Buffer.from(value).toString('latin1').trim();
    return text === '' ? undefined : Number(text.split('\\')[0]);
  }

  text(tag: number): string | undefined {
    const value = this.values.get(tag)?.value;
    return (
      value &&
      Buffer.from(value)
        .toString('latin1')
        .replace(/[\0 ]+$/, '')
    );
  }

  description(): PixelDescription {
    const description = describePixels(this);
    if (typeof description === 'string') throw new TranscodeError(`${description} Its pixels cannot be re-coded.`);
    return description;
  }
}

function textElement(tag: number, vr: string, text: string): ElementToken {
  const value = Buffer.from(text.length % 2 === 1 ? `${text} ` : text, 'latin1');
  return { type: 'element', tag, vr, length: value.byteLength, littleEndian: true, value };
}

function usElement(tag: number, number: number): ElementToken {
  const value = Buffer.alloc(2);
  value.writeUInt16LE(number);
  return { type: 'element', tag, vr: 'US', length: 2, littleEndian: true, value };
}

/** Pixels that went through lossy JPEG are marked so (PS3.3 C.7.6.1.1.5) even if the sender did not. */
function lossySource(from: string): boolean {
  return from === JPEG_BASELINE || from === JPEG_EXTENDED;
}

/** The image description of the output frames, from the source's, before any frame is coded. */
function outputDescription(recoding: PixelRecoding, source: PixelDescription): PixelDescription {
  const native = recoding.decode ? decodedDescription(recoding.from, source) : source;
  return recoding.encode ? encodedDescription(recoding.to, native) : native;
}

/** The photometric interpretation the output will have, knowing only what precedes (0028,0004). */
function outputPhotometric(recoding: PixelRecoding, samplesPerPixel: number, photometric: string): string {
  const probe: PixelDescription = {
    rows: 1,
    columns: 1,
    samplesPerPixel,
    bitsAllocated: 8,
    bitsStored: 8,
    highBit: 7,
    pixelRepresentation: 0,
    photometricInterpretation: photometric,
    planarConfiguration: 0,
  };
  return outputDescription(recoding, probe).photometricInterpretation;
}

export async function* recodePixels(tokens: AsyncIterable<Token>, recoding: PixelRecoding): AsyncGenerator<Token> {
  const input = tokens[Symbol.asyncIterator]();
  const attributes = new ImageAttributes();
  const markLossy = lossySource(recoding.from);
  let lossyDone = !markLossy;
  let depth = 0;
  let dropChunks = false;
  for (;;) {
    const next = await input.next();
    if (next.done) return;
    const token = next.value;
    if (token.type === 'chunk') {
      if (!dropChunks) yield token;
      continue;
    }
    dropChunks = false;
    const tag = depth === 0 && 'tag' in token ? token.tag : undefined;
    if (token.type === 'sequence') depth++;
    else if (token.type === 'sequence-end') depth--;
    if (tag === undefined) {
      if (token.type === 'fragments' || token.type === 'fragment' || token.type === 'fragments-end') {
        if (!recoding.encode) {
          throw new TranscodeError(
            'An encapsulated image nested in a sequence (an icon) cannot be written uncompressed.',
          );
        }
      }
      yield token;
      continue;
    }
    if (!lossyDone && tag > LOSSY_IMAGE_COMPRESSION) {
      yield textElement(LOSSY_IMAGE_COMPRESSION, 'CS', '01');
      lossyDone = true;
    }
    if (token.type === 'element') {
      attributes.keep(token);
      if (tag === LOSSY_IMAGE_COMPRESSION && markLossy) {
        yield textElement(tag, 'CS', '01');
        continue;
      }
      if (tag === PixelTag.photometricInterpretation && token.value) {
        const photometric = attributes.text(PixelTag.photometricInterpretation) ?? '';
        yield textElement(
          tag,
          'CS',
          outputPhotometric(recoding, attributes.number(PixelTag.samplesPerPixel) ?? 1, photometric),
        );
        continue;
      }
      if (tag === PixelTag.planarConfiguration) {
        yield usElement(tag, 0);
        continue;
      }
      if (tag === EXTENDED_OFFSET_TABLE || tag === EXTENDED_OFFSET_TABLE_LENGTHS) {
        dropChunks = token.value === undefined;
        continue;
      }
    }
    if (tag === PIXEL_DATA && (token.type === 'element' || token.type === 'fragments')) {
      yield* pixelData(token, input, attributes, recoding);
      continue;
    }
    yield token;
  }
}

/** The frames of the source Pixel Data, one at a time, as native samples in the source layout. */
async function* sourceFrames(
  first: Extract<Token, { type: 'element' | 'fragments' }>,
  input: AsyncIterator<Token>,
  recoding: PixelRecoding,
  source: PixelDescription,
  frames: number,
): AsyncGenerator<Uint8Array> {
  if (first.type === 'fragments') {
    if (!recoding.decode)
      throw new TranscodeError('The Pixel Data is encapsulated, yet the transfer syntax is native.');
    for await (const encoded of compressedFrames(input, recoding.from, frames)) {
      const decoded = await decodeFrame(recoding.from, encoded, source);
      yield decoded.pixels;
    }
    return;
  }
  if (recoding.decode) throw new TranscodeError(`The Pixel Data of a ${recoding.from} image is not encapsulated.`);
  yield* nativeFrames(first, input, source, frames);
}

/** Groups fragments into frames (PS3.5 A.4) while they stream, yielding each frame's bytes. */
async function* compressedFrames(
  input: AsyncIterator<Token>,
  from: string,
  frames: number,
): AsyncGenerator<Uint8Array> {
  let offsetTable: number[] | undefined;
  let position = 0;
  let pending: Uint8Array[] = [];
  let yielded = 0;
  for (;;) {
    const next = await input.next();
    if (next.done) throw new TranscodeError('The encapsulated Pixel Data ends without its sequence delimiter.');
    const token = next.value;
    if (token.type === 'fragments-end') break;
    if (token.type !== 'fragment')
      throw new TranscodeError('The encapsulated Pixel Data holds something other than fragments.');
    if (offsetTable === undefined) {
      const view = new DataView(token.bytes.buffer, token.bytes.byteOffset, token.bytes.byteLength);
      offsetTable = Array.from({ length: token.bytes.byteLength >> 2 }, (_, k) => view.getUint32(4 * k, true));
      continue;
    }
    const startsFrame =
      pending.length === 0 ||
      (frames > 1 &&
        (offsetTable.length === frames
          ? offsetTable.includes(position)
          : from === '1.2.840.10008.1.2.5' || startsImage(token.bytes)));
    if (startsFrame && pending.length > 0) {
      yield Buffer.concat(pending);
      yielded++;
      pending = [];
    }
    pending.push(token.bytes);
    position += 8 + token.bytes.byteLength;
  }
  if (pending.length > 0) {
    yield Buffer.concat(pending);
    yielded++;
  }
  if (yielded !== frames) {
    throw new TranscodeError(
      `The encapsulated Pixel Data holds ${yielded} frame(s), not the ${frames} Number of Frames says.`,
    );
  }
}

/** JPEG and JPEG-LS SOI, a JPEG 2000 codestream (SOC), a JP2 signature box. */
function startsImage(bytes: Uint8Array): boolean {
  const a = bytes[0];
  const b = bytes[1];
  return (a === 0xff && (b === 0xd8 || b === 0x4f)) || (a === 0 && b === 0 && bytes[2] === 0 && bytes[3] === 0x0c);
}

/** Native frames cut from the Pixel Data value as it streams, little endian whatever the source. */
async function* nativeFrames(
  first: ElementToken,
  input: AsyncIterator<Token>,
  source: PixelDescription,
  frames: number,
): AsyncGenerator<Uint8Array> {
  const size = frameLength(source);
  if (size * frames > first.length) {
    throw new TranscodeError(`The Pixel Data holds ${first.length} bytes, fewer than ${frames} frame(s) of ${size}.`);
  }
  const swap = !first.littleEndian && first.vr === 'OW';
  let frame = Buffer.alloc(size);
  let filled = 0;
  let made = 0;
  const take = function* (bytes: Uint8Array): Generator<Uint8Array> {
    for (let at = 0; at < bytes.byteLength && made < frames;) {
      const count = Math.min(size - filled, bytes.byteLength - at);
      frame.set(bytes.subarray(at, at + count), filled);
      filled += count;
      at += count;
      if (filled === size) {
        if (swap) frame.swap16();
        yield frame;
        made++;
        frame = Buffer.alloc(size);
        filled = 0;
      }
    }
  };
  if (first.value) {
    yield* take(first.value);
    return;
  }
  let remaining = first.length;
  while (remaining > 0) {
    const next = await input.next();
    if (next.done || next.value.type !== 'chunk') throw new TranscodeError('The Pixel Data value ends early.');
    remaining -= next.value.bytes.byteLength;
    yield* take(next.value.bytes);
  }
}

async function* pixelData(
  first: Extract<Token, { type: 'element' | 'fragments' }>,
  input: AsyncIterator<Token>,
  attributes: ImageAttributes,
  recoding: PixelRecoding,
): AsyncGenerator<Token> {
  const source = attributes.description();
  const frames = frameCount(attributes);
  const native = recoding.decode ? decodedDescription(recoding.from, source) : source;
  const output = outputDescription(recoding, source);
  const pixels = sourceFrames(first, input, recoding, source, frames);
  if (!recoding.encode) {
    const size = frameLength(native);
    const total = size * frames;
    const length = total + (total % 2);
    yield {
      type: 'element',
      tag: PIXEL_DATA,
      vr: native.bitsAllocated > 8 ? 'OW' : 'OB',
      length,
      littleEndian: true,
      value: undefined,
    };
    for await (const frame of pixels) {
      if (frame.byteLength !== size)
        throw new TranscodeError(`A frame decoded to ${frame.byteLength} bytes, not ${size}.`);
      yield { type: 'chunk', bytes: frame };
    }
    if (total % 2 === 1) yield { type: 'chunk', bytes: new Uint8Array(1) };
    return;
  }
  yield { type: 'fragments', tag: PIXEL_DATA };
  // An empty Basic Offset Table: the frames' sizes are known only once encoded (PS3.5 A.4 allows it).
  yield { type: 'fragment', bytes: new Uint8Array(0) };
  for await (const frame of pixels) {
    const encoded = await encodeFrame(recoding.to, frame, native);
    if (encoded.description.photometricInterpretation !== output.photometricInterpretation) {
      throw new TranscodeError(
        `The encoder produced ${encoded.description.photometricInterpretation} where ${output.photometricInterpretation} was declared.`,
      );
    }
    const bytes = encoded.bytes;
    // Fragments have even length (PS3.5 A.4): a trailing zero after the end marker.
    yield { type: 'fragment', bytes: bytes.byteLength % 2 === 0 ? bytes : Buffer.concat([bytes, new Uint8Array(1)]) };
  }
  yield { type: 'fragments-end' };
}
