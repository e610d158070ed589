/**
 * The contract between pixel decoders (src/dicom/codecs) and their users (transcoding, rendering):
 * what a frame's samples are, and a decoded frame in native layout.
 */

/** Image Pixel Module attributes (PS3.3 C.7.6.3) that say how a frame's samples are laid out. */
export interface PixelDescription {
  readonly rows: number;
  readonly columns: number;
  readonly samplesPerPixel: number;
  readonly bitsAllocated: number;
  readonly bitsStored: number;
  readonly highBit: number;
  /** 0 unsigned, 1 two's complement. */
  readonly pixelRepresentation: 0 | 1;
  readonly photometricInterpretation: string;
  /** 0 colour-by-pixel (RGBRGB…), 1 colour-by-plane (RR…GG…BB…). */
  readonly planarConfiguration: 0 | 1;
}

/**
 * One frame as native (uncompressed) little-endian samples, `bitsAllocated` bits each, laid out as
 * `description` says. Decoding may change the description: a JPEG baseline YBR_FULL_422 frame
 * decodes to RGB or YBR_FULL with planar configuration 0, and the description says which.
 */
export interface DecodedFrame {
  readonly pixels: Uint8Array;
  readonly description: PixelDescription;
}
