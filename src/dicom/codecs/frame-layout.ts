/** Sizes and layouts of native frames, shared by the codecs. */
import { CodecError } from './codec-error.js';
import type { PixelDescription } from './pixel-description.js';
import type { WasmFrameInfo } from './wasm-module.js';

/** Bytes of one native frame (bits packed for 1-bit data). */
export function frameLength(description: PixelDescription): number {
  const { rows, columns, samplesPerPixel, bitsAllocated } = description;
  return Math.ceil((rows * columns * samplesPerPixel * bitsAllocated) / 8);
}

export function bytesPerSample(description: PixelDescription): number {
  return description.bitsAllocated <= 8 ? 1 : description.bitsAllocated <= 16 ? 2 : 4;
}

/** Colour-by-plane samples (RR…GG…BB…) as colour-by-pixel (RGBRGB…), in units of `sampleBytes`. */
export function interleave(planes: Uint8Array, pixelCount: number, samples: number, sampleBytes: number): Uint8Array {
  if (samples === 1) return planes;
  const out = new Uint8Array(planes.byteLength);
  for (let s = 0; s < samples; s++) {
    for (let p = 0; p < pixelCount; p++) {
      const from = (s * pixelCount + p) * sampleBytes;
      const to = (p * samples + s) * sampleBytes;
      for (let b = 0; b < sampleBytes; b++) out[to + b] = planes[from + b] ?? 0;
    }
  }
  return out;
}

/** A frame in colour-by-pixel order whatever its planar configuration. */
export function colourByPixel(pixels: Uint8Array, description: PixelDescription): Uint8Array {
  if (description.planarConfiguration === 0 || description.samplesPerPixel === 1) return pixels;
  return interleave(
    pixels,
    description.rows * description.columns,
    description.samplesPerPixel,
    bytesPerSample(description),
  );
}

/** Throws unless the codestream's size and components are what the data set says. */
export function checkGeometry(info: WasmFrameInfo, description: PixelDescription, codec: string): void {
  if (info.width === 0 || info.height === 0) throw new CodecError(`The ${codec} codestream could not be decoded.`);
  if (info.width !== description.columns || info.height !== description.rows) {
    throw new CodecError(
      `The ${codec} frame is ${info.width}×${info.height}, but the data set says ${description.columns}×${description.rows}.`,
    );
  }
  if (info.componentCount !== description.samplesPerPixel) {
    throw new CodecError(
      `The ${codec} frame has ${info.componentCount} components, but Samples per Pixel is ${description.samplesPerPixel}.`,
    );
  }
}

/** Throws unless the decoded buffer holds exactly one frame as described. */
export function checkLength(pixels: Uint8Array, description: PixelDescription, codec: string): void {
  const expected = frameLength(description);
  if (pixels.byteLength !== expected) {
    throw new CodecError(`The ${codec} frame decoded to ${pixels.byteLength} bytes, not the ${expected} expected.`);
  }
}

/**
 * The precision to encode at: Bits Stored when every sample fits in it, else Bits Allocated, so
 * bits above High Bit (sign extension, overlays, junk) survive a lossless round trip.
 */
export function encodingPrecision(pixels: Uint8Array, description: PixelDescription): number {
  const { bitsStored, bitsAllocated, pixelRepresentation } = description;
  if (bitsStored >= bitsAllocated) return bitsAllocated;
  const signed = pixelRepresentation === 1;
  const samples = aligned(pixels);
  const min = signed ? -(2 ** (bitsStored - 1)) : 0;
  const max = signed ? 2 ** (bitsStored - 1) - 1 : 2 ** bitsStored - 1;
  const view =
    bitsAllocated === 16
      ? signed
        ? new Int16Array(samples.buffer, samples.byteOffset, samples.byteLength >> 1)
        : new Uint16Array(samples.buffer, samples.byteOffset, samples.byteLength >> 1)
      : signed
        ? new Int8Array(samples.buffer, samples.byteOffset, samples.byteLength)
        : samples;
  for (const value of view) if (value < min || value > max) return bitsAllocated;
  return bitsStored;
}

/** Copies a frame whose byte offset is not a multiple of 4 (typed views need alignment) into fresh memory. */
function aligned(pixels: Uint8Array): Uint8Array {
  return pixels.byteOffset % 4 === 0 ? pixels : pixels.slice();
}
