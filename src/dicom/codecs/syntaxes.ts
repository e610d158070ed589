/** The compressed transfer syntaxes this server decodes or encodes (PS3.5 §8, Annex A.4). */
export const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
export const JPEG_EXTENDED = '1.2.840.10008.1.2.4.51';
export const JPEG_LOSSLESS = '1.2.840.10008.1.2.4.57';
export const JPEG_LOSSLESS_SV1 = '1.2.840.10008.1.2.4.70';
export const JPEG_LS_LOSSLESS = '1.2.840.10008.1.2.4.80';
export const JPEG_LS_NEAR_LOSSLESS = '1.2.840.10008.1.2.4.81';
export const JPEG_2000_LOSSLESS = '1.2.840.10008.1.2.4.90';
export const JPEG_2000 = '1.2.840.10008.1.2.4.91';
export const HTJ2K_LOSSLESS = '1.2.840.10008.1.2.4.201';
export const HTJ2K_LOSSLESS_RPCL = '1.2.840.10008.1.2.4.202';
export const HTJ2K = '1.2.840.10008.1.2.4.203';
export const RLE_LOSSLESS = '1.2.840.10008.1.2.5';

/**
 * Syntaxes whose pixels may have lost information: JPEG baseline/extended and JPEG-LS near-lossless
 * always may, JPEG 2000 (4.91) and HTJ2K (4.203) may or may not (the codestream says, but only once
 * read), so a decoded frame of any of them is not claimed as lossless.
 */
const MAYBE_LOSSY = new Set([JPEG_BASELINE, JPEG_EXTENDED, JPEG_LS_NEAR_LOSSLESS, JPEG_2000, HTJ2K]);

export function mayBeLossy(transferSyntaxUid: string): boolean {
  return MAYBE_LOSSY.has(transferSyntaxUid);
}

/**
 * Targets that promise the pixels are exactly the original ones (the "Lossless Only" syntaxes):
 * pixels that may have been through a lossy codec must not be written into them.
 */
const LOSSLESS_ONLY = new Set([
  JPEG_LOSSLESS,
  JPEG_LOSSLESS_SV1,
  JPEG_LS_LOSSLESS,
  JPEG_2000_LOSSLESS,
  HTJ2K_LOSSLESS,
  HTJ2K_LOSSLESS_RPCL,
  RLE_LOSSLESS,
]);

export function isLosslessOnly(transferSyntaxUid: string): boolean {
  return LOSSLESS_ONLY.has(transferSyntaxUid);
}

const WAVELET = new Set([JPEG_2000_LOSSLESS, JPEG_2000, HTJ2K_LOSSLESS, HTJ2K_LOSSLESS_RPCL, HTJ2K]);

/** JPEG 2000 and HTJ2K: the syntaxes whose codestreams may carry a multi-component transform. */
export function isWavelet(transferSyntaxUid: string): boolean {
  return WAVELET.has(transferSyntaxUid);
}
