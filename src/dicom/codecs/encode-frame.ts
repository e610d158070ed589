/**
 * Encodes one native frame losslessly in a compressed transfer syntax: JPEG 2000 (OpenJPEG),
 * HTJ2K (OpenJPH), JPEG-LS (CharLS) and RLE.
 */
import { CodecError } from './codec-error.js';
import { colourByPixel } from './frame-layout.js';
import { encodeHtj2k } from './htj2k.js';
import { encodeJpeg2000, usesMct } from './jpeg-2000.js';
import { encodeJpegLs } from './jpeg-ls.js';
import type { PixelDescription } from './pixel-description.js';
import { encodeRle } from './rle.js';
import * as ts from './syntaxes.js';

type Encoder = (pixels: Uint8Array, description: PixelDescription) => Uint8Array | Promise<Uint8Array>;

const ENCODERS = new Map<string, Encoder>([
  [ts.JPEG_2000_LOSSLESS, encodeJpeg2000],
  [ts.JPEG_2000, encodeJpeg2000],
  [ts.HTJ2K_LOSSLESS, encodeHtj2k],
  [ts.HTJ2K_LOSSLESS_RPCL, encodeHtj2k],
  [ts.HTJ2K, encodeHtj2k],
  [ts.JPEG_LS_LOSSLESS, encodeJpegLs],
  [ts.JPEG_LS_NEAR_LOSSLESS, encodeJpegLs],
  [ts.RLE_LOSSLESS, encodeRle],
]);

export function canEncode(transferSyntaxUid: string): boolean {
  return ENCODERS.has(transferSyntaxUid);
}

export interface EncodedFrame {
  readonly bytes: Uint8Array;
  /** The data set's pixel attributes for the encoded frame (planar configuration 0). */
  readonly description: PixelDescription;
}

/** Photometric interpretations whose samples the encoders take as they are. */
const ENCODABLE = new Set(['MONOCHROME1', 'MONOCHROME2', 'PALETTE COLOR', 'RGB', 'YBR_FULL']);

/**
 * What `encodeFrame` will return as the description: OpenJPEG applies the reversible colour
 * transform to RGB (so YBR_RCT), OpenJPH is told not to.
 */
export function encodedDescription(transferSyntaxUid: string, description: PixelDescription): PixelDescription {
  const rct =
    description.photometricInterpretation === 'RGB' &&
    (transferSyntaxUid === ts.JPEG_2000_LOSSLESS || transferSyntaxUid === ts.JPEG_2000);
  return {
    ...description,
    planarConfiguration: 0,
    photometricInterpretation: rct ? 'YBR_RCT' : description.photometricInterpretation,
  };
}

/** One native frame (either planar configuration) losslessly encoded in `transferSyntaxUid`. */
export async function encodeFrame(
  transferSyntaxUid: string,
  pixels: Uint8Array,
  description: PixelDescription,
): Promise<EncodedFrame> {
  const encoder = ENCODERS.get(transferSyntaxUid);
  if (!encoder) throw new CodecError(`Frames cannot be encoded in transfer syntax ${transferSyntaxUid}.`);
  if (!ENCODABLE.has(description.photometricInterpretation)) {
    throw new CodecError(
      `Frames with photometric interpretation ${description.photometricInterpretation} cannot be encoded in ${transferSyntaxUid}.`,
    );
  }
  if (description.bitsAllocated !== 8 && description.bitsAllocated !== 16) {
    throw new CodecError(`Frames with Bits Allocated ${description.bitsAllocated} cannot be encoded; 8 or 16 only.`);
  }
  const interleaved = colourByPixel(pixels, description);
  const bytes = await encoder(interleaved, { ...description, planarConfiguration: 0 });
  const transformed =
    description.photometricInterpretation === 'RGB' && ts.isWavelet(transferSyntaxUid) && usesMct(bytes);
  return {
    bytes,
    description: {
      ...description,
      planarConfiguration: 0,
      photometricInterpretation: transformed ? 'YBR_RCT' : description.photometricInterpretation,
    },
  };
}
