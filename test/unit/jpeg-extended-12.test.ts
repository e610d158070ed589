/**
 * 12-bit JPEG extended (process 2 and 4, 1.2.840.10008.1.2.4.51 with Bits Allocated 16): dcmtk
 * compresses a 12-bit CT phantom, our transcoder decodes it; the samples must be those dcmtk's own
 * IJG decoder gives, and within the lossy error of the source.
 */
import { describe, expect, it } from 'vitest';
import { CodecError, decodeFrame, decodeRefusal } from '../../src/dicom/codecs/decode-frame.js';
import { transcode } from '../../src/dicom/transcode/transcode.js';
import {
  compressed,
  convert,
  describeImage,
  hasTool,
  type ImageSpec,
  maxDifference16,
  nativeImage,
  nativePixelData,
  parse,
} from '../../support/codec-corpus.js';

const EXTENDED = '1.2.840.10008.1.2.4.51';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
// dcmcjpeg's default quality (90) on the phantom's noise: measured 29 of 4096 levels; allow 48 (1.2 %).
const TOLERANCE = 48;

async function toExplicit(file: Uint8Array): Promise<Buffer> {
  async function* source(): AsyncGenerator<Uint8Array> {
    for (let at = 0; at < file.length; at += 65_536) yield await Promise.resolve(file.subarray(at, at + 65_536));
  }
  const out: Uint8Array[] = [];
  for await (const chunk of transcode(source(), EXTENDED, EXPLICIT_LE)) out.push(chunk);
  return Buffer.concat(out);
}

/** The first frame's compressed bytes (dcmcjpeg writes one fragment per frame). */
function firstFrame(file: Buffer): Buffer {
  const fragment = parse(file).elements['x7fe00010']?.fragments?.[0];
  if (!fragment) throw new Error('no fragment');
  return file.subarray(fragment.position, fragment.position + fragment.length);
}

describe.skipIf(!hasTool('dcmcjpeg'))('12-bit JPEG extended', () => {
  for (const spec of [{ kind: 'ct' }, { kind: 'ct', rows: 64, columns: 48, frames: 3 }] as ImageSpec[]) {
    it(`${spec.columns ?? 512}×${spec.rows ?? 512}×${spec.frames ?? 1}: decodes as dcmtk does, within ${TOLERANCE} of the source`, async () => {
      const { file, pixels } = nativeImage(spec);
      const source = compressed(file, EXTENDED);
      if (!source) throw new Error('dcmcjpeg is missing');
      // The stream really is 12-bit process 2/4: SOF1 with sample precision 12.
      const frame = firstFrame(source);
      const sof = frame.indexOf(Buffer.of(0xff, 0xc1));
      expect(sof).toBeGreaterThan(0);
      expect(frame[sof + 4]).toBe(12);

      const output = await toExplicit(source);
      const dataSet = parse(output);
      expect(dataSet.string('x00020010')).toBe(EXPLICIT_LE);
      expect(dataSet.uint16('x00280100')).toBe(16);
      expect(dataSet.uint16('x00280101')).toBe(12);
      expect(dataSet.string('x00280004')).toBe('MONOCHROME2');
      expect(dataSet.string('x00282110')).toBe('01');
      const decoded = nativePixelData(output, pixels.length);
      expect(maxDifference16(decoded, pixels)).toBeLessThanOrEqual(TOLERANCE);
      // Lossy, yet not blank or shifted: most samples are near their source.
      expect(maxDifference16(decoded, pixels)).toBeGreaterThan(0);
      if (hasTool('dcmdjpeg')) {
        const reference = nativePixelData(convert('dcmdjpeg', [], source), pixels.length);
        expect(decoded.equals(reference)).toBe(true);
      }
    });
  }

  it('a corrupt frame fails with CodecError and the next frame still decodes', async () => {
    const spec: ImageSpec = { kind: 'ct', rows: 64, columns: 64 };
    const { file, pixels } = nativeImage(spec);
    const frame = firstFrame(compressed(file, EXTENDED) ?? file);
    const description = describeImage(spec);
    // A sample precision of 7 in the frame header: IJG refuses it. (Truncated data decodes, padded, as libjpeg does.)
    const broken = Buffer.from(frame);
    broken[broken.indexOf(Buffer.of(0xff, 0xc1)) + 4] = 7;
    await expect(decodeFrame(EXTENDED, broken, description)).rejects.toThrow(/precision/);
    await expect(decodeFrame(EXTENDED, broken, description)).rejects.toBeInstanceOf(CodecError);
    await expect(decodeFrame(EXTENDED, Uint8Array.of(1, 2, 3), description)).rejects.toBeInstanceOf(CodecError);
    const good = await decodeFrame(EXTENDED, frame, description);
    expect(good.description.bitsAllocated).toBe(16);
    expect(maxDifference16(good.pixels, pixels)).toBeLessThanOrEqual(TOLERANCE);
    await expect(decodeFrame(EXTENDED, frame, { ...description, rows: 32 })).rejects.toThrow(/8192 bytes/);
  });
});

it('12-bit JPEG extended is no longer refused before decoding', () => {
  expect(decodeRefusal(EXTENDED, 16)).toBeUndefined();
  expect(decodeRefusal(EXTENDED, 8)).toBeUndefined();
});
