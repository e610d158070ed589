/**
 * Decodes one compressed frame to native samples: the one entry point for transcoding and
 * rendering. Each codec loads on first use and is reused; a call holds one frame in memory.
 */
import { CodecError } from './codec-error.js';
import { decodeHtj2k } from './htj2k.js';
import { afterWavelet, decodeJpeg2000 } from './jpeg-2000.js';
import { decodeJpegBaseline } from './jpeg-baseline.js';
import { decodeJpegExtended12 } from './jpeg-extended-12.js';
import { decodeJpegLossless } from './jpeg-lossless.js';
import { decodeJpegLs } from './jpeg-ls.js';
import type { DecodedFrame, PixelDescription } from './pixel-description.js';
import { decodeRle } from './rle.js';
import * as ts from './syntaxes.js';

export { CodecError } from './codec-error.js';
export type { DecodedFrame, PixelDescription } from './pixel-description.js';

type Decoder = (encoded: Uint8Array, description: PixelDescription) => DecodedFrame | Promise<DecodedFrame>;

/** Process 2 and 4 hold 8- or 12-bit samples; each precision has its own decoder. */
const decodeJpegExtended: Decoder = (encoded, description) =>
  description.bitsStored > 8 ? decodeJpegExtended12(encoded, description) : decodeJpegBaseline(encoded, description);

const DECODERS = new Map<string, Decoder>([
  [ts.JPEG_BASELINE, decodeJpegBaseline],
  [ts.JPEG_EXTENDED, decodeJpegExtended],
  [ts.JPEG_LOSSLESS, decodeJpegLossless],
  [ts.JPEG_LOSSLESS_SV1, decodeJpegLossless],
  [ts.JPEG_LS_LOSSLESS, decodeJpegLs],
  [ts.JPEG_LS_NEAR_LOSSLESS, decodeJpegLs],
  [ts.JPEG_2000_LOSSLESS, decodeJpeg2000],
  [ts.JPEG_2000, decodeJpeg2000],
  [ts.HTJ2K_LOSSLESS, decodeHtj2k],
  [ts.HTJ2K_LOSSLESS_RPCL, decodeHtj2k],
  [ts.HTJ2K, decodeHtj2k],
  [ts.RLE_LOSSLESS, decodeRle],
]);

/** True when frames stored in this transfer syntax can be decoded. */
export function canDecode(transferSyntaxUid: string): boolean {
  return DECODERS.has(transferSyntaxUid);
}

/**
 * Why frames of an image stored in `transferSyntaxUid` with `bitsAllocated` cannot be decoded, or
 * undefined when they can: known before reading a byte, so a request is refused before it starts.
 */
export function decodeRefusal(transferSyntaxUid: string, bitsAllocated: number): string | undefined {
  if (!canDecode(transferSyntaxUid)) return `images stored in ${transferSyntaxUid} cannot be decoded here.`;
  const jpeg = transferSyntaxUid === ts.JPEG_BASELINE || transferSyntaxUid === ts.JPEG_EXTENDED;
  if (jpeg && bitsAllocated > 16) {
    return `JPEG baseline/extended frames hold 8- or 12-bit samples; Bits Allocated ${bitsAllocated} cannot be decoded.`;
  }
  return undefined;
}

/**
 * What `decodeFrame` will return as the description for frames described by `description`,
 * known before any frame is decoded, so a transcoder can write the image attributes first.
 */
export function decodedDescription(transferSyntaxUid: string, description: PixelDescription): PixelDescription {
  const jpeg = transferSyntaxUid === ts.JPEG_BASELINE || transferSyntaxUid === ts.JPEG_EXTENDED;
  const photometric = description.photometricInterpretation;
  return {
    ...description,
    planarConfiguration: 0,
    photometricInterpretation:
      jpeg && description.samplesPerPixel === 3
        ? 'RGB'
        : ts.isWavelet(transferSyntaxUid)
          ? afterWavelet(photometric)
          : photometric,
  };
}

/**
 * One frame's compressed bytes (all its fragments, concatenated) as native little-endian samples,
 * colour-by-pixel (planar configuration 0). The returned description says what changed: JPEG
 * baseline colour and JPEG 2000 YBR_RCT/YBR_ICT frames come back as RGB, and 8-bit JPEG as Bits
 * Allocated 8. Throws CodecError for an unsupported syntax or a frame that does not decode to
 * the rows, columns and samples the description gives.
 */
export async function decodeFrame(
  transferSyntaxUid: string,
  encoded: Uint8Array,
  description: PixelDescription,
): Promise<DecodedFrame> {
  const decoder = DECODERS.get(transferSyntaxUid);
  if (!decoder)
    return Promise.reject(new CodecError(`Frames in transfer syntax ${transferSyntaxUid} cannot be decoded.`));
  return decoder(encoded, description);
}
