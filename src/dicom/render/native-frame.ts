import type { DecodedFrame, PixelDescription } from '../codecs/pixel-description.js';

/**
 * A native (uncompressed) frame: where its bytes lie in the stored file, and those bytes as the
 * DecodedFrame the pipeline takes (little endian, 1-bit samples widened to bytes).
 */

/** A frame's byte range; `bitOffset` is where the frame starts within its first byte (1-bit data). */
export interface NativeFrameRange {
  readonly offset: number;
  readonly length: number;
  readonly bitOffset: number;
}

/** Bits one native frame takes: YBR_FULL_422 keeps two samples per pixel (PS3.5 8.2.1). */
function frameBits(d: PixelDescription): number {
  const samples = d.photometricInterpretation === 'YBR_FULL_422' ? 2 : d.samplesPerPixel;
  return d.rows * d.columns * samples * d.bitsAllocated;
}

/**
 * Frame `index` (0-based) of native Pixel Data at `pixelDataOffset`; undefined when the value
 * is too short to hold it. Computed from the description rather than the stored frame table, so
 * YBR_FULL_422 (two samples per pixel) and 1-bit frames that start inside a byte are read right.
 */
export function nativeFrameRange(
  pixelDataOffset: number,
  pixelDataLength: number,
  d: PixelDescription,
  index: number,
): NativeFrameRange | undefined {
  const bits = frameBits(d);
  const startBit = index * bits;
  const start = Math.floor(startBit / 8);
  const end = Math.ceil((startBit + bits) / 8);
  if (end > pixelDataLength) return undefined;
  return { offset: pixelDataOffset + start, length: end - start, bitOffset: startBit % 8 };
}

/** How many whole frames a native Pixel Data value of this length holds. */
export function nativeFrameCount(pixelDataLength: number, d: PixelDescription): number {
  return Math.floor((pixelDataLength * 8) / frameBits(d));
}

/** 1-bit pixels (least significant bit first, PS3.5 8.1.1) as one byte each. */
function unpackBits(bytes: Uint8Array, bitOffset: number, count: number): Uint8Array {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i += 1) {
    const bit = bitOffset + i;
    out[i] = ((bytes[bit >> 3] ?? 0) >> (bit & 7)) & 1;
  }
  return out;
}

/** The frame's bytes as a DecodedFrame: byte-swapped from big endian, 1-bit data widened. */
export function nativeDecodedFrame(
  bytes: Uint8Array,
  range: Pick<NativeFrameRange, 'bitOffset'>,
  d: PixelDescription,
  littleEndian: boolean,
): DecodedFrame {
  if (d.bitsAllocated === 1) {
    const pixels = unpackBits(bytes, range.bitOffset, d.rows * d.columns * d.samplesPerPixel);
    return { pixels, description: { ...d, bitsAllocated: 8, bitsStored: 1, highBit: 0 } };
  }
  if (littleEndian || d.bitsAllocated === 8) return { pixels: bytes, description: d };
  const swapped = Buffer.from(bytes);
  if (d.bitsAllocated === 16) swapped.swap16();
  else if (d.bitsAllocated === 32) swapped.swap32();
  return { pixels: swapped, description: d };
}
