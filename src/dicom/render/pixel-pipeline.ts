import type { DecodedFrame, PixelDescription } from '../codecs/pixel-description.js';
import {
  checkDescription,
  NotRenderable,
  type Lut,
  type RenderAttributes,
  type WindowSetting,
} from './render-attributes.js';

/**
 * The grayscale and colour pipelines of PS3.4 N.2 for one decoded frame, to 8-bit display values:
 * stored values → Modality LUT (rescale or LUT) → VOI (the request's window, else the data set's
 * first window, else its VOI LUT, else the frame's range) → MONOCHROME1 inversion; colour
 * frames are converted to RGB (YBR_FULL, YBR_FULL_422, PALETTE COLOR).
 */

export interface RenderedImage {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  /** Row by row, channel-interleaved 8-bit values. */
  readonly data: Uint8Array;
}

/** The frame's samples as numbers (8 or 16 bits each, little endian). */
function samples(frame: DecodedFrame): Uint8Array | Uint16Array {
  const { pixels, description } = frame;
  if (description.bitsAllocated <= 8) return pixels;
  const aligned = pixels.byteOffset % 2 === 0 ? pixels : Uint8Array.from(pixels);
  return new Uint16Array(aligned.buffer, aligned.byteOffset, Math.floor(aligned.byteLength / 2));
}

/** Reads a stored value out of a sample: the Bits Stored below High Bit, sign-extended when signed. */
function storedValueReader(d: PixelDescription) {
  const shift = d.highBit + 1 - d.bitsStored;
  const mask = d.bitsStored >= 32 ? 0xffffffff : 2 ** d.bitsStored - 1;
  const range = mask + 1;
  const half = range / 2;
  return {
    shift,
    mask,
    /** The value an index (a masked sample) stands for. */
    value: (index: number) => (d.pixelRepresentation === 1 && index >= half ? index - range : index),
  };
}

function lookup(lut: Lut, value: number): number {
  const index = Math.min(Math.max(Math.round(value) - lut.first, 0), lut.data.length - 1);
  return lut.data[index] ?? 0;
}

/** PS3.3 C.11.2.1.2 and C.11.2.1.3: one window function, to 0..255. */
export function windowFunction(window: WindowSetting): (x: number) => number {
  const { center: c, width: w } = window;
  if (window.function === 'SIGMOID') return (x) => 255 / (1 + Math.exp((-4 * (x - c)) / w));
  if (window.function === 'LINEAR_EXACT') {
    return (x) => (x <= c - w / 2 ? 0 : x > c + w / 2 ? 255 : ((x - c) / w + 0.5) * 255);
  }
  const low = c - 0.5 - (w - 1) / 2;
  const high = c - 0.5 + (w - 1) / 2;
  return (x) => (x <= low ? 0 : x > high ? 255 : ((x - (c - 0.5)) / (w - 1) + 0.5) * 255);
}

function monochrome(frame: DecodedFrame, attributes: RenderAttributes, requested?: WindowSetting): RenderedImage {
  const d = frame.description;
  if (d.bitsStored > 16) throw new NotRenderable(`Bits Stored ${d.bitsStored} is not rendered (up to 16 is)`);
  const raw = samples(frame);
  const count = d.rows * d.columns;
  const reader = storedValueReader(d);
  // Every possible stored value through the Modality LUT once: a table, not a computation per pixel.
  const modality = new Float64Array(reader.mask + 1);
  const { slope, intercept } = attributes.rescale;
  for (let index = 0; index <= reader.mask; index += 1) {
    const value = reader.value(index);
    modality[index] = attributes.modalityLut ? lookup(attributes.modalityLut, value) : value * slope + intercept;
  }
  let voi: (x: number) => number;
  const window = requested ?? attributes.window;
  if (window) voi = windowFunction(window);
  else if (attributes.voiLut) {
    const lut = attributes.voiLut;
    const top = 2 ** lut.bits - 1;
    voi = (x) => (lookup(lut, x) / top) * 255;
  } else {
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < count; i += 1) {
      const value = modality[((raw[i] ?? 0) >>> reader.shift) & reader.mask] ?? 0;
      if (value < min) min = value;
      if (value > max) max = value;
    }
    voi = windowFunction({ center: (min + max) / 2, width: Math.max(max - min, 1e-9), function: 'LINEAR_EXACT' });
  }
  const invert = d.photometricInterpretation === 'MONOCHROME1';
  const table = new Uint8Array(reader.mask + 1);
  for (let index = 0; index <= reader.mask; index += 1) {
    const shown = Math.round(Math.min(Math.max(voi(modality[index] ?? 0), 0), 255));
    table[index] = invert ? 255 - shown : shown;
  }
  const data = new Uint8Array(count);
  for (let i = 0; i < count; i += 1) data[i] = table[((raw[i] ?? 0) >>> reader.shift) & reader.mask] ?? 0;
  return { width: d.columns, height: d.rows, channels: 1, data };
}

const clamp8 = (value: number) => (value < 0 ? 0 : value > 255 ? 255 : Math.round(value));

/** PS3.3 C.7.6.3.1.2: full-range YCbCr to RGB. */
function ybrToRgb(out: Uint8Array, at: number, y: number, cb: number, cr: number): void {
  out[at] = clamp8(y + 1.402 * (cr - 128));
  out[at + 1] = clamp8(y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128));
  out[at + 2] = clamp8(y + 1.772 * (cb - 128));
}

function color(frame: DecodedFrame): RenderedImage {
  const d = frame.description;
  const raw = samples(frame);
  const count = d.rows * d.columns;
  const reader = storedValueReader(d);
  const to8 =
    d.bitsStored > 8
      ? (s: number) => ((s >>> reader.shift) & reader.mask) >>> (d.bitsStored - 8)
      : (s: number) => Math.round((((s >>> reader.shift) & reader.mask) * 255) / reader.mask);
  const data = new Uint8Array(count * 3);
  const photometric = d.photometricInterpretation;
  if (photometric === 'YBR_FULL_422' && raw.length < count * 3) {
    // Native 4:2:2: Y1 Y2 Cb Cr for each pair of pixels along a row (PS3.3 C.7.6.3.1.2).
    for (let pair = 0; pair < count / 2; pair += 1) {
      const base = pair * 4;
      const cb = to8(raw[base + 2] ?? 0);
      const cr = to8(raw[base + 3] ?? 0);
      ybrToRgb(data, pair * 6, to8(raw[base] ?? 0), cb, cr);
      ybrToRgb(data, pair * 6 + 3, to8(raw[base + 1] ?? 0), cb, cr);
    }
    return { width: d.columns, height: d.rows, channels: 3, data };
  }
  const planar = d.planarConfiguration === 1;
  const sample = (pixel: number, channel: number) =>
    to8((planar ? raw[channel * count + pixel] : raw[pixel * 3 + channel]) ?? 0);
  const ybr = photometric === 'YBR_FULL' || photometric === 'YBR_FULL_422';
  for (let p = 0; p < count; p += 1) {
    if (ybr) ybrToRgb(data, p * 3, sample(p, 0), sample(p, 1), sample(p, 2));
    else {
      data[p * 3] = sample(p, 0);
      data[p * 3 + 1] = sample(p, 1);
      data[p * 3 + 2] = sample(p, 2);
    }
  }
  return { width: d.columns, height: d.rows, channels: 3, data };
}

function paletteColor(frame: DecodedFrame, palette: NonNullable<RenderAttributes['palette']>): RenderedImage {
  const d = frame.description;
  const raw = samples(frame);
  const count = d.rows * d.columns;
  const reader = storedValueReader(d);
  const data = new Uint8Array(count * 3);
  const channels = [palette.red, palette.green, palette.blue];
  const tables = channels.map((lut) => {
    const table = new Uint8Array(reader.mask + 1);
    const scale = lut.bits > 8 ? 1 / 256 : 1;
    for (let index = 0; index <= reader.mask; index += 1)
      table[index] = clamp8(Math.floor(lookup(lut, reader.value(index)) * scale));
    return table;
  });
  for (let p = 0; p < count; p += 1) {
    const index = ((raw[p] ?? 0) >>> reader.shift) & reader.mask;
    for (let c = 0; c < 3; c += 1) data[p * 3 + c] = tables[c]?.[index] ?? 0;
  }
  return { width: d.columns, height: d.rows, channels: 3, data };
}

const COLOR = new Set(['RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_ICT', 'YBR_RCT']);

/** One frame to display values. `window` is the request's; otherwise the data set decides. */
export function renderFrame(frame: DecodedFrame, attributes: RenderAttributes, window?: WindowSetting): RenderedImage {
  const d = frame.description;
  checkDescription(d);
  const needed = d.rows * d.columns * (d.photometricInterpretation === 'YBR_FULL_422' ? 2 : d.samplesPerPixel);
  if (samples(frame).length < needed)
    throw new NotRenderable('the frame holds fewer samples than its rows and columns need');
  const photometric = d.photometricInterpretation;
  if (d.samplesPerPixel === 1 && (photometric === 'MONOCHROME1' || photometric === 'MONOCHROME2'))
    return monochrome(frame, attributes, window);
  if (d.samplesPerPixel === 1 && photometric === 'PALETTE COLOR' && attributes.palette)
    return paletteColor(frame, attributes.palette);
  // YBR_ICT and YBR_RCT exist only inside JPEG 2000 codestreams, whose decoders give RGB.
  if (d.samplesPerPixel === 3 && COLOR.has(photometric)) return color(frame);
  throw new NotRenderable(
    `Photometric Interpretation ${photometric} with ${d.samplesPerPixel} samples per pixel is not rendered`,
  );
}
