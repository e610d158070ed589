/**
 * JPEG lossless (process 14, any predictor, and its selection value 1 subset), decoded by
 * jpeg-lossless-decoder-js. The samples keep their photometric interpretation: lossless JPEG
 * applies no colour transform.
 */
import { Decoder } from 'jpeg-lossless-decoder-js';
import { CodecError } from './codec-error.js';
import { bytesPerSample, checkLength } from './frame-layout.js';
import type { DecodedFrame, PixelDescription } from './pixel-description.js';

export function decodeJpegLossless(encoded: Uint8Array, description: PixelDescription): DecodedFrame {
  const sampleBytes = bytesPerSample(description);
  if (sampleBytes > 2) throw new CodecError('JPEG lossless frames of more than 16 bits per sample are not supported.');
  if (sampleBytes === 2 && description.samplesPerPixel !== 1) {
    throw new CodecError('JPEG lossless colour frames of more than 8 bits per sample are not supported.');
  }
  // The decoder reads from an ArrayBuffer: give it exactly the frame's bytes.
  const buffer = encoded.buffer.slice(encoded.byteOffset, encoded.byteOffset + encoded.byteLength) as ArrayBuffer;
  let samples: Uint8Array | Uint16Array;
  try {
    samples = new Decoder().decode(buffer, 0, buffer.byteLength, sampleBytes);
  } catch (error) {
    throw new CodecError(`The JPEG lossless frame could not be decoded: ${String(error)}`);
  }
  const pixels = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength);
  const decoded: PixelDescription = { ...description, planarConfiguration: 0 };
  checkLength(pixels, decoded, 'JPEG lossless');
  return { pixels, description: decoded };
}
