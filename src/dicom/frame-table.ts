import type { EncapsulatedLayout, Fragment } from './fragments.js';

/** A frame as byte ranges of the stored file: one for native data, one per fragment when encapsulated. */
export type FrameRanges = readonly (readonly [offset: number, length: number])[];

/**
 * Native pixel data: frames follow each other at a fixed size (bits packed for 1-bit data).
 * YBR_FULL_422 keeps two samples per pixel, not three (PS3.5 8.2.1: Y1 Y2 Cb Cr per pair).
 */
export function nativeFrames(
  pixelDataOffset: number,
  pixelDataLength: number,
  image: {
    rows: number;
    columns: number;
    samplesPerPixel: number;
    bitsAllocated: number;
    numberOfFrames: number;
    photometricInterpretation?: string | undefined;
  },
): FrameRanges[] | undefined {
  const samples = image.photometricInterpretation === 'YBR_FULL_422' ? 2 : image.samplesPerPixel;
  const bits = image.rows * image.columns * samples * image.bitsAllocated;
  if (bits <= 0 || image.numberOfFrames <= 0) return undefined;
  const frames: FrameRanges[] = [];
  for (let i = 0; i < image.numberOfFrames; i += 1) {
    const startBit = i * bits;
    const start = Math.floor(startBit / 8);
    const end = Math.ceil((startBit + bits) / 8);
    if (end > pixelDataLength) return frames.length > 0 ? frames : undefined;
    frames.push([[pixelDataOffset + start, end - start]]);
  }
  return frames;
}

/** Bytes that begin a compressed image: JPEG and JPEG-LS SOI, a JPEG 2000 codestream, a JP2 box. */
function startsImage(fragment: Fragment): boolean {
  return fragment.head.startsWith('ffd8') || fragment.head.startsWith('ff4f') || fragment.head.startsWith('0000000c');
}

const ranges = (fragments: readonly Fragment[]): FrameRanges => fragments.map((f) => [f.offset, f.length] as const);

/**
 * Groups fragments into frames (PS3.5 A.4): by the Basic Offset Table when there is one; one
 * frame for a single-frame image; one fragment per frame when the counts agree; else by where a
 * compressed image starts. Undefined when the frames cannot be told apart.
 */
export function encapsulatedFrames(layout: EncapsulatedLayout, numberOfFrames: number): FrameRanges[] | undefined {
  const { fragments, basicOffsetTable } = layout;
  if (fragments.length === 0 || numberOfFrames <= 0) return undefined;
  if (basicOffsetTable.length === numberOfFrames) {
    const frames: FrameRanges[] = [];
    for (let k = 0; k < numberOfFrames; k += 1) {
      const from = basicOffsetTable[k] ?? 0;
      const to = basicOffsetTable[k + 1] ?? Number.POSITIVE_INFINITY;
      const members = fragments.filter((f) => {
        const relative = f.offset - 8 - layout.firstItemOffset;
        return relative >= from && relative < to;
      });
      if (members.length === 0) return undefined;
      frames.push(ranges(members));
    }
    return frames;
  }
  if (numberOfFrames === 1) return [ranges(fragments)];
  if (fragments.length === numberOfFrames) return fragments.map((f) => ranges([f]));
  const starts = fragments.flatMap((f, i) => (startsImage(f) ? [i] : []));
  if (starts.length !== numberOfFrames || starts[0] !== 0) return undefined;
  return starts.map((start, k) => ranges(fragments.slice(start, starts[k + 1] ?? fragments.length)));
}
