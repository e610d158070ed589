/**
 * Compressed instances on Azurite, delivered in other transfer syntaxes: decoded to explicit VR
 * little endian (pixels equal the source), encoded to JPEG 2000 and HTJ2K lossless (decoding
 * them gives the source back), frames in several media types, `*` byte for byte, and 406 for
 * pairs that cannot be made. The corpus is made by dcmtk and gdcm in the test (support/codec-corpus.ts).
 */
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeFrame } from '../../src/dicom/codecs/decode-frame.js';
import { newInstanceUids, testUid } from '../../support/dicom-builder.js';
import {
  compressed,
  convert,
  describeImage,
  hasTool,
  maxDifference,
  maxDifference16,
  nativeImage,
  nativePixelData,
  parse,
} from '../../support/codec-corpus.js';
import { stowRequestInit } from '../../support/multipart.js';
import { fetchParts } from '../helpers/multipart-decode.js';
import { useTestServer } from '../helpers/server.js';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
const J2K_LOSSLESS = '1.2.840.10008.1.2.4.90';
const HTJ2K_LOSSLESS = '1.2.840.10008.1.2.4.201';
const JPEG_LS = '1.2.840.10008.1.2.4.80';
const RLE = '1.2.840.10008.1.2.5';
const tools = hasTool('dcmcjpeg') && hasTool('dcmcrle') && hasTool('gdcmconv');

const server = useTestServer();
const study = testUid();
const series = testUid();
const CT = { kind: 'ct', rows: 256, columns: 256 } as const;
const ctDescription = describeImage(CT);

interface Stored {
  readonly uids: ReturnType<typeof newInstanceUids>;
  readonly file: Buffer;
  readonly pixels: Buffer;
}

function make(syntax: string, spec: Parameters<typeof nativeImage>[0], inStudy = study, inSeries = series): Stored {
  const uids = newInstanceUids(inStudy, inSeries);
  const image = nativeImage(spec, uids);
  const file = syntax === EXPLICIT_LE ? image.file : compressed(image.file, syntax);
  if (!file) throw new Error(`no tool for ${syntax}`);
  return { uids, file, pixels: image.pixels };
}

const url = (stored: Stored) =>
  `${server().baseUrl}/v2/studies/${stored.uids.studyInstanceUid}/series/${stored.uids.seriesInstanceUid}/instances/${stored.uids.sopInstanceUid}`;

async function getInstance(stored: Stored, accept: string) {
  const response = await fetch(url(stored), { headers: { accept } });
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    body: Buffer.from(await response.arrayBuffer()),
  };
}

describe.skipIf(!tools)('transcoding compressed instances against Azurite', () => {
  let j2k: Stored;
  let jpeg: Stored;
  let rleFrames: Stored;
  let native: Stored;
  let jls: Stored;
  let jpeg12: Stored;

  beforeAll(async () => {
    j2k = make(J2K_LOSSLESS, CT);
    jpeg = make(JPEG_BASELINE, { kind: 'rgb', rows: 64, columns: 80 });
    rleFrames = make(RLE, { kind: 'ct', rows: 48, columns: 40, frames: 5 });
    native = make(EXPLICIT_LE, CT);
    jls = make(JPEG_LS, CT);
    // 12-bit JPEG extended (dcmcjpeg +ee on 12-bit samples): in a study of its own.
    jpeg12 = make('1.2.840.10008.1.2.4.51', { kind: 'ct', rows: 64, columns: 64 }, testUid(), testUid());
    const response = await fetch(
      `${server().baseUrl}/v2/studies`,
      stowRequestInit([j2k.file, jpeg.file, rleFrames.file, native.file, jls.file, jpeg12.file]),
    );
    expect(response.status).toBe(200);
  });

  it('decodes JPEG 2000 to explicit VR little endian, the default for application/dicom', async () => {
    for (const accept of ['application/dicom', `application/dicom; transfer-syntax=${EXPLICIT_LE}`]) {
      const result = await getInstance(j2k, accept);
      expect(result.status).toBe(200);
      expect(result.type).toBe(`application/dicom; transfer-syntax=${EXPLICIT_LE}`);
      expect(parse(result.body).string('x00020010')).toBe(EXPLICIT_LE);
      expect(nativePixelData(result.body, j2k.pixels.length).equals(j2k.pixels)).toBe(true);
    }
  });

  it('decodes a whole study, lossless instances pixel-exact and JPEG baseline within 24 levels', async () => {
    const result = await fetchParts(
      `${server().baseUrl}/v2/studies/${study}`,
      'multipart/related; type="application/dicom"',
    );
    expect(result.status).toBe(200);
    expect(result.parts).toHaveLength(5);
    for (const part of result.parts) {
      expect(part.headers['content-type']).toBe(`application/dicom; transfer-syntax=${EXPLICIT_LE}`);
      const sop = parse(part.body).string('x00080018');
      const source = [j2k, jpeg, rleFrames, native, jls].find((s) => s.uids.sopInstanceUid === sop);
      if (!source) throw new Error(`unexpected instance ${sop}`);
      const pixels = nativePixelData(part.body, source.pixels.length);
      if (source === jpeg) {
        expect(maxDifference(pixels, source.pixels)).toBeLessThanOrEqual(24);
        expect(parse(part.body).string('x00282110')).toBe('01');
      } else expect(pixels.equals(source.pixels)).toBe(true);
    }
  });

  it('decodes a multi-frame RLE instance frame by frame', async () => {
    const result = await getInstance(rleFrames, 'application/dicom');
    expect(parse(result.body).intString('x00280008')).toBe(5);
    expect(nativePixelData(result.body, rleFrames.pixels.length).equals(rleFrames.pixels)).toBe(true);
  });

  it('encodes uncompressed and JPEG-LS instances to JPEG 2000 and HTJ2K lossless, which decode to the source', async () => {
    for (const source of [native, jls]) {
      for (const syntax of [J2K_LOSSLESS, HTJ2K_LOSSLESS]) {
        const result = await getInstance(source, `application/dicom; transfer-syntax=${syntax}`);
        expect(result.type).toBe(`application/dicom; transfer-syntax=${syntax}`);
        const dataSet = parse(result.body);
        expect(dataSet.string('x00020010')).toBe(syntax);
        const fragments = dataSet.elements['x7fe00010']?.fragments ?? [];
        expect(fragments).toHaveLength(1);
        const [fragment] = fragments;
        const codestream = result.body.subarray(
          fragment?.position ?? 0,
          (fragment?.position ?? 0) + (fragment?.length ?? 0),
        );
        const decoded = await decodeFrame(syntax, codestream, ctDescription);
        expect(Buffer.from(decoded.pixels).equals(source.pixels)).toBe(true);
        if (syntax === J2K_LOSSLESS) {
          // And an independent decoder agrees.
          expect(
            nativePixelData(convert('gdcmconv', ['--raw'], result.body), source.pixels.length).equals(source.pixels),
          ).toBe(true);
        }
      }
    }
  });

  it('returns the stored bytes untouched for transfer-syntax=*', async () => {
    for (const stored of [j2k, jpeg, rleFrames]) {
      const result = await getInstance(stored, 'application/dicom; transfer-syntax=*');
      expect(result.body.equals(stored.file)).toBe(true);
    }
  });

  it('answers 406 for lossy JPEG as a lossless-only syntax, for instances and frames', async () => {
    const instance = await getInstance(jpeg, `application/dicom; transfer-syntax=${J2K_LOSSLESS}`);
    expect(instance.status).toBe(406);
    expect(instance.body.toString()).toMatch(/lossy/);
    const frame = await fetchParts(`${url(jpeg)}/frames/1`, 'multipart/related; type="image/jp2"');
    expect(frame.status).toBe(406);
    // JPEG 2000 (4.91) makes no lossless claim: allowed.
    const lossyAllowed = await fetchParts(
      `${url(jpeg)}/frames/1`,
      'multipart/related; type="image/jp2"; transfer-syntax=1.2.840.10008.1.2.4.91',
    );
    expect(lossyAllowed.status).toBe(200);
  });

  it('decodes 12-bit JPEG extended to explicit VR little endian, frames and a rendered PNG, within the lossy error', async () => {
    // dcmcjpeg's default quality on the phantom: measured at most 29 of 4096 levels off the source.
    const tolerance = 48;
    const instance = await getInstance(jpeg12, 'application/dicom');
    expect(instance.status).toBe(200);
    expect(instance.type).toBe(`application/dicom; transfer-syntax=${EXPLICIT_LE}`);
    const dataSet = parse(instance.body);
    expect(dataSet.uint16('x00280101')).toBe(12);
    expect(dataSet.string('x00282110')).toBe('01');
    expect(maxDifference16(nativePixelData(instance.body, jpeg12.pixels.length), jpeg12.pixels)).toBeLessThanOrEqual(
      tolerance,
    );
    const frames = await fetchParts(`${url(jpeg12)}/frames/1`, 'multipart/related; type="application/octet-stream"');
    expect(frames.status).toBe(200);
    expect(maxDifference16(frames.parts[0]?.body ?? Buffer.alloc(0), jpeg12.pixels)).toBeLessThanOrEqual(tolerance);
    // Lossy pixels are still not offered as a lossless-only syntax; the stored bytes still are.
    expect((await getInstance(jpeg12, `application/dicom; transfer-syntax=${J2K_LOSSLESS}`)).status).toBe(406);
    expect((await getInstance(jpeg12, 'application/dicom; transfer-syntax=*')).body.equals(jpeg12.file)).toBe(true);

    // Rendered through window 1000/1000 (LINEAR_EXACT): each grey level near the source's, windowed.
    const rendered = await fetch(`${url(jpeg12)}/rendered?window=1000,1000,LINEAR_EXACT`, {
      headers: { accept: 'image/png' },
    });
    expect(rendered.status).toBe(200);
    expect(rendered.headers.get('content-type')).toBe('image/png');
    const { data, width, height } = await sharp(Buffer.from(await rendered.arrayBuffer()))
      .greyscale()
      .raw()
      .toBuffer({ resolveWithObject: true })
      .then(({ data, info }) => ({ data, ...info }));
    expect([width, height]).toEqual([64, 64]);
    const windowed = (v: number) => Math.min(255, Math.max(0, Math.round(((v - 1000) / 1000 + 0.5) * 255)));
    let worst = 0;
    for (let i = 0; i < width * height; i++) {
      worst = Math.max(worst, Math.abs((data[i] ?? 0) - windowed(jpeg12.pixels.readUInt16LE(i * 2))));
    }
    // 48 stored levels are 12 grey levels through a 1000-wide window; one more for rounding.
    expect(worst).toBeLessThanOrEqual(13);
    // Not blank: the body (centre) is bright, the air (corner) black.
    expect(data[32 * 64 + 32]).toBeGreaterThan(60);
    expect(data[0]).toBe(0);
  });

  it('serves frames decoded, re-encoded or as stored, by media type', async () => {
    const frameOf = (stored: Stored, k: number) => {
      const size = stored.pixels.length / 5;
      return stored.pixels.subarray(k * size, (k + 1) * size);
    };
    const octets = await fetchParts(
      `${url(rleFrames)}/frames/4,2`,
      'multipart/related; type="application/octet-stream"',
    );
    expect(octets.parts.map((part) => part.headers['content-type'])).toEqual([
      `application/octet-stream; transfer-syntax=${EXPLICIT_LE}`,
      `application/octet-stream; transfer-syntax=${EXPLICIT_LE}`,
    ]);
    expect(octets.parts[0]?.body.equals(frameOf(rleFrames, 3))).toBe(true);
    expect(octets.parts[1]?.body.equals(frameOf(rleFrames, 1))).toBe(true);

    const single = await fetch(`${url(j2k)}/frames/1`, { headers: { accept: 'application/octet-stream' } });
    expect(single.headers.get('content-type')).toBe(`application/octet-stream; transfer-syntax=${EXPLICIT_LE}`);
    expect(Buffer.from(await single.arrayBuffer()).equals(j2k.pixels)).toBe(true);

    const description = { ...ctDescription, rows: 48, columns: 40 };
    for (const [type, syntax] of [
      ['image/jphc', HTJ2K_LOSSLESS],
      ['image/jp2', J2K_LOSSLESS],
      ['image/jls', JPEG_LS],
    ] as const) {
      const result = await fetchParts(`${url(rleFrames)}/frames/3`, `multipart/related; type="${type}"`);
      expect(result.parts[0]?.headers['content-type']).toBe(`${type}; transfer-syntax=${syntax}`);
      const decoded = await decodeFrame(syntax, result.parts[0]?.body ?? Buffer.alloc(0), description);
      expect(Buffer.from(decoded.pixels).equals(frameOf(rleFrames, 2))).toBe(true);
    }

    const asStored = await fetchParts(`${url(j2k)}/frames/1`, 'multipart/related; type="image/jp2"');
    expect(asStored.parts[0]?.headers['content-type']).toBe(`image/jp2; transfer-syntax=${J2K_LOSSLESS}`);
    const fragment = parse(j2k.file).elements['x7fe00010']?.fragments?.[0];
    expect(
      asStored.parts[0]?.body.equals(
        j2k.file.subarray(fragment?.position, (fragment?.position ?? 0) + (fragment?.length ?? 0)),
      ),
    ).toBe(true);

    const uncompressedAsRle = await fetchParts(`${url(native)}/frames/1`, 'multipart/related; type="image/dicom-rle"');
    expect(uncompressedAsRle.parts[0]?.headers['content-type']).toBe(`image/dicom-rle; transfer-syntax=${RLE}`);
    const rleDecoded = await decodeFrame(RLE, uncompressedAsRle.parts[0]?.body ?? Buffer.alloc(0), ctDescription);
    expect(Buffer.from(rleDecoded.pixels).equals(native.pixels)).toBe(true);
  });
});
