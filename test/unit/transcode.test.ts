import dicomParser, { type DataSet } from 'dicom-parser';
import { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { canTranscode, transcode, TranscodeError } from '../../src/dicom/transcode/transcode.js';
import {
  buildInstance,
  DEFLATED,
  EXPLICIT_BE,
  EXPLICIT_LE,
  IMPLICIT_LE,
  JPEG_BASELINE,
  newInstanceUids,
} from '../../support/dicom-builder.js';

const SYNTAXES = [IMPLICIT_LE, EXPLICIT_LE, DEFLATED, EXPLICIT_BE];
const NAMES: Record<string, string> = {
  [IMPLICIT_LE]: 'implicit LE',
  [EXPLICIT_LE]: 'explicit LE',
  [DEFLATED]: 'deflated',
  [EXPLICIT_BE]: 'explicit BE',
};
const PAIRS = SYNTAXES.flatMap((from) => SYNTAXES.map((to) => [NAMES[from], NAMES[to], from, to] as const));

// An encoder independent of the transcoder, to write the expected bytes of a data set in any syntax.

type Item = readonly Element[];
interface Element {
  readonly tag: string;
  readonly vr: string;
  /** Text, numbers (encoded by VR), raw bytes, or the items of a sequence. */
  readonly value: string | readonly number[] | Uint8Array | readonly Item[];
  /** Writes a sequence with undefined length even when the layout uses defined lengths. */
  readonly undefinedLength?: boolean;
}

interface Layout {
  readonly explicit: boolean;
  readonly littleEndian: boolean;
  /** Defined-length sequences and items; the transcoder always writes undefined lengths. */
  readonly definedLengths?: boolean;
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT']);

function layoutOf(syntax: string, definedLengths = false): Layout {
  return { explicit: syntax !== IMPLICIT_LE, littleEndian: syntax !== EXPLICIT_BE, definedLengths };
}

type Write = (bytes: Buffer, value: number, at: number) => unknown;
/** Per number VR: bytes per value and the little and big endian writers. */
const NUMBERS: Record<string, [number, Write, Write]> = {
  US: [2, (b, v, at) => b.writeUInt16LE(v, at), (b, v, at) => b.writeUInt16BE(v, at)],
  OW: [2, (b, v, at) => b.writeUInt16LE(v, at), (b, v, at) => b.writeUInt16BE(v, at)],
  SS: [2, (b, v, at) => b.writeInt16LE(v, at), (b, v, at) => b.writeInt16BE(v, at)],
  UL: [4, (b, v, at) => b.writeUInt32LE(v, at), (b, v, at) => b.writeUInt32BE(v, at)],
  OL: [4, (b, v, at) => b.writeUInt32LE(v, at), (b, v, at) => b.writeUInt32BE(v, at)],
  SL: [4, (b, v, at) => b.writeInt32LE(v, at), (b, v, at) => b.writeInt32BE(v, at)],
  FL: [4, (b, v, at) => b.writeFloatLE(v, at), (b, v, at) => b.writeFloatBE(v, at)],
  OF: [4, (b, v, at) => b.writeFloatLE(v, at), (b, v, at) => b.writeFloatBE(v, at)],
  FD: [8, (b, v, at) => b.writeDoubleLE(v, at), (b, v, at) => b.writeDoubleBE(v, at)],
  OD: [8, (b, v, at) => b.writeDoubleLE(v, at), (b, v, at) => b.writeDoubleBE(v, at)],
  // AT: a group and an element number, each 16 bits in the byte order.
  AT: [
    4,
    (b, v, at) => b.writeUInt32LE((((v & 0xffff) << 16) | (v >>> 16)) >>> 0, at),
    (b, v, at) => b.writeUInt32BE(v, at),
  ],
};

function numbers(vr: string, values: readonly number[], littleEndian: boolean): Buffer {
  const encoding = NUMBERS[vr];
  if (encoding === undefined) throw new Error(`no number encoding for ${vr}`);
  const [size, le, be] = encoding;
  const bytes = Buffer.alloc(size * values.length);
  values.forEach((value, i) => (littleEndian ? le : be)(bytes, value, i * size));
  return bytes;
}

function tagBytes(tag: number, littleEndian: boolean): Buffer {
  const bytes = Buffer.alloc(4);
  if (littleEndian) {
    bytes.writeUInt16LE(tag >>> 16, 0);
    bytes.writeUInt16LE(tag & 0xffff, 2);
  } else bytes.writeUInt32BE(tag >>> 0, 0);
  return bytes;
}

function u32(value: number, littleEndian: boolean): Buffer {
  const bytes = Buffer.alloc(4);
  if (littleEndian) bytes.writeUInt32LE(value);
  else bytes.writeUInt32BE(value);
  return bytes;
}

function header(tag: number, vr: string, length: number, layout: Layout): Buffer {
  if (!layout.explicit) return Buffer.concat([tagBytes(tag, layout.littleEndian), u32(length, layout.littleEndian)]);
  if (LONG_VRS.has(vr)) {
    return Buffer.concat([
      tagBytes(tag, layout.littleEndian),
      Buffer.from(`${vr}\0\0`),
      u32(length, layout.littleEndian),
    ]);
  }
  const short = Buffer.alloc(2);
  if (layout.littleEndian) short.writeUInt16LE(length);
  else short.writeUInt16BE(length);
  return Buffer.concat([tagBytes(tag, layout.littleEndian), Buffer.from(vr), short]);
}

function delimiter(tag: number, layout: Layout): Buffer {
  return Buffer.concat([tagBytes(tag, layout.littleEndian), u32(0, layout.littleEndian)]);
}

function encodeItems(items: readonly Item[], layout: Layout, undefinedLength = false): Buffer {
  const defined = layout.definedLengths === true && !undefinedLength;
  const encoded = items.map((item) => {
    const body = encodeDataSet(item, layout);
    const start = Buffer.concat([
      tagBytes(0xfffee000, layout.littleEndian),
      u32(defined ? body.length : ~0 >>> 0, layout.littleEndian),
    ]);
    return Buffer.concat([start, body, defined ? Buffer.alloc(0) : delimiter(0xfffee00d, layout)]);
  });
  return Buffer.concat([...encoded, defined ? Buffer.alloc(0) : delimiter(0xfffee0dd, layout)]);
}

function encodeElement(element: Element, layout: Layout): Buffer {
  const tag = Number.parseInt(element.tag, 16);
  const { value } = element;
  if (element.vr === 'SQ' || (Array.isArray(value) && Array.isArray(value[0]))) {
    const items = value as readonly Item[];
    const content = encodeItems(items, layout, element.undefinedLength);
    const defined = layout.definedLengths === true && !element.undefinedLength;
    return Buffer.concat([header(tag, element.vr, defined ? content.length : ~0 >>> 0, layout), content]);
  }
  let bytes: Buffer;
  if (typeof value === 'string') {
    bytes = Buffer.from(value, 'utf8');
    if (bytes.length % 2 === 1) bytes = Buffer.concat([bytes, Buffer.from(element.vr === 'UI' ? '\0' : ' ')]);
  } else if (value instanceof Uint8Array) bytes = Buffer.from(value);
  else bytes = numbers(element.vr, value as readonly number[], layout.littleEndian);
  return Buffer.concat([header(tag, element.vr, bytes.length, layout), bytes]);
}

function encodeDataSet(elements: readonly Element[], layout: Layout): Buffer {
  const sorted = [...elements].sort((a, b) => a.tag.toUpperCase().localeCompare(b.tag.toUpperCase()));
  return Buffer.concat(sorted.map((element) => encodeElement(element, layout)));
}

const META_LE: Layout = { explicit: true, littleEndian: true };

function fileMeta(syntax: string): Buffer {
  const body = encodeDataSet(
    [
      { tag: '00020001', vr: 'OB', value: Uint8Array.of(0, 1) },
      { tag: '00020002', vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.2' },
      { tag: '00020003', vr: 'UI', value: '1.2.826.0.1.3680043.10.1234.1.1' },
      { tag: '00020010', vr: 'UI', value: syntax },
      { tag: '00020012', vr: 'UI', value: '1.2.826.0.1.3680043.10.1234' },
    ],
    META_LE,
  );
  const groupLength = encodeElement({ tag: '00020000', vr: 'UL', value: [body.length] }, META_LE);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), groupLength, body]);
}

function part10(elements: readonly Element[], syntax: string, definedLengths = false): Buffer {
  const dataSet = encodeDataSet(elements, layoutOf(syntax, definedLengths));
  return Buffer.concat([fileMeta(syntax), syntax === DEFLATED ? deflateRawSync(dataSet) : dataSet]);
}

/** The File Meta part and the (inflated) data set of a Part 10 file. */
function split(file: Uint8Array): { meta: Buffer; dataSet: Buffer } {
  const bytes = Buffer.from(file);
  const metaEnd = 144 + bytes.readUInt32LE(140);
  const meta = bytes.subarray(0, metaEnd);
  const deflated = meta.includes(Buffer.from(DEFLATED, 'latin1'));
  const rest = bytes.subarray(metaEnd);
  return { meta, dataSet: deflated ? inflateRawSync(rest) : rest };
}

// Streaming helpers.

async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) {
    await Promise.resolve();
    yield bytes.subarray(i, i + size);
  }
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

function run(file: Uint8Array, from: string, to: string, chunkSize = 4096): Promise<Buffer> {
  return collect(transcode(chunked(file, chunkSize), from, to));
}

function inflater(bytes: Uint8Array, position: number): Uint8Array {
  return Buffer.concat([bytes.subarray(0, position), inflateRawSync(bytes.subarray(position))]);
}

function parse(file: Uint8Array): DataSet {
  return dicomParser.parseDicom(file, { inflater });
}

const key = (tag: string) => `x${tag.toLowerCase()}`;

/** Pixel Data as little endian words whatever the file's byte order, for comparing values. */
function pixelWords(dataSet: DataSet, bigEndian: boolean): Buffer {
  const element = dataSet.elements[key('7FE00010')];
  if (!element) throw new Error('no pixel data');
  const bytes = Buffer.from(dataSet.byteArray.subarray(element.dataOffset, element.dataOffset + element.length));
  return bigEndian ? bytes.swap16() : bytes;
}

// A data set with every swapped VR, text, private tags and nested sequences, in the VRs the
// dictionary gives, so implicit VR round-trips are exact.
const SOP_INSTANCE = '1.2.826.0.1.3680043.10.1234.1.1';
const SPEC: readonly Element[] = [
  { tag: '00080005', vr: 'CS', value: 'ISO_IR 192' },
  { tag: '00080016', vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.2' },
  { tag: '00080018', vr: 'UI', value: SOP_INSTANCE },
  { tag: '00080119', vr: 'UC', value: 'a long code value' },
  { tag: '0008030E', vr: 'UT', value: 'unlimited text' },
  { tag: '00081030', vr: 'LO', value: 'CT CHEST' },
  {
    tag: '00081140',
    vr: 'SQ',
    value: [
      [
        { tag: '00081150', vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.2' },
        { tag: '00081155', vr: 'UI', value: '1.2.3.4.5' },
      ],
      [
        { tag: '00081150', vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.4' },
        { tag: '00081160', vr: 'IS', value: '1\\2' },
      ],
    ],
  },
  { tag: '00081190', vr: 'UR', value: 'https://example.org/studies/1' },
  { tag: '00084000', vr: 'LT', value: 'long text' },
  { tag: '00090010', vr: 'LO', value: 'ACME 1.0' },
  { tag: '00091001', vr: 'UN', value: Uint8Array.of(1, 2, 3, 4, 5, 6) },
  { tag: '00100010', vr: 'PN', value: 'Müller^Jürgen' },
  { tag: '00101010', vr: 'AS', value: '042Y' },
  { tag: '00180013', vr: 'FL', value: [1.5, -2.25] },
  { tag: '00181271', vr: 'FD', value: [Math.PI, -1e300] },
  { tag: '00186020', vr: 'SL', value: [-70000, 5] },
  { tag: '00189219', vr: 'SS', value: [-5, 300] },
  { tag: '00209165', vr: 'AT', value: [0x00280010, 0x7fe00010] },
  { tag: '00280010', vr: 'US', value: [4] },
  { tag: '00280011', vr: 'US', value: [4] },
  { tag: '00280100', vr: 'US', value: [16] },
  { tag: '00281201', vr: 'OW', value: [0x0102, 0x0304, 0xa0b0] },
  {
    tag: '00283010',
    vr: 'SQ',
    value: [
      [
        { tag: '00283002', vr: 'US', value: [4, 0, 16] },
        { tag: '00283006', vr: 'US', value: [1, 2, 3, 0xfffe] },
      ],
    ],
  },
  { tag: '00400260', vr: 'SQ', value: [] },
  {
    tag: '00400275',
    vr: 'SQ',
    value: [
      [
        { tag: '00400007', vr: 'LO', value: 'step' },
        {
          tag: '00400008',
          vr: 'SQ',
          value: [
            [
              { tag: '00080100', vr: 'SH', value: 'X1' },
              { tag: '00080102', vr: 'SH', value: 'DCM' },
            ],
          ],
        },
      ],
      [],
    ],
  },
  { tag: '00420011', vr: 'OB', value: Uint8Array.of(9, 8, 7, 6) },
  { tag: '00660016', vr: 'OF', value: [1.5, 2.5, 3.5] },
  { tag: '00660040', vr: 'OL', value: [1, 2, 70000] },
  { tag: '0070150D', vr: 'OD', value: [1.25, -8] },
  {
    tag: '00880200',
    vr: 'SQ',
    value: [
      [
        { tag: '00280010', vr: 'US', value: [2] },
        { tag: '00280011', vr: 'US', value: [2] },
        { tag: '00280100', vr: 'US', value: [8] },
        // 8-bit icon: OB in implicit VR, from this item's own Bits Allocated.
        { tag: '7FE00010', vr: 'OB', value: Uint8Array.of(10, 20, 30, 40) },
      ],
    ],
  },
  { tag: '7FE00010', vr: 'OW', value: Array.from({ length: 16 }, (_, i) => 0x0100 * i + 0x11) },
];

describe('canTranscode', () => {
  it('accepts every pair of native syntaxes, decodable to native, native to encodable, and no lossy to lossless-only', () => {
    for (const from of SYNTAXES) for (const to of SYNTAXES) expect(canTranscode(from, to)).toBe(true);
    expect(canTranscode(JPEG_BASELINE, EXPLICIT_LE)).toBe(true);
    expect(canTranscode(EXPLICIT_LE, '1.2.840.10008.1.2.5')).toBe(true);
    expect(canTranscode('1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.201')).toBe(true);
    expect(canTranscode(JPEG_BASELINE, '1.2.840.10008.1.2.4.90')).toBe(false);
    expect(canTranscode(JPEG_BASELINE, '1.2.840.10008.1.2.4.91')).toBe(true);
    expect(canTranscode(EXPLICIT_LE, JPEG_BASELINE)).toBe(false);
    expect(canTranscode('1.2.840.10008.1.2.4.100', EXPLICIT_LE)).toBe(false);
    expect(canTranscode('1.2.3', EXPLICIT_LE)).toBe(false);
  });

  it('rejects a pair it cannot do before reading anything', async () => {
    await expect(run(Buffer.alloc(0), '1.2.840.10008.1.2.4.100', EXPLICIT_LE)).rejects.toThrow(TranscodeError);
  });
});

describe('transcode between native syntaxes', () => {
  it.each(PAIRS)('%s → %s gives the bytes an independent encoder writes, and back', async (_a, _b, from, to) => {
    const original = part10(SPEC, from);
    const output = await run(original, from, to);
    const expected = split(part10(SPEC, to));
    expect(split(output).meta.equals(expected.meta)).toBe(true);
    expect(split(output).dataSet.equals(expected.dataSet)).toBe(true);
    const back = await run(output, to, from);
    if (from === DEFLATED) expect(split(back)).toEqual(split(original));
    else expect(back.equals(original)).toBe(true);
  });

  it('rewrites defined-length sequences and items with undefined length', async () => {
    for (const [, , from, to] of PAIRS) {
      const output = await run(part10(SPEC, from, true), from, to);
      expect(split(output).dataSet.equals(split(part10(SPEC, to)).dataSet), `${from} → ${to}`).toBe(true);
    }
  });

  it('gives the values dicom-parser reads from a buildInstance file, for every pair', async () => {
    const uids = newInstanceUids();
    const pixels = Buffer.from(Array.from({ length: 2048 }, (_, i) => (i * 7) & 0xff));
    const items: Item[] = [
      [{ tag: '00081150', vr: 'UI', value: '1.2.3' }],
      [{ tag: '00081155', vr: 'UI', value: '4.5.6' }],
    ];
    const build = (syntax: string) =>
      buildInstance({
        ...uids,
        transferSyntax: syntax,
        attributes: {
          '00280100': { vr: 'US', value: Uint8Array.of(16, 0) },
          '00081140': { vr: 'SQ', value: encodeItems(items, layoutOf(syntax, true)) },
          '7FE00010': { vr: 'OW', value: pixels },
        },
      });
    for (const [, , from, to] of PAIRS) {
      const input = build(from);
      const output = await run(input, from, to);
      const [before, after] = [parse(input), parse(output)];
      for (const tag of ['00080018', '00100010', '00100020', '0020000D', '00081030']) {
        expect(after.string(key(tag)), `${tag} ${from} → ${to}`).toBe(before.string(key(tag)));
      }
      for (const tag of ['00280010', '00280011', '00280100'])
        expect(after.uint16(key(tag))).toBe(before.uint16(key(tag)));
      expect(after.string(key('00020010'))).toBe(to);
      expect(pixelWords(after, to === EXPLICIT_BE).equals(pixelWords(before, from === EXPLICIT_BE))).toBe(true);
      const sequence = after.elements[key('00081140')]?.items ?? [];
      expect(
        sequence.map((item) => item.dataSet?.string(key('00081150')) ?? item.dataSet?.string(key('00081155'))),
      ).toEqual(['1.2.3', '4.5.6']);
      // Back again: the same bytes as transcoding the original to its own syntax (which canonicalises lengths).
      const canonical = split(await run(input, from, from));
      expect(split(await run(output, to, from))).toEqual(canonical);
    }
  });

  it('gives the same output whatever the input chunk size', async () => {
    const spec = [
      ...SPEC.slice(0, -1),
      { tag: '7FE00010', vr: 'OW', value: Array.from({ length: 33_001 }, (_, i) => i & 0xffff) },
    ];
    for (const [from, to] of [
      [IMPLICIT_LE, EXPLICIT_BE],
      [DEFLATED, IMPLICIT_LE],
      [EXPLICIT_BE, DEFLATED],
    ] as const) {
      const input = part10(spec, from);
      const reference = split(await run(input, from, to, input.length));
      for (const size of [1, 7, 64 * 1024]) {
        expect(split(await run(input, from, to, size)), `${from} → ${to} in ${size}-byte chunks`).toEqual(reference);
      }
      expect(reference.dataSet.equals(split(part10(spec, to)).dataSet)).toBe(true);
    }
  });
});

describe('VRs in implicit VR input', () => {
  const elementsOf = async (spec: readonly Element[], to = EXPLICIT_LE) =>
    parse(await run(part10(spec, IMPLICIT_LE), IMPLICIT_LE, to)).elements;

  it('takes VRs from the dictionary, UN for unknown tags, and OB or OW for Pixel Data by Bits Allocated', async () => {
    const spec = (bits: number | undefined): Element[] => [
      { tag: '00090010', vr: 'LO', value: 'ACME' },
      { tag: '00091001', vr: 'UN', value: Uint8Array.of(1, 2) },
      { tag: '00100010', vr: 'PN', value: 'A^B' },
      ...(bits === undefined ? [] : [{ tag: '00280100', vr: 'US', value: [bits] }]),
      { tag: '7FE00010', vr: 'OW', value: Uint8Array.of(1, 2, 3, 4) },
    ];
    const eight = await elementsOf(spec(8));
    expect([eight.x00090010?.vr, eight.x00091001?.vr, eight.x00100010?.vr, eight.x7fe00010?.vr]).toEqual([
      'LO',
      'UN',
      'PN',
      'OB',
    ]);
    expect((await elementsOf(spec(16))).x7fe00010?.vr).toBe('OW');
    expect((await elementsOf(spec(undefined))).x7fe00010?.vr).toBe('OW');
  });

  it('reads an unknown tag of undefined length as a sequence and writes it as SQ', async () => {
    const spec: Element[] = [{ tag: '00091002', vr: 'UN', value: [[{ tag: '00100020', vr: 'LO', value: 'inner' }]] }];
    const output = await run(part10(spec, IMPLICIT_LE), IMPLICIT_LE, EXPLICIT_BE);
    const expected = [{ ...spec[0], vr: 'SQ' }] as Element[];
    expect(split(output).dataSet.equals(split(part10(expected, EXPLICIT_BE)).dataSet)).toBe(true);
  });

  it('writes a value too long for a 16-bit length as UN, or as the long VR the dictionary allows', async () => {
    const text = 'x'.repeat(70_000);
    const lut = Array.from({ length: 40_000 }, (_, i) => i);
    const spec: Element[] = [
      { tag: '00081030', vr: 'LO', value: text },
      { tag: '00283010', vr: 'SQ', value: [[{ tag: '00283006', vr: 'US', value: lut }]] },
    ];
    const elements = await elementsOf(spec, EXPLICIT_BE);
    expect(elements.x00081030?.vr).toBe('UN');
    const lutElement = elements.x00283010?.items?.[0]?.dataSet?.elements.x00283006;
    expect(lutElement?.vr).toBe('OW');
    // Through big endian and back: the UN text and the swapped LUT words come back unchanged.
    const original = part10(spec, IMPLICIT_LE);
    const bigEndian = await run(original, IMPLICIT_LE, EXPLICIT_BE);
    expect((await run(bigEndian, EXPLICIT_BE, IMPLICIT_LE)).equals(original)).toBe(true);
  });
});

describe('explicit VR input', () => {
  it('reads a UN element of undefined length as an implicit VR little endian sequence', async () => {
    // In a big endian file the items inside an undefined-length UN are still implicit VR LE.
    const inner: Item = [{ tag: '00280010', vr: 'US', value: [258] }];
    const un = Buffer.concat([
      header(0x00091003, 'UN', ~0 >>> 0, layoutOf(EXPLICIT_BE)),
      encodeItems([inner], layoutOf(IMPLICIT_LE)),
    ]);
    const file = Buffer.concat([
      fileMeta(EXPLICIT_BE),
      encodeDataSet([{ tag: '00090010', vr: 'LO', value: 'ACME' }], layoutOf(EXPLICIT_BE)),
      un,
    ]);
    const output = await run(file, EXPLICIT_BE, EXPLICIT_LE);
    const expected = part10(
      [
        { tag: '00090010', vr: 'LO', value: 'ACME' },
        { tag: '00091003', vr: 'SQ', value: [inner] },
      ],
      EXPLICIT_LE,
    );
    expect(output.equals(expected)).toBe(true);
  });

  it('drops data set group lengths, which change with the encoding', async () => {
    const spec: Element[] = [
      { tag: '00100000', vr: 'UL', value: [18] },
      { tag: '00100010', vr: 'PN', value: 'A^B' },
    ];
    const output = await run(part10(spec, EXPLICIT_LE), EXPLICIT_LE, IMPLICIT_LE);
    expect(split(output).dataSet.equals(split(part10(spec.slice(1), IMPLICIT_LE)).dataSet)).toBe(true);
  });

  it('keeps the other File Meta elements and recomputes the group length', async () => {
    const output = await run(part10(SPEC, EXPLICIT_LE), EXPLICIT_LE, DEFLATED);
    const meta = dicomParser.readPart10Header(output);
    expect(meta.string('x00020010')).toBe(DEFLATED);
    expect(meta.string('x00020003')).toBe(SOP_INSTANCE);
    expect(meta.string('x00020012')).toBe('1.2.826.0.1.3680043.10.1234');
    expect(split(output).meta.length).toBe(144 + (meta.uint32('x00020000') ?? 0));
  });
});

describe('bounded memory', () => {
  const PIXEL_BYTES = 50 * 1024 * 1024;
  const CHUNK = 64 * 1024;
  const head: Element[] = [
    { tag: '00080018', vr: 'UI', value: SOP_INSTANCE },
    { tag: '00280100', vr: 'US', value: [16] },
  ];
  const pattern = Buffer.from(Array.from({ length: CHUNK }, (_, i) => (i * 31 + 7) & 0xff));

  /** A 50 MB instance, generated as it is read: nothing holds more than one 64 KiB chunk. */
  async function* bigInstance(syntax: string, swap: boolean): AsyncGenerator<Uint8Array> {
    const layout = layoutOf(syntax);
    await Promise.resolve();
    yield Buffer.concat([fileMeta(syntax), encodeDataSet(head, layout), header(0x7fe00010, 'OW', PIXEL_BYTES, layout)]);
    const chunk = swap ? Buffer.from(pattern).swap16() : pattern;
    for (let sent = 0; sent < PIXEL_BYTES; sent += CHUNK) yield chunk;
  }

  async function digest(chunks: AsyncIterable<Uint8Array>) {
    const hash = createHash('sha256');
    const baseline = process.memoryUsage();
    let [largest, total, peak] = [0, 0, 0];
    for await (const chunk of chunks) {
      hash.update(chunk);
      largest = Math.max(largest, chunk.byteLength);
      total += chunk.byteLength;
      const now = process.memoryUsage();
      peak = Math.max(peak, now.heapUsed - baseline.heapUsed + (now.arrayBuffers - baseline.arrayBuffers));
    }
    return { hash: hash.digest('hex'), largest, total, peak };
  }

  it.each([
    [EXPLICIT_LE, EXPLICIT_BE],
    [EXPLICIT_BE, IMPLICIT_LE],
    [EXPLICIT_LE, DEFLATED],
  ])('streams 50 MB of pixel data %s → %s in bounded chunks and memory', async (from, to) => {
    const started = performance.now();
    const result = await digest(transcode(bigInstance(from, from === EXPLICIT_BE), from, to));
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `50 MB ${NAMES[from]} → ${NAMES[to]}: ${(PIXEL_BYTES / 1e6 / seconds).toFixed(0)} MB/s, largest chunk ${result.largest}, peak +${(result.peak / 2 ** 20).toFixed(1)} MiB`,
    );
    expect(result.largest).toBeLessThanOrEqual(1024 * 1024);
    expect(result.peak).toBeLessThan(100 * 1024 * 1024);
    if (to === DEFLATED) return;
    const expected = await digest(bigInstance(to, to === EXPLICIT_BE));
    expect(result.total).toBe(expected.total);
    expect(result.hash).toBe(expected.hash);
  });
});

describe('output chunks', () => {
  it('are bounded even when the whole input arrives as one chunk', async () => {
    const file = buildInstance({ ...newInstanceUids(), pixelBytes: 5 * 1024 * 1024 });
    let largest = 0;
    for await (const chunk of transcode(chunked(file, file.length), EXPLICIT_LE, EXPLICIT_BE)) {
      largest = Math.max(largest, chunk.byteLength);
    }
    expect(largest).toBeLessThanOrEqual(256 * 1024);
  });
});

describe('malformed input', () => {
  const file = part10(SPEC, EXPLICIT_LE);
  const fails = async (bytes: Uint8Array, message: RegExp, from = EXPLICIT_LE, to = IMPLICIT_LE) => {
    const error = await run(bytes, from, to).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(TranscodeError);
    expect((error as Error).message).toMatch(message);
  };

  it('reports truncation in the preamble, an element header, a value and the pixel data', async () => {
    await fails(file.subarray(0, 100), /truncated.*preamble/);
    const rows = file.indexOf(Buffer.from([0x28, 0x00, 0x10, 0x00, 0x55, 0x53]));
    await fails(file.subarray(0, rows + 5), /truncated.*header of element \(0028,0010\)/);
    await fails(file.subarray(0, rows + 9), /truncated.*element \(0028,0010\)/);
    await fails(file.subarray(0, file.length - 3), /truncated.*element \(7FE0,0010\)/);
    const big = buildInstance({ ...newInstanceUids(), pixelBytes: 200_000 });
    await fails(big.subarray(0, big.length - 1000), /truncated.*\(7FE0,0010\)/);
    // Through the deflater too, the error is the transcoder's own.
    await fails(big.subarray(0, big.length - 1000), /truncated.*\(7FE0,0010\)/, EXPLICIT_LE, DEFLATED);
  });

  it('reports a missing DICM prefix, a transfer syntax mismatch and a bad VR', async () => {
    const noMagic = Buffer.from(file);
    noMagic.write('DICX', 128);
    await fails(noMagic, /DICM/);
    await fails(file, /says transfer syntax 1\.2\.840\.10008\.1\.2\.1, not 1\.2\.840\.10008\.1\.2\.2/, EXPLICIT_BE);
    const badVr = Buffer.from(file);
    badVr.write('zz', file.indexOf(Buffer.from('AS')), 'latin1');
    await fails(badVr, /invalid VR "zz"/);
  });

  it('reports bad item tags, missing delimiters and items longer than their sequence', async () => {
    const sequence = (items: Buffer) =>
      Buffer.concat([fileMeta(EXPLICIT_LE), header(0x00081140, 'SQ', ~0 >>> 0, META_LE), items]);
    const notAnItem = Buffer.concat([tagBytes(0x00100010, true), u32(0, true)]);
    await fails(sequence(notAnItem), /\(0008,1140\) holds \(0010,0010\) where an item was expected/);
    const item = Buffer.concat([tagBytes(0xfffee000, true), u32(~0 >>> 0, true)]);
    await fails(
      sequence(Buffer.concat([item, encodeDataSet([{ tag: '00100010', vr: 'PN', value: 'A' }], META_LE)])),
      /truncated.*sequence \(0008,1140\)/,
    );
    const stray = Buffer.concat([fileMeta(EXPLICIT_LE), delimiter(0xfffee00d, META_LE)]);
    await fails(stray, /Unexpected \(FFFE,E00D\) in the data set/);
    const definedSequence = Buffer.concat([
      fileMeta(EXPLICIT_LE),
      header(0x00081140, 'SQ', 8, META_LE),
      tagBytes(0xfffee000, true),
      u32(100, true),
      Buffer.alloc(100),
    ]);
    await fails(definedSequence, /item of sequence \(0008,1140\) is longer than the sequence or item that holds it/);
  });

  it('rejects encapsulated pixel data and corrupt deflated data', async () => {
    const encapsulated = buildInstance({
      ...newInstanceUids(),
      transferSyntax: EXPLICIT_LE,
      fragments: [Uint8Array.of(1, 2)],
    });
    await fails(encapsulated, /encapsulated/);
    const deflated = part10(SPEC, DEFLATED);
    const corrupt = Buffer.from(deflated);
    corrupt.fill(0xff, split(deflated).meta.length, split(deflated).meta.length + 20);
    await fails(corrupt, /cannot be inflated/, DEFLATED);
    await fails(deflated.subarray(0, deflated.length - 20), /cannot be inflated|truncated/, DEFLATED);
  });

  it('releases the source when the reader stops early', async () => {
    let finished = false;
    async function* source() {
      try {
        yield* chunked(file, 64);
      } finally {
        finished = true;
      }
    }
    for await (const chunk of transcode(source(), EXPLICIT_LE, EXPLICIT_BE)) {
      expect(chunk.byteLength).toBeGreaterThan(0);
      break;
    }
    expect(finished).toBe(true);
  });
});
