/**
 * Rendered and thumbnail resources against Azurite: the pixels that come back are compared with
 * the ones a radiologist's viewer would show (PNG exactly, JPEG within a tolerance), for the
 * Azure samples and for generated instances of each photometric interpretation and pixel layout.
 */
import dicomParser from 'dicom-parser';
import jpeg from 'jpeg-js';
import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { thumbnailCacheBlobName } from '../../src/storage/keys.js';
import { buildInstance, EXPLICIT_BE, JPEG_BASELINE, newInstanceUids, testUid } from '../../support/dicom-builder.js';
import { stowRequestInit } from '../../support/multipart.js';
import { boundaryOf, decodeMultipart } from '../helpers/multipart-decode.js';
import { serveMetered, useMeteredServer } from '../helpers/server.js';

const server = useMeteredServer();

type Uids = ReturnType<typeof newInstanceUids>;
type Attributes = Record<string, { vr: string; value: string | Uint8Array } | null>;

const us = (...values: number[]) => {
  const b = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => b.writeUInt16LE(v & 0xffff, i * 2));
  return b;
};
const u16le = (values: readonly number[]) => us(...values);
const u8 = (values: readonly number[]) => Buffer.from(values);

/** Attributes of an image: size, layout, photometric interpretation, pixel data. */
function image(options: {
  rows: number;
  columns: number;
  bits?: number;
  stored?: number;
  signed?: boolean;
  samples?: number;
  photometric?: string;
  planar?: number;
  frames?: number;
  pixels: Uint8Array;
  extra?: Attributes;
}): Attributes {
  const bits = options.bits ?? 16;
  const stored = options.stored ?? bits;
  return {
    '00280002': { vr: 'US', value: us(options.samples ?? 1) },
    '00280004': { vr: 'CS', value: options.photometric ?? 'MONOCHROME2' },
    ...(options.planar !== undefined ? { '00280006': { vr: 'US', value: us(options.planar) } } : {}),
    ...(options.frames !== undefined ? { '00280008': { vr: 'IS', value: String(options.frames) } } : {}),
    '00280010': { vr: 'US', value: us(options.rows) },
    '00280011': { vr: 'US', value: us(options.columns) },
    '00280100': { vr: 'US', value: us(bits) },
    '00280101': { vr: 'US', value: us(stored) },
    '00280102': { vr: 'US', value: us(stored - 1) },
    '00280103': { vr: 'US', value: us(options.signed ? 1 : 0) },
    '7FE00010': { vr: bits > 8 ? 'OW' : 'OB', value: options.pixels },
    ...options.extra,
  };
}

/** One explicit VR little endian element (for sequence items). */
function element(tag: string, vr: string, value: Uint8Array): Buffer {
  const header = Buffer.alloc(vr === 'OW' || vr === 'SQ' ? 12 : 8);
  header.writeUInt16LE(parseInt(tag.slice(0, 4), 16), 0);
  header.writeUInt16LE(parseInt(tag.slice(4), 16), 2);
  header.write(vr, 4, 'latin1');
  if (header.length === 12) header.writeUInt32LE(value.length, 8);
  else header.writeUInt16LE(value.length, 6);
  return Buffer.concat([header, value]);
}

/** A sequence value of one item holding these elements. */
function sequenceOf(...elements: Buffer[]): Buffer {
  const body = Buffer.concat(elements);
  const item = Buffer.alloc(8);
  item.writeUInt16LE(0xfffe, 0);
  item.writeUInt16LE(0xe000, 2);
  item.writeUInt32LE(body.length, 4);
  return Buffer.concat([item, body]);
}

/** A DS value padded to even length. */
const ds = (text: string) => Buffer.from(text.length % 2 === 1 ? `${text} ` : text, 'latin1');

const path = (uids: Uids) =>
  `/v2/studies/${uids.studyInstanceUid}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`;

async function get(url: string, accept?: string): Promise<{ status: number; type: string; body: Buffer }> {
  const response = await fetch(`${server().baseUrl}${url}`, { headers: accept ? { accept } : {} });
  return {
    status: response.status,
    type: response.headers.get('content-type') ?? '',
    body: Buffer.from(await response.arrayBuffer()),
  };
}

interface Decoded {
  width: number;
  height: number;
  /** RGBA */
  data: Uint8Array;
}

async function png(url: string): Promise<Decoded> {
  const result = await get(url, 'image/png');
  expect(result.status, result.body.toString().slice(0, 300)).toBe(200);
  expect(result.type).toBe('image/png');
  return PNG.sync.read(result.body);
}

async function jpg(url: string, accept = 'image/jpeg'): Promise<Decoded> {
  const result = await get(url, accept);
  expect(result.status, result.body.toString().slice(0, 300)).toBe(200);
  expect(result.type).toBe('image/jpeg');
  return jpeg.decode(result.body, { useTArray: true });
}

/** The grey levels of a decoded image (its red channel), row by row. */
const grays = (decoded: Decoded) =>
  Array.from({ length: decoded.width * decoded.height }, (_, i) => decoded.data[i * 4]);
const rgbAt = (decoded: Decoded, x: number, y: number) => {
  const at = (y * decoded.width + x) * 4;
  return [decoded.data[at], decoded.data[at + 1], decoded.data[at + 2]];
};

const study = testUid();
const series = testUid();
const uids = () => newInstanceUids(study, series);

// MONOCHROME2, 16-bit unsigned, no window: the pixel range maps to 0..255.
const mono2 = uids();
const mono2Pixels = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400, 1500, 1600];
/** LINEAR_EXACT over min..max (center (min+max)/2, width max-min), as the pipeline's pixel range. */
const exact = (x: number, c: number, w: number) =>
  Math.round(Math.min(255, Math.max(0, x <= c - w / 2 ? 0 : x > c + w / 2 ? 255 : ((x - c) / w + 0.5) * 255)));
/** LINEAR (PS3.3 C.11.2.1.2.1). */
const linear = (x: number, c: number, w: number) => {
  if (x <= c - 0.5 - (w - 1) / 2) return 0;
  if (x > c - 0.5 + (w - 1) / 2) return 255;
  return Math.round(((x - (c - 0.5)) / (w - 1) + 0.5) * 255);
};
const mono1 = uids();
// Signed 16-bit CT with rescale and a data set window (center 40, width 400).
const ct = uids();
const ctStored = [-1024, -500, -100, 0, 20, 40, 60, 100, 200, 240, 300, 1000, 2000, -2000, 1, 2];
// 12 bits stored in 16 allocated, signed, with garbage in the unused high bits.
const masked = uids();
const maskedStored = [-2048, -1, 0, 2047, 100, -100, 5, 6];
// 8-bit palette with 16-bit entries (inline LUT data) and 12-bit palette (LUT data as bulk data).
const palette8 = uids();
const palette12 = uids();
const ybr = uids();
const ybr422 = uids();
const rgbPlanar = uids();
const multiFrame = uids();
const bigEndian = uids();
const oneBit = uids();
const voiLut = uids();
const modalityLut = uids();
const compressed = uids();
const wide = uids();
const enhanced = uids();
const redTriangle = readFileSync(new URL('../fixtures/azure-samples/red-triangle.dcm', import.meta.url));
const redUids = (() => {
  const parsed = dicomParser.parseDicom(redTriangle);
  return {
    studyInstanceUid: parsed.string('x0020000d') ?? '',
    seriesInstanceUid: parsed.string('x0020000e') ?? '',
    sopInstanceUid: parsed.string('x00080018') ?? '',
    pixels: redTriangle.subarray(parsed.elements['x7fe00010']?.dataOffset ?? 0),
  };
})();

const ramp = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

function files(): Buffer[] {
  return [
    buildInstance({ ...mono2, attributes: image({ rows: 4, columns: 4, pixels: u16le(mono2Pixels) }) }),
    buildInstance({
      ...mono1,
      attributes: image({ rows: 4, columns: 4, photometric: 'MONOCHROME1', pixels: u16le(mono2Pixels) }),
    }),
    buildInstance({
      ...ct,
      attributes: image({
        rows: 4,
        columns: 4,
        signed: true,
        pixels: u16le(ctStored),
        extra: {
          '00281050': { vr: 'DS', value: '40\\-600' },
          '00281051': { vr: 'DS', value: '400\\1500' },
          '00281052': { vr: 'DS', value: '-1024' },
          '00281053': { vr: 'DS', value: '1' },
        },
      }),
    }),
    buildInstance({
      ...masked,
      attributes: image({
        rows: 2,
        columns: 4,
        stored: 12,
        signed: true,
        pixels: u16le(maskedStored.map((v) => (v & 0x0fff) | 0xa000)),
      }),
    }),
    buildInstance({
      ...palette8,
      attributes: image({
        rows: 2,
        columns: 2,
        bits: 8,
        photometric: 'PALETTE COLOR',
        pixels: u8([0, 1, 2, 255]),
        extra: {
          '00281101': { vr: 'US', value: us(256, 0, 16) },
          '00281102': { vr: 'US', value: us(256, 0, 16) },
          '00281103': { vr: 'US', value: us(256, 0, 16) },
          '00281201': { vr: 'OW', value: u16le(ramp(256, (i) => (i === 1 ? 0xffff : i === 255 ? 0x8000 : 0))) },
          '00281202': { vr: 'OW', value: u16le(ramp(256, (i) => (i === 2 ? 0xffff : i === 255 ? 0x8000 : 0))) },
          '00281203': { vr: 'OW', value: u16le(ramp(256, (i) => (i === 0 ? 0xffff : i === 255 ? 0x8000 : 0))) },
        },
      }),
    }),
    buildInstance({
      ...palette12,
      attributes: image({
        rows: 1,
        columns: 3,
        stored: 12,
        photometric: 'PALETTE COLOR',
        pixels: u16le([100, 4000, 2000]),
        extra: {
          // 4000 entries from 100: 8000 bytes each, so metadata gives them as BulkDataURIs.
          '00281101': { vr: 'US', value: us(4000, 100, 16) },
          '00281102': { vr: 'US', value: us(4000, 100, 16) },
          '00281103': { vr: 'US', value: us(4000, 100, 16) },
          '00281201': { vr: 'OW', value: u16le(ramp(4000, (i) => (i === 0 ? 0xff00 : 0))) },
          '00281202': { vr: 'OW', value: u16le(ramp(4000, (i) => (i === 3900 ? 0xff00 : 0))) },
          '00281203': { vr: 'OW', value: u16le(ramp(4000, (i) => (i === 1900 ? 0xff00 : 0))) },
        },
      }),
    }),
    // YBR_FULL red, green, blue, white.
    buildInstance({
      ...ybr,
      attributes: image({
        rows: 2,
        columns: 2,
        bits: 8,
        samples: 3,
        photometric: 'YBR_FULL',
        planar: 0,
        pixels: u8([76, 85, 255, 150, 44, 21, 29, 255, 107, 255, 128, 128]),
      }),
    }),
    // YBR_FULL_422: two pixels share Cb Cr: Y1 Y2 Cb Cr; red then dark red, green then white-ish.
    buildInstance({
      ...ybr422,
      attributes: image({
        rows: 1,
        columns: 4,
        bits: 8,
        samples: 3,
        photometric: 'YBR_FULL_422',
        planar: 0,
        pixels: u8([76, 76, 85, 255, 150, 150, 44, 21]),
      }),
    }),
    // RGB by plane: red, green, blue, grey.
    buildInstance({
      ...rgbPlanar,
      attributes: image({
        rows: 2,
        columns: 2,
        bits: 8,
        samples: 3,
        photometric: 'RGB',
        planar: 1,
        pixels: u8([255, 0, 0, 128, 0, 255, 0, 128, 0, 0, 255, 128]),
      }),
    }),
    // Three 2×2 frames, frame k all k*100; a window 0..300.
    buildInstance({
      ...multiFrame,
      attributes: image({
        rows: 2,
        columns: 2,
        frames: 3,
        pixels: u16le([0, 0, 0, 0, 100, 100, 100, 100, 200, 200, 200, 200]),
        extra: { '00281050': { vr: 'DS', value: '150' }, '00281051': { vr: 'DS', value: '301' } },
      }),
    }),
    buildInstance({
      ...bigEndian,
      transferSyntax: EXPLICIT_BE,
      attributes: image({
        rows: 4,
        columns: 4,
        pixels: Buffer.from(u16le(mono2Pixels)).swap16(),
      }),
    }),
    // 1 bit: an 8×2 checkerboard of columns, bits least significant first.
    buildInstance({
      ...oneBit,
      attributes: image({ rows: 2, columns: 8, bits: 1, stored: 1, pixels: u8([0b01010101, 0b01010101]) }),
    }),
    buildInstance({
      ...voiLut,
      attributes: image({
        rows: 1,
        columns: 4,
        pixels: u16le([0, 1, 2, 3]),
        extra: {
          '00283010': {
            vr: 'SQ',
            value: sequenceOf(
              element('00283002', 'US', us(4, 0, 8)),
              element('00283006', 'OW', u16le([255, 0, 128, 64])),
            ),
          },
        },
      }),
    }),
    buildInstance({
      ...modalityLut,
      attributes: image({
        rows: 1,
        columns: 4,
        pixels: u16le([0, 1, 2, 3]),
        extra: {
          '00283000': {
            vr: 'SQ',
            value: sequenceOf(
              element('00283002', 'US', us(4, 0, 16)),
              element('00283006', 'OW', u16le([10, 30, 20, 40])),
            ),
          },
          '00281050': { vr: 'DS', value: '25' },
          '00281051': { vr: 'DS', value: '31' },
        },
      }),
    }),
    buildInstance({
      ...compressed,
      transferSyntax: JPEG_BASELINE,
      attributes: image({ rows: 4, columns: 4, bits: 8, pixels: u8([]), extra: { '7FE00010': null } }),
      fragments: [Buffer.from([0xff, 0xd8, 0xff, 0xd9])],
    }),
    // Enhanced multi-frame: the window in the Shared Functional Groups, a rescale per frame.
    buildInstance({
      ...enhanced,
      attributes: image({
        rows: 1,
        columns: 2,
        frames: 2,
        pixels: u16le([0, 100, 0, 100]),
        extra: {
          '52009229': {
            vr: 'SQ',
            value: sequenceOf(
              element(
                '00289132',
                'SQ',
                sequenceOf(element('00281050', 'DS', ds('50')), element('00281051', 'DS', ds('101'))),
              ),
            ),
          },
          '52009230': {
            vr: 'SQ',
            value: Buffer.concat(
              ['0', '-50'].map((intercept) =>
                sequenceOf(
                  element(
                    '00289145',
                    'SQ',
                    sequenceOf(element('00281052', 'DS', ds(intercept)), element('00281053', 'DS', ds('1'))),
                  ),
                ),
              ),
            ),
          },
        },
      }),
    }),
    // 8 columns × 4 rows: left half 0, right half 255 (8-bit), for viewports.
    buildInstance({
      ...wide,
      attributes: image({
        rows: 4,
        columns: 8,
        bits: 8,
        pixels: u8(ramp(32, (i) => (i % 8 < 4 ? 0 : 255))),
        extra: { '00281050': { vr: 'DS', value: '128' }, '00281051': { vr: 'DS', value: '256' } },
      }),
    }),
  ];
}

describe('rendered resources (Azurite)', () => {
  beforeAll(async () => {
    const response = await fetch(`${server().baseUrl}/v2/studies`, stowRequestInit([...files(), redTriangle]));
    expect(response.status).toBe(200);
  });

  it('renders the red triangle red where it is and grey around it (JPEG, v1 and v2)', async () => {
    for (const version of ['v1', 'v2']) {
      const decoded = await jpg(path(redUids).replace('/v2/', `/${version}/`) + '/rendered');
      expect([decoded.width, decoded.height]).toEqual([985, 979]);
      const center = rgbAt(decoded, 492, 700);
      expect(center[0]).toBeGreaterThan(200);
      expect(center[1]).toBeLessThan(60);
      expect(center[2]).toBeLessThan(60);
      const corner = rgbAt(decoded, 5, 5);
      for (const channel of corner) expect(Math.abs((channel ?? 0) - 195)).toBeLessThan(8);
    }
  });

  it('renders the red triangle as PNG with exactly the stored RGB values', async () => {
    const decoded = await png(path(redUids) + '/rendered');
    const { width, height } = decoded;
    let differing = 0;
    for (let i = 0; i < width * height; i += 1) {
      for (let c = 0; c < 3; c += 1) if (decoded.data[i * 4 + c] !== redUids.pixels[i * 3 + c]) differing += 1;
    }
    expect(differing).toBe(0);
  });

  it('maps MONOCHROME2 without a window over the frame range, and inverts MONOCHROME1', async () => {
    const expected = mono2Pixels.map((v) => exact(v, 850, 1500));
    expect(grays(await png(path(mono2) + '/rendered'))).toEqual(expected);
    expect(grays(await png(path(mono1) + '/rendered'))).toEqual(expected.map((v) => 255 - v));
    expect(grays(await png(path(bigEndian) + '/rendered'))).toEqual(expected);
  });

  it('applies rescale and the data set first window to signed CT, and the request window instead when given', async () => {
    const hu = ctStored.map((v) => v - 1024);
    expect(grays(await png(path(ct) + '/rendered'))).toEqual(hu.map((v) => linear(v, 40, 400)));
    expect(grays(await png(path(ct) + '/rendered?window=-600,1500,linear'))).toEqual(
      hu.map((v) => linear(v, -600, 1500)),
    );
    expect(grays(await png(path(ct) + '/rendered?window=0,1000,LINEAR_EXACT'))).toEqual(
      hu.map((v) => exact(v, 0, 1000)),
    );
    const sigmoid = grays(await png(path(ct) + '/rendered?window=40,400,sigmoid'));
    expect(sigmoid).toEqual(hu.map((v) => Math.round(255 / (1 + Math.exp((-4 * (v - 40)) / 400)))));
  });

  it('masks Bits Stored below High Bit and sign-extends 12-bit values', async () => {
    expect(grays(await png(path(masked) + '/rendered'))).toEqual(maskedStored.map((v) => exact(v, -0.5, 4095)));
  });

  it('applies a VOI LUT Sequence and a Modality LUT Sequence', async () => {
    expect(grays(await png(path(voiLut) + '/rendered'))).toEqual([255, 0, 128, 64]);
    expect(grays(await png(path(modalityLut) + '/rendered'))).toEqual([10, 30, 20, 40].map((v) => linear(v, 25, 31)));
  });

  it('renders PALETTE COLOR through its lookup tables, inline and as bulk data', async () => {
    const small = await png(path(palette8) + '/rendered');
    expect([0, 1, 2, 3].map((i) => rgbAt(small, i % 2, Math.floor(i / 2)))).toEqual([
      [0, 0, 255],
      [255, 0, 0],
      [0, 255, 0],
      [128, 128, 128],
    ]);
    const large = await png(path(palette12) + '/rendered');
    expect([0, 1, 2].map((x) => rgbAt(large, x, 0))).toEqual([
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
    ]);
  });

  it('converts YBR_FULL and YBR_FULL_422 to RGB, and reads RGB by plane', async () => {
    const near = (actual: (number | undefined)[], expected: number[]) => {
      for (const [i, value] of expected.entries()) expect(Math.abs((actual[i] ?? -99) - value)).toBeLessThanOrEqual(2);
    };
    const full = await png(path(ybr) + '/rendered');
    near(rgbAt(full, 0, 0), [254, 0, 0]);
    near(rgbAt(full, 1, 0), [0, 255, 1]);
    near(rgbAt(full, 0, 1), [0, 0, 254]);
    near(rgbAt(full, 1, 1), [255, 255, 255]);
    const half = await png(path(ybr422) + '/rendered');
    near(rgbAt(half, 1, 0), [254, 0, 0]);
    near(rgbAt(half, 2, 0), [0, 255, 1]);
    // Its frame as stored: two samples per pixel, so the frame table found the whole 8-byte frame.
    const frame = await get(path(ybr422) + '/frames/1', 'application/octet-stream; transfer-syntax=*');
    expect(frame.status).toBe(200);
    expect([...frame.body]).toEqual([76, 76, 85, 255, 150, 150, 44, 21]);
    const planar = await png(path(rgbPlanar) + '/rendered');
    expect([rgbAt(planar, 0, 0), rgbAt(planar, 1, 0), rgbAt(planar, 0, 1), rgbAt(planar, 1, 1)]).toEqual([
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
      [128, 128, 128],
    ]);
  });

  it('takes an enhanced multi-frame image’s rescale and window from its functional groups, per frame', async () => {
    expect(grays(await png(path(enhanced) + '/frames/1/rendered'))).toEqual([0, 100].map((v) => linear(v, 50, 101)));
    expect(grays(await png(path(enhanced) + '/frames/2/rendered'))).toEqual([-50, 50].map((v) => linear(v, 50, 101)));
  });

  it('renders 1-bit pixels', async () => {
    expect(grays(await png(path(oneBit) + '/rendered'))).toEqual(ramp(16, (i) => (i % 2 === 0 ? 255 : 0)));
  });

  it('renders the first frame of a multi-frame instance, or the frame asked for', async () => {
    const level = (k: number) => linear(k * 100, 150, 301);
    expect(grays(await png(path(multiFrame) + '/rendered'))).toEqual([0, 0, 0, 0].map(() => level(0)));
    expect(grays(await png(path(multiFrame) + '/frames/2/rendered'))).toEqual([0, 0, 0, 0].map(() => level(1)));
    expect(grays(await png(path(multiFrame) + '/frames/3/rendered'))).toEqual([0, 0, 0, 0].map(() => level(2)));
    expect((await get(path(multiFrame) + '/frames/4/rendered')).status).toBe(404);
    const thumbnail = await png(path(multiFrame) + '/frames/2/thumbnail');
    expect([thumbnail.width, thumbnail.height]).toEqual([128, 128]);
    expect(new Set(grays(thumbnail))).toEqual(new Set([level(1)]));
    expect((await get(path(multiFrame) + '/frames/4/thumbnail')).status).toBe(404);
  });

  it('scales to fit the viewport, and cuts and flips the source region', async () => {
    const fitted = await png(path(wide) + '/rendered?viewport=4,4');
    expect([fitted.width, fitted.height]).toEqual([4, 2]);
    const region = await png(path(wide) + '/rendered?viewport=4,4,2,0,4,4');
    expect([region.width, region.height]).toEqual([4, 4]);
    expect(grays(region).slice(0, 4)).toEqual([0, 0, 255, 255]);
    const flipped = await png(path(wide) + '/rendered?viewport=4,4,2,0,-4,4');
    expect(grays(flipped).slice(0, 4)).toEqual([255, 255, 0, 0]);
    expect((await get(path(wide) + '/rendered?viewport=8,8,20,0,4,4')).status).toBe(400);
  });

  it('negotiates the media type: JPEG by default, the accept parameter, multipart, GIF, 406', async () => {
    expect((await get(path(mono2) + '/rendered')).type).toBe('image/jpeg');
    expect((await get(path(mono2) + '/rendered', '*/*')).type).toBe('image/jpeg');
    expect((await get(path(mono2) + '/rendered?accept=image/png', 'image/jpeg')).type).toBe('image/png');
    expect((await get(path(mono2) + '/rendered', 'image/png;q=0.5, image/gif')).type).toBe('image/gif');
    const multipart = await get(path(mono2) + '/rendered', 'multipart/related; type="image/png"');
    const parts = decodeMultipart(multipart.body, boundaryOf(multipart.type));
    expect(parts).toHaveLength(1);
    expect(PNG.sync.read(parts[0]?.body ?? Buffer.alloc(0)).width).toBe(4);
    const refused = await get(path(mono2) + '/rendered', 'application/dicom');
    expect(refused.status).toBe(406);
    expect(refused.body.toString()).toContain('image/jpeg');
  });

  it('answers 400 to bad parameters, naming what is wrong', async () => {
    for (const [query, word] of [
      ['quality=0', 'quality'],
      ['quality=abc', 'quality'],
      ['viewport=0,10', 'viewport'],
      ['viewport=10', 'viewport'],
      ['viewport=10,10,1,2,3', 'viewport'],
      ['viewport=10,10,-1,0,3,3', 'sx'],
      ['window=40', 'window'],
      ['window=a,400', 'window'],
      ['window=40,0,linear', 'width'],
      ['window=40,400,cubic', 'window'],
      ['quality=50&quality=60', 'quality'],
    ] as const) {
      const result = await get(`${path(mono2)}/rendered?${query}`);
      expect(result.status, query).toBe(400);
      expect(result.body.toString(), query).toContain(word);
    }
    expect((await get(path(mono2) + '/thumbnail?viewport=10,10,0,0,2,2')).status).toBe(400);
    expect((await get(path(multiFrame) + '/frames/1,2/rendered')).status).toBe(400);
  });

  it('answers 404 for what does not exist and 406 for a compressed instance without a decoder', async () => {
    expect((await get(path({ ...mono2, sopInstanceUid: testUid() }) + '/rendered')).status).toBe(404);
    expect((await get(`/v2/studies/${testUid()}/rendered`)).status).toBe(404);
    expect((await get(`/v2/studies/${testUid()}/thumbnail`)).status).toBe(404);
    const refused = await get(path(compressed) + '/rendered');
    expect(refused.status).toBe(406);
    expect(refused.body.toString()).toContain('1.2.840.10008.1.2.4.50');
  });

  it('renders a study and a series by their representative instance', async () => {
    const repStudy = testUid();
    const later = newInstanceUids(repStudy, testUid());
    const first = newInstanceUids(repStudy, testUid());
    const second = newInstanceUids(repStudy, first.seriesInstanceUid);
    const flat = (value: number, seriesNumber: string, instanceNumber: string) =>
      image({
        rows: 1,
        columns: 2,
        bits: 8,
        pixels: u8([value, value]),
        extra: {
          '00200011': { vr: 'IS', value: seriesNumber },
          '00200013': { vr: 'IS', value: instanceNumber },
          '00281050': { vr: 'DS', value: '128' },
          '00281051': { vr: 'DS', value: '256' },
        },
      });
    const stow = await fetch(
      `${server().baseUrl}/v2/studies`,
      stowRequestInit([
        buildInstance({ ...later, attributes: flat(10, '2', '1') }),
        buildInstance({ ...second, attributes: flat(200, '1', '2') }),
        buildInstance({ ...first, attributes: flat(100, '1', '1') }),
      ]),
    );
    expect(stow.status).toBe(200);
    expect(grays(await png(`/v2/studies/${repStudy}/rendered`))).toEqual([100, 100]);
    expect(grays(await png(`/v2/studies/${repStudy}/series/${later.seriesInstanceUid}/rendered`))).toEqual([10, 10]);
    const thumbnail = await png(`/v2/studies/${repStudy}/thumbnail`);
    expect([thumbnail.width, thumbnail.height]).toEqual([128, 64]);
    expect(new Set(grays(thumbnail))).toEqual(new Set([100]));
    // Cached for the study's revision: this process holds it, so one point read (the revision).
    const cached = await server().call(`/v2/studies/${repStudy}/thumbnail`, { headers: { accept: 'image/png' } });
    expect(cached.storage.byKind).toEqual({ 'table.get-entity': 1 });
    expect(new Set(grays(PNG.sync.read(cached.body)))).toEqual(new Set([100]));
    // Another process finds it in the study's thumbnails blob (the point read and the blob read,
    // in parallel), then holds it too.
    const other = await serveMetered(server().storage);
    try {
      const fromBlob = await other.call(`/v2/studies/${repStudy}/thumbnail`, { headers: { accept: 'image/png' } });
      expect(fromBlob.storage.byKind).toEqual({ 'table.get-entity': 1, 'blob.get': 1 });
      expect(fromBlob.body.equals(cached.body)).toBe(true);
      const held = await other.call(`/v2/studies/${repStudy}/thumbnail`, { headers: { accept: 'image/png' } });
      expect(held.storage.byKind).toEqual({ 'table.get-entity': 1 });
    } finally {
      await other.close();
    }
    // A new first series changes the study's representative, and its thumbnail at once.
    const earlier = newInstanceUids(repStudy, testUid());
    const added = await fetch(
      `${server().baseUrl}/v2/studies`,
      stowRequestInit([buildInstance({ ...earlier, attributes: flat(50, '0', '1') })]),
    );
    expect(added.status).toBe(200);
    expect(new Set(grays(await png(`/v2/studies/${repStudy}/thumbnail`)))).toEqual(new Set([50]));
    expect(new Set(grays(await png(`/v2/studies/${repStudy}/series/${later.seriesInstanceUid}/thumbnail`)))).toEqual(
      new Set([10]),
    );
    // A study delete takes the study's and its series' thumbnails along.
    expect((await fetch(`${server().baseUrl}/v2/studies/${repStudy}`, { method: 'DELETE' })).status).toBe(204);
    const left: string[] = [];
    for await (const blob of server().storage.blobs.list(`${repStudy}/`)) left.push(blob.name);
    expect(left).toEqual([]);
    expect((await get(`/v2/studies/${repStudy}/thumbnail`)).status).toBe(404);
  });

  it('caches a thumbnail beside the instance: the second request is one blob read, no frame read', async () => {
    const thumb = `${path(redUids)}/thumbnail`;
    const cold = await server().call(thumb, { headers: { accept: 'image/jpeg' } });
    expect(cold.status).toBe(200);
    expect(cold.storage.byKind['blob.get-range']).toBeGreaterThan(0); // the frame
    const decoded = jpeg.decode(cold.body, { useTArray: true });
    expect(Math.max(decoded.width, decoded.height)).toBe(128);
    const center = rgbAt(decoded, 64, 90);
    expect(center[0]).toBeGreaterThan(200);
    expect(center[1]).toBeLessThan(60);
    const cached = await server().call(thumb, { headers: { accept: 'image/jpeg' } });
    expect(cached.status).toBe(200);
    expect(cached.body.equals(cold.body)).toBe(true);
    // The instance read only: this process holds the version's cache blob in memory.
    expect(cached.storage.byKind).toEqual({ 'table.get-entity': 3 });
    // Another viewport is another entry of the same cache blob.
    const small = await server().call(`${thumb}?viewport=32,32`, { headers: { accept: 'image/png' } });
    expect(PNG.sync.read(small.body).width).toBe(32);
    const again = await server().call(`${thumb}?viewport=32,32`, { headers: { accept: 'image/png' } });
    expect(again.storage.byKind).toEqual({ 'table.get-entity': 3 });
    // Another process reads the blob once, and finds both entries in it.
    const other = await serveMetered(server().storage);
    try {
      const fromBlob = await other.call(thumb, { headers: { accept: 'image/jpeg' } });
      expect(fromBlob.storage.byKind).toEqual({ 'table.get-entity': 3, 'blob.get': 1 });
      expect(fromBlob.body.equals(cold.body)).toBe(true);
      const smallThere = await other.call(`${thumb}?viewport=32,32`, { headers: { accept: 'image/png' } });
      expect(smallThere.storage.byKind).toEqual({ 'table.get-entity': 3 });
      expect(smallThere.body.equals(small.body)).toBe(true);
    } finally {
      await other.close();
    }
  });

  it('deletes the thumbnail cache with the instance', async () => {
    const record = await server().storage.index.getInstance(mono2);
    expect((await get(path(mono2) + '/thumbnail')).status).toBe(200);
    const cacheName = thumbnailCacheBlobName(record?.blobName ?? '');
    expect(await server().storage.blobs.readSmall(cacheName)).toBeDefined();
    expect((await fetch(`${server().baseUrl}${path(mono2)}`, { method: 'DELETE' })).status).toBe(204);
    expect(await server().storage.blobs.readSmall(cacheName)).toBeUndefined();
    expect((await get(path(mono2) + '/thumbnail')).status).toBe(404);
  });
});
