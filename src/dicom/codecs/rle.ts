/**
 * RLE Lossless (PS3.5 Annex G): a 64-byte header of segment offsets, then one PackBits segment per
 * byte of each sample (most significant byte first, colour planes separately), each row coded on
 * its own. Small enough to do here, in TypeScript, without a codec package.
 */
import { CodecError } from './codec-error.js';
import { bytesPerSample } from './frame-layout.js';
import type { DecodedFrame, PixelDescription } from './pixel-description.js';

const HEADER = 64;
const MAX_SEGMENTS = 15;

function segmentCount(description: PixelDescription): number {
  if (description.bitsAllocated % 8 !== 0) {
    throw new CodecError(`RLE needs whole bytes per sample; Bits Allocated is ${description.bitsAllocated}.`);
  }
  const count = description.samplesPerPixel * (description.bitsAllocated / 8);
  if (count > MAX_SEGMENTS) throw new CodecError(`RLE allows ${MAX_SEGMENTS} segments; this frame needs ${count}.`);
  return count;
}

/** Unpacks one PackBits segment into `out` (one byte of every pixel). */
function unpack(encoded: Uint8Array, start: number, end: number, out: Uint8Array): void {
  let i = start;
  let o = 0;
  while (i < end && o < out.length) {
    const n = encoded[i++] ?? 0;
    if (n < 128) {
      const count = Math.min(n + 1, end - i, out.length - o);
      out.set(encoded.subarray(i, i + count), o);
      i += n + 1;
      o += count;
    } else if (n > 128) {
      const count = Math.min(257 - n, out.length - o);
      out.fill(encoded[i++] ?? 0, o, o + count);
      o += count;
    }
    // 128 (-128) is a no-op.
  }
  if (o < out.length) throw new CodecError(`An RLE segment ends after ${o} of its ${out.length} bytes.`);
}

export function decodeRle(encoded: Uint8Array, description: PixelDescription): DecodedFrame {
  const segments = segmentCount(description);
  if (encoded.byteLength < HEADER) throw new CodecError('The RLE frame is shorter than its 64-byte header.');
  const view = new DataView(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  const declared = view.getUint32(0, true);
  if (declared !== segments) {
    throw new CodecError(`The RLE frame has ${declared} segments; the data set implies ${segments}.`);
  }
  const offsets = Array.from({ length: segments }, (_, k) => view.getUint32(4 + 4 * k, true));
  const pixelCount = description.rows * description.columns;
  const sampleBytes = bytesPerSample(description);
  const samples = description.samplesPerPixel;
  const pixels = new Uint8Array(pixelCount * samples * sampleBytes);
  const segment = new Uint8Array(pixelCount);
  for (let k = 0; k < segments; k++) {
    const start = offsets[k] ?? 0;
    const end = k + 1 < segments ? (offsets[k + 1] ?? 0) : encoded.byteLength;
    if (start < HEADER || end > encoded.byteLength || start > end) {
      throw new CodecError(`RLE segment ${k + 1} has an offset outside the frame.`);
    }
    unpack(encoded, start, end, segment);
    const sample = Math.floor(k / sampleBytes);
    // Segments go from the most significant byte; native samples are little endian.
    const byte = sampleBytes - 1 - (k % sampleBytes);
    for (let p = 0, o = sample * sampleBytes + byte; p < pixelCount; p++, o += samples * sampleBytes) {
      pixels[o] = segment[p] ?? 0;
    }
  }
  return { pixels, description: { ...description, planarConfiguration: 0 } };
}

/** PackBits of one row: replicate runs of 2 or more equal bytes, literal runs otherwise, 128 at most. */
function packRow(row: Uint8Array, out: number[]): void {
  let i = 0;
  while (i < row.length) {
    let run = 1;
    while (i + run < row.length && run < 128 && row[i + run] === row[i]) run++;
    if (run >= 2) {
      out.push(257 - run, row[i] ?? 0);
      i += run;
      continue;
    }
    let end = i + 1;
    while (end < row.length && end - i < 128 && !(end + 1 < row.length && row[end] === row[end + 1])) end++;
    out.push(end - i - 1);
    for (let j = i; j < end; j++) out.push(row[j] ?? 0);
    i = end;
  }
}

/** An RLE Lossless frame of a colour-by-pixel native frame. */
export function encodeRle(pixels: Uint8Array, description: PixelDescription): Uint8Array {
  const segments = segmentCount(description);
  const { rows, columns, samplesPerPixel: samples } = description;
  const sampleBytes = bytesPerSample(description);
  const row = new Uint8Array(columns);
  const encoded: number[][] = [];
  for (let k = 0; k < segments; k++) {
    const sample = Math.floor(k / sampleBytes);
    const byte = sampleBytes - 1 - (k % sampleBytes);
    const out: number[] = [];
    for (let r = 0; r < rows; r++) {
      for (let c = 0, o = (r * columns * samples + sample) * sampleBytes + byte; c < columns; c++) {
        row[c] = pixels[o] ?? 0;
        o += samples * sampleBytes;
      }
      packRow(row, out);
    }
    if (out.length % 2 === 1) out.push(0x80); // a no-op keeps every segment even
    encoded.push(out);
  }
  const total = HEADER + encoded.reduce((sum, segment) => sum + segment.length, 0);
  const frame = new Uint8Array(total);
  const view = new DataView(frame.buffer);
  view.setUint32(0, segments, true);
  let offset = HEADER;
  encoded.forEach((segment, k) => {
    view.setUint32(4 + 4 * k, offset, true);
    frame.set(segment, offset);
    offset += segment.length;
  });
  return frame;
}
