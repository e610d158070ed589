/** A PixelDescription from the Image Pixel Module attributes, however they are held. */
import type { PixelDescription } from './pixel-description.js';

export const PixelTag = {
  samplesPerPixel: 0x00280002,
  photometricInterpretation: 0x00280004,
  planarConfiguration: 0x00280006,
  numberOfFrames: 0x00280008,
  rows: 0x00280010,
  columns: 0x00280011,
  bitsAllocated: 0x00280100,
  bitsStored: 0x00280101,
  highBit: 0x00280102,
  pixelRepresentation: 0x00280103,
} as const;

export interface PixelAttributes {
  /** The first value of a numeric attribute (US or IS), undefined when absent or empty. */
  number(tag: number): number | undefined;
  /** A text attribute without padding, undefined when absent. */
  text(tag: number): string | undefined;
}

/** Rows, Columns and Bits Allocated are required; the rest default as PS3.3 C.7.6.3 implies. */
export function describePixels(attributes: PixelAttributes): PixelDescription | string {
  const rows = attributes.number(PixelTag.rows);
  const columns = attributes.number(PixelTag.columns);
  const bitsAllocated = attributes.number(PixelTag.bitsAllocated);
  const valid = (n: number | undefined): n is number => n !== undefined && Number.isInteger(n) && n > 0;
  if (!valid(rows) || !valid(columns) || !valid(bitsAllocated)) {
    return 'The image lacks a valid Rows, Columns or Bits Allocated.';
  }
  const bitsStored = attributes.number(PixelTag.bitsStored) ?? bitsAllocated;
  return {
    rows,
    columns,
    samplesPerPixel: attributes.number(PixelTag.samplesPerPixel) ?? 1,
    bitsAllocated,
    bitsStored,
    highBit: attributes.number(PixelTag.highBit) ?? bitsStored - 1,
    pixelRepresentation: attributes.number(PixelTag.pixelRepresentation) === 1 ? 1 : 0,
    photometricInterpretation: attributes.text(PixelTag.photometricInterpretation) ?? 'MONOCHROME2',
    planarConfiguration: attributes.number(PixelTag.planarConfiguration) === 1 ? 1 : 0,
  };
}

/** Number of Frames, 1 when absent or invalid. */
export function frameCount(attributes: PixelAttributes): number {
  const frames = attributes.number(PixelTag.numberOfFrames);
  return frames !== undefined && Number.isInteger(frames) && frames > 0 ? frames : 1;
}
