/**
 * One frame re-coded for the frames resource: compressed → native samples, native → compressed,
 * or compressed → compressed, held in memory one frame at a time.
 */
import { decodeFrame } from '../codecs/decode-frame.js';
import { encodeFrame } from '../codecs/encode-frame.js';
import type { PixelDescription } from '../codecs/pixel-description.js';
import { transferSyntaxInfo } from '../transfer-syntax.js';
import { transcodeRefusal } from './transcode.js';

const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';

/**
 * Whether frames stored in `stored` can be sent as `target` by re-coding their pixels: explicit
 * VR little endian (decoded) or a compressed syntax we encode, under the same lossless rule as
 * whole instances. Native to native needs no re-coding (at most a byte swap).
 */
export function frameRecodable(stored: string, target: string): boolean {
  const from = transferSyntaxInfo(stored);
  const to = transferSyntaxInfo(target);
  if (!from || !to || from.deflated || stored === target) return false;
  if (!from.encapsulated && !to.encapsulated) return false;
  if (!to.encapsulated && target !== EXPLICIT_VR_LITTLE_ENDIAN) return false;
  return transcodeRefusal(stored, target) === undefined;
}

/** A stored frame's bytes (all its fragments) as `target`. */
export async function recodeFrame(
  bytes: Uint8Array,
  stored: string,
  target: string,
  description: PixelDescription,
): Promise<Uint8Array> {
  const from = transferSyntaxInfo(stored);
  let pixels = bytes;
  let layout = description;
  if (from?.encapsulated) {
    const decoded = await decodeFrame(stored, bytes, description);
    pixels = decoded.pixels;
    layout = decoded.description;
  } else if (from?.littleEndian === false && description.bitsAllocated === 16) {
    pixels = Buffer.from(bytes).swap16();
  }
  if (!transferSyntaxInfo(target)?.encapsulated) return pixels;
  return (await encodeFrame(target, pixels, layout)).bytes;
}
