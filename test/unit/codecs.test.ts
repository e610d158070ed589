/**
 * Each codec against pixels we made: the Debian tools compress a synthetic image, our transcoder
 * decodes it, and the samples must equal the source exactly (lossless syntaxes) or within a
 * stated error (lossy ones); our encoders' output must decode, with an independent decoder where
 * one exists, to the source again.
 */
import { describe, expect, it } from 'vitest';
import { canDecode, decodeFrame } from '../../src/dicom/codecs/decode-frame.js';
import { encodeFrame } from '../../src/dicom/codecs/encode-frame.js';
import type { PixelDescription } from '../../src/dicom/codecs/pixel-description.js';
import { lazyModule, wasmDecode, construct, type WasmDecoder } from '../../src/dicom/codecs/wasm-module.js';
import { transcode } from '../../src/dicom/transcode/transcode.js';
import {
  compressed,
  convert,
  describeImage,
  hasTool,
  imagePixels,
  type ImageSpec,
  MAKERS,
  maxDifference,
  nativeImage,
  nativePixelData,
  parse,
} from '../../support/codec-corpus.js';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';

async function run(file: Uint8Array, from: string, to: string): Promise<Buffer> {
  // Small chunks: element headers and fragments straddle them, as blob downloads do.
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < file.length; at += 65_536) chunks.push(file.subarray(at, at + 65_536));
  const source = () => chunks.values();
  const out: Uint8Array[] = [];
  for await (const chunk of transcode(toAsync(source()), from, to)) out.push(chunk);
  return Buffer.concat(out);
}

async function* toAsync(chunks: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) yield await Promise.resolve(chunk);
}

const toolFor = (syntax: string) => MAKERS[syntax]?.tool ?? '';

/** Lossless syntaxes made by Debian tools, and the images each is tried on. */
const LOSSLESS: readonly [string, ImageSpec][] = [
  ['1.2.840.10008.1.2.4.57', { kind: 'ct' }],
  ['1.2.840.10008.1.2.4.70', { kind: 'ct' }],
  ['1.2.840.10008.1.2.4.70', { kind: 'grey8', rows: 100, columns: 75 }],
  ['1.2.840.10008.1.2.4.80', { kind: 'ct' }],
  ['1.2.840.10008.1.2.4.80', { kind: 'rgb', rows: 64, columns: 48 }],
  ['1.2.840.10008.1.2.4.90', { kind: 'ct' }],
  ['1.2.840.10008.1.2.4.90', { kind: 'signed-ct', rows: 128, columns: 128 }],
  ['1.2.840.10008.1.2.4.90', { kind: 'rgb', rows: 64, columns: 48 }],
  ['1.2.840.10008.1.2.5', { kind: 'ct' }],
  ['1.2.840.10008.1.2.5', { kind: 'rgb', rows: 64, columns: 47 }],
  ['1.2.840.10008.1.2.5', { kind: 'ct', rows: 32, columns: 32, frames: 3 }],
];

describe('decoding what the Debian tools compress', () => {
  for (const [syntax, spec] of LOSSLESS) {
    const label = `${syntax} ${spec.kind ?? 'ct'} ${spec.columns ?? 512}×${spec.rows ?? 512}×${spec.frames ?? 1}`;
    it.skipIf(!hasTool(toolFor(syntax)))(
      `${label}: pixel-exact after decoding to explicit VR little endian`,
      async () => {
        const { file, pixels } = nativeImage(spec);
        const source = compressed(file, syntax);
        expect(parse(source ?? file).string('x00020010')).toBe(syntax);
        const output = await run(source ?? file, syntax, EXPLICIT_LE);
        const dataSet = parse(output);
        expect(dataSet.string('x00020010')).toBe(EXPLICIT_LE);
        expect(dataSet.string('x00280004')).toBe(spec.kind === 'rgb' ? 'RGB' : 'MONOCHROME2');
        expect(nativePixelData(output, pixels.length).equals(pixels)).toBe(true);
      },
    );
  }

  for (const syntax of ['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51']) {
    it.skipIf(!hasTool('dcmcjpeg'))(
      `${syntax}: 8-bit RGB and grey within 24 levels, marked lossy, as RGB`,
      async () => {
        for (const kind of ['rgb', 'grey8'] as const) {
          const { file, pixels } = nativeImage({ kind, rows: 96, columns: 80 });
          const source = compressed(file, syntax) ?? file;
          const output = await run(source, syntax, EXPLICIT_LE);
          const dataSet = parse(output);
          expect(dataSet.string('x00280004')).toBe(kind === 'rgb' ? 'RGB' : 'MONOCHROME2');
          expect(dataSet.string('x00282110')).toBe('01');
          expect(maxDifference(nativePixelData(output, pixels.length), pixels)).toBeLessThanOrEqual(24);
        }
      },
    );
  }

  it.skipIf(!hasTool('dcmcjpls'))('JPEG-LS near-lossless (4.81): within NEAR of the source', async () => {
    const { file, pixels } = nativeImage({ kind: 'grey8', rows: 64, columns: 64 });
    const output = await run(compressed(file, '1.2.840.10008.1.2.4.81') ?? file, '1.2.840.10008.1.2.4.81', EXPLICIT_LE);
    // dcmcjpls +en uses NEAR = 2 by default.
    expect(maxDifference(nativePixelData(output, pixels.length), pixels)).toBeLessThanOrEqual(2);
  });

  it.skipIf(!hasTool('gdcmconv'))('JPEG 2000 lossy (4.91): close to the source', async () => {
    const { file, pixels } = nativeImage({ kind: 'grey8', rows: 64, columns: 64 });
    const output = await run(compressed(file, '1.2.840.10008.1.2.4.91') ?? file, '1.2.840.10008.1.2.4.91', EXPLICIT_LE);
    expect(maxDifference(nativePixelData(output, pixels.length), pixels)).toBeLessThanOrEqual(32);
  });
});

/** Our lossless encoders; an independent tool that decodes each back to explicit VR little endian. */
const ENCODED: readonly [string, readonly [string, readonly string[]] | undefined][] = [
  ['1.2.840.10008.1.2.4.90', ['gdcmconv', ['--raw']]],
  ['1.2.840.10008.1.2.4.201', undefined],
  ['1.2.840.10008.1.2.4.202', undefined],
  ['1.2.840.10008.1.2.4.80', ['dcmdjpls', []]],
  ['1.2.840.10008.1.2.5', ['dcmdrle', []]],
];

describe('encoding losslessly', () => {
  for (const [syntax, independent] of ENCODED) {
    for (const spec of [
      { kind: 'ct' },
      { kind: 'rgb', rows: 40, columns: 33 },
      { kind: 'signed-ct', rows: 64, columns: 64, frames: 3 },
    ] as ImageSpec[]) {
      it(`${syntax} ${spec.kind ?? ''} ×${spec.frames ?? 1}: round trip equals the source, and another decoder agrees`, async () => {
        const { file, pixels } = nativeImage(spec);
        const encoded = await run(file, EXPLICIT_LE, syntax);
        const dataSet = parse(encoded);
        expect(dataSet.string('x00020010')).toBe(syntax);
        const fragments = dataSet.elements['x7fe00010']?.fragments ?? [];
        expect(fragments.length).toBe(spec.frames ?? 1);
        for (const fragment of fragments) expect(fragment.length % 2).toBe(0);
        const back = await run(encoded, syntax, EXPLICIT_LE);
        expect(nativePixelData(back, pixels.length).equals(pixels)).toBe(true);
        if (independent && hasTool(independent[0])) {
          const other = convert(independent[0], independent[1], encoded);
          expect(nativePixelData(other, pixels.length).equals(pixels)).toBe(true);
        }
      });
    }
  }

  it('HTJ2K from OpenJPH decodes identically with OpenJPEG', async () => {
    const spec: ImageSpec = { kind: 'ct', rows: 256, columns: 256 };
    const pixels = imagePixels(spec);
    const encoded = await encodeFrame('1.2.840.10008.1.2.4.201', pixels, describeImage(spec));
    const openjpeg = await lazyModule('@cornerstonejs/codec-openjpeg/wasmjs')();
    const decoded = wasmDecode(construct(openjpeg, 'J2KDecoder') as WasmDecoder, encoded.bytes);
    expect(Buffer.from(decoded.pixels).equals(pixels)).toBe(true);
  });

  it('JPEG 2000 of RGB uses the reversible colour transform and says YBR_RCT', async () => {
    const { file } = nativeImage({ kind: 'rgb', rows: 32, columns: 32 });
    const encoded = await run(file, EXPLICIT_LE, '1.2.840.10008.1.2.4.90');
    expect(parse(encoded).string('x00280004')).toBe('YBR_RCT');
  });
});

describe('decodeFrame', () => {
  it('knows every syntax of the brief and no other', () => {
    for (const uid of ['50', '51', '57', '70', '80', '81', '90', '91', '201', '202', '203']) {
      expect(canDecode(`1.2.840.10008.1.2.4.${uid}`)).toBe(true);
    }
    expect(canDecode('1.2.840.10008.1.2.5')).toBe(true);
    expect(canDecode('1.2.840.10008.1.2.4.100')).toBe(false);
    expect(canDecode('1.2.840.10008.1.2.1')).toBe(false);
  });

  it('rejects a frame whose size is not the one the data set says', async () => {
    const spec: ImageSpec = { kind: 'ct', rows: 64, columns: 64 };
    const encoded = await encodeFrame('1.2.840.10008.1.2.4.201', imagePixels(spec), describeImage(spec));
    await expect(
      decodeFrame('1.2.840.10008.1.2.4.201', encoded.bytes, { ...describeImage(spec), rows: 32 }),
    ).rejects.toThrow(/64×64/);
    await expect(decodeFrame('1.2.840.10008.1.2.4.90', Uint8Array.of(1, 2, 3), describeImage(spec))).rejects.toThrow();
    await expect(decodeFrame('1.2.840.10008.1.2.5', new Uint8Array(10), describeImage(spec))).rejects.toThrow(/header/);
  });

  it('RLE: runs, literals and 128-byte limits survive a round trip', async () => {
    const spec: PixelDescription = { ...describeImage({ kind: 'grey8' }), rows: 3, columns: 300 };
    const pixels = new Uint8Array(900);
    pixels.fill(7, 0, 300); // one long run
    for (let i = 300; i < 600; i++) pixels[i] = i % 256; // literals only
    for (let i = 600; i < 900; i++) pixels[i] = Math.floor(i / 3) % 2; // short runs
    const encoded = await encodeFrame('1.2.840.10008.1.2.5', pixels, spec);
    expect((await decodeFrame('1.2.840.10008.1.2.5', encoded.bytes, spec)).pixels).toEqual(pixels);
  });
});

describe('memory', () => {
  it('re-codes a multi-frame instance one frame at a time, output flowing before the input is read', async () => {
    const spec: ImageSpec = { kind: 'ct', rows: 256, columns: 256, frames: 24 };
    const frameBytes = 256 * 256 * 2;
    const { file, pixels } = nativeImage(spec);
    const encoded = await run(file, EXPLICIT_LE, '1.2.840.10008.1.2.5');
    for (const [input, from, to] of [
      [file, EXPLICIT_LE, '1.2.840.10008.1.2.5'],
      [encoded, '1.2.840.10008.1.2.5', EXPLICIT_LE],
    ] as const) {
      let read = 0;
      async function* source(): AsyncGenerator<Uint8Array> {
        for (let at = 0; at < input.length; at += 32_768) {
          read += Math.min(32_768, input.length - at);
          yield await Promise.resolve(input.subarray(at, at + 32_768));
        }
      }
      const readWhenWritten: number[] = [];
      let largest = 0;
      const out: Uint8Array[] = [];
      for await (const chunk of transcode(source(), from, to)) {
        readWhenWritten.push(read);
        largest = Math.max(largest, chunk.byteLength);
        out.push(chunk);
      }
      // Output chunks are at most a frame; half the output has gone before three quarters of the input is read.
      expect(largest).toBeLessThanOrEqual(frameBytes);
      expect(readWhenWritten[Math.floor(readWhenWritten.length / 2)]).toBeLessThan(input.length * 0.75);
      if (to === EXPLICIT_LE) expect(nativePixelData(Buffer.concat(out), pixels.length).equals(pixels)).toBe(true);
    }
  });
});
