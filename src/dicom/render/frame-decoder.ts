import type { DecodedFrame, PixelDescription } from '../codecs/pixel-description.js';

/**
 * Decodes one compressed frame (its fragments' bytes joined) of the given transfer syntax. The
 * app is composed with one (src/dicom/codecs' decodeFrame); a syntax it cannot decode rejects,
 * and without one only native pixel data is rendered.
 */
export type FrameDecoder = (
  transferSyntaxUid: string,
  encoded: Uint8Array,
  description: PixelDescription,
) => Promise<DecodedFrame>;
