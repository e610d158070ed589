/**
 * Streaming transcoder between transfer syntaxes, so WADO-RS can deliver a stored instance in the
 * syntax a client accepts without holding the file in memory: among the native syntaxes by
 * re-encoding the data set, and to, from or between compressed ones by re-coding Pixel Data one
 * frame at a time.
 */
import { canDecode } from '../codecs/decode-frame.js';
import { canEncode } from '../codecs/encode-frame.js';
import { isLosslessOnly, mayBeLossy } from '../codecs/syntaxes.js';
import { transferSyntaxInfo } from '../transfer-syntax.js';
import { rewritePart10 } from './part10-rewrite.js';
import { recodePixels } from './pixel-transcode.js';
import { TranscodeError } from './transcode-error.js';

export { TranscodeError } from './transcode-error.js';

/**
 * Why an instance stored in `from` cannot be delivered in `to`, or undefined when it can: the
 * same syntax, native to native, compressed to native (decoded), native to a syntax we encode,
 * and compressed to compressed through both, except possibly-lossy pixels into a lossless-only
 * syntax.
 */
export function transcodeRefusal(from: string, to: string): string | undefined {
  if (from === to) return undefined;
  const input = transferSyntaxInfo(from);
  const output = transferSyntaxInfo(to);
  if (!input) return `${from} is not a transfer syntax this server reads.`;
  if (!output) return `${to} is not a transfer syntax this server knows.`;
  if (input.encapsulated && !canDecode(from)) return `images stored in ${from} cannot be decoded here.`;
  if (output.encapsulated && !canEncode(to)) return `this server does not encode ${to}.`;
  if (input.encapsulated && output.encapsulated && mayBeLossy(from) && isLosslessOnly(to)) {
    return `${from} may be lossy, and ${to} is a lossless-only syntax: re-encoding would claim pixels are original when they may not be.`;
  }
  return undefined;
}

export function canTranscode(from: string, to: string): boolean {
  return transcodeRefusal(from, to) === undefined;
}

/**
 * Streams a Part 10 file stored in `from` as a Part 10 file in `to`. Memory stays bounded: element
 * headers and values up to 64 KiB are read whole, larger values (pixel data) pass through in
 * pieces, byte-swapped when the byte order changes; compressed pixel data is held one frame at a
 * time.
 */
export async function* transcode(
  source: AsyncIterable<Uint8Array>,
  from: string,
  to: string,
): AsyncGenerator<Uint8Array> {
  const input = transferSyntaxInfo(from);
  const output = transferSyntaxInfo(to);
  const refusal = transcodeRefusal(from, to);
  if (!input || !output || refusal) throw new TranscodeError(`Cannot transcode ${from} to ${to}: ${refusal ?? ''}`);
  yield* rewritePart10(source, input, output, (tokens) =>
    input.encapsulated || output.encapsulated
      ? recodePixels(tokens, { from, to, decode: input.encapsulated, encode: output.encapsulated })
      : tokens,
  );
}
