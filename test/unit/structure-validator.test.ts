import dicomParser from 'dicom-parser';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  DicomStructureValidator,
  StructureError,
  type StructureValidatorOptions,
} from '../../src/dicom/structure/structure-validator.js';
import { transcode } from '../../src/dicom/transcode/transcode.js';
import {
  buildInstance,
  DEFLATED,
  EXPLICIT_BE,
  EXPLICIT_LE,
  IMPLICIT_LE,
  JPEG_BASELINE,
  newInstanceUids,
} from '../../support/dicom-builder.js';

const RLE = '1.2.840.10008.1.2.5';
const SYNTAXES = [IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE, DEFLATED, JPEG_BASELINE, RLE] as const;
const NAMES: Record<string, string> = {
  [IMPLICIT_LE]: 'implicit VR LE',
  [EXPLICIT_LE]: 'explicit VR LE',
  [EXPLICIT_BE]: 'explicit VR BE',
  [DEFLATED]: 'deflated',
  [JPEG_BASELINE]: 'JPEG baseline (encapsulated)',
  [RLE]: 'RLE (encapsulated)',
};
const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

// A Part 10 writer independent of the validator: any nesting, defined or undefined lengths, and raw
// bytes to break the structure at a known place.

interface Layout {
  readonly explicit: boolean;
  readonly littleEndian: boolean;
}
interface Plain {
  readonly tag: number;
  readonly vr: string;
  readonly value: string | Uint8Array;
  /** Writes a 16-bit length whatever the VR (to test the header forms). */
  readonly shortLength?: boolean;
}
interface Sequence {
  readonly tag: number;
  readonly vr: 'SQ' | 'UN';
  readonly items: readonly Item[];
  readonly defined?: boolean;
}
interface Encapsulated {
  readonly tag: number;
  readonly vr: 'OB' | 'OW';
  readonly fragments: readonly Uint8Array[];
}
interface Raw {
  readonly raw: Uint8Array;
}
type Node = Plain | Sequence | Encapsulated | Raw;
interface Item {
  readonly elements: readonly Node[];
  readonly defined?: boolean;
}

const SHORT_VRS = new Set('AE AS AT CS DA DS DT FD FL IS LO LT PN SH SL SS ST TM UI UL US'.split(' '));
const UNDEFINED = 0xffffffff;
const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
const SEQUENCE_DELIMITER = 0xfffee0dd;
const PIXEL_DATA = 0x7fe00010;
const IMPLICIT: Layout = { explicit: false, littleEndian: true };

function u16(value: number, littleEndian: boolean): Buffer {
  const bytes = Buffer.alloc(2);
  if (littleEndian) bytes.writeUInt16LE(value);
  else bytes.writeUInt16BE(value);
  return bytes;
}

function u32(value: number, littleEndian: boolean): Buffer {
  const bytes = Buffer.alloc(4);
  if (littleEndian) bytes.writeUInt32LE(value);
  else bytes.writeUInt32BE(value);
  return bytes;
}

function tagBytes(tag: number, littleEndian: boolean): Buffer {
  return Buffer.concat([u16(tag >>> 16, littleEndian), u16(tag & 0xffff, littleEndian)]);
}

function header(tag: number, vr: string, length: number, layout: Layout, shortLength = false): Buffer {
  const { explicit, littleEndian } = layout;
  if (!explicit) return Buffer.concat([tagBytes(tag, littleEndian), u32(length, littleEndian)]);
  if (shortLength || SHORT_VRS.has(vr)) {
    return Buffer.concat([tagBytes(tag, littleEndian), Buffer.from(vr, 'latin1'), u16(length, littleEndian)]);
  }
  return Buffer.concat([
    tagBytes(tag, littleEndian),
    Buffer.from(vr, 'latin1'),
    Buffer.alloc(2),
    u32(length, littleEndian),
  ]);
}

/** An item or delimiter header: tag and 32-bit length, no VR. */
function marker(tag: number, length: number, layout: Layout): Buffer {
  return Buffer.concat([tagBytes(tag, layout.littleEndian), u32(length, layout.littleEndian)]);
}

function textValue(value: string, vr: string): Buffer {
  const padded = value.length % 2 === 1 ? value + (vr === 'UI' ? '\0' : ' ') : value;
  return Buffer.from(padded, 'latin1');
}

function encodeNode(node: Node, layout: Layout): Buffer {
  if ('raw' in node) return Buffer.from(node.raw);
  if ('items' in node) {
    // A UN value of undefined length is implicit VR little endian inside (PS3.5 6.2.2).
    const inner = node.vr === 'UN' ? IMPLICIT : layout;
    const items = node.items.map((item) => {
      const body = encodeDataSet(item.elements, inner).bytes;
      if (item.defined) return Buffer.concat([marker(ITEM, body.length, inner), body]);
      return Buffer.concat([marker(ITEM, UNDEFINED, inner), body, marker(ITEM_DELIMITER, 0, inner)]);
    });
    const content = Buffer.concat(items);
    if (node.defined) return Buffer.concat([header(node.tag, node.vr, content.length, layout), content]);
    return Buffer.concat([header(node.tag, node.vr, UNDEFINED, layout), content, marker(SEQUENCE_DELIMITER, 0, inner)]);
  }
  if ('fragments' in node) {
    const fragments = node.fragments.map((bytes) => Buffer.concat([marker(ITEM, bytes.length, layout), bytes]));
    return Buffer.concat([
      header(node.tag, node.vr, UNDEFINED, layout),
      ...fragments,
      marker(SEQUENCE_DELIMITER, 0, layout),
    ]);
  }
  const value = typeof node.value === 'string' ? textValue(node.value, node.vr) : Buffer.from(node.value);
  return Buffer.concat([header(node.tag, node.vr, value.length, layout, node.shortLength), value]);
}

/** The encoded data set and where each of its top-level elements ends. */
function encodeDataSet(nodes: readonly Node[], layout: Layout): { bytes: Buffer; ends: number[] } {
  const parts = nodes.map((node) => encodeNode(node, layout));
  const ends: number[] = [];
  let offset = 0;
  for (const part of parts) {
    offset += part.length;
    ends.push(offset);
  }
  return { bytes: Buffer.concat(parts), ends };
}

function layoutOf(syntax: string): Layout {
  return { explicit: syntax !== IMPLICIT_LE, littleEndian: syntax !== EXPLICIT_BE };
}

interface MetaOptions {
  readonly groupLength?: boolean;
  /** Meta elements instead of the usual ones (the transfer syntax is left out when given). */
  readonly elements?: readonly Node[];
}

function fileMeta(syntax: string, options: MetaOptions = {}): Buffer {
  const le: Layout = { explicit: true, littleEndian: true };
  const elements: readonly Node[] = options.elements ?? [
    { tag: 0x00020001, vr: 'OB', value: Uint8Array.of(0, 1) },
    { tag: 0x00020002, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.2' },
    { tag: 0x00020003, vr: 'UI', value: '1.2.826.0.1.3680043.10.1234.1' },
    { tag: 0x00020010, vr: 'UI', value: syntax },
    { tag: 0x00020012, vr: 'UI', value: '1.2.826.0.1.3680043.10.1234' },
  ];
  const body = encodeDataSet(elements, le).bytes;
  const groupLength =
    options.groupLength === false
      ? Buffer.alloc(0)
      : encodeNode({ tag: 0x00020000, vr: 'UL', value: u32(body.length, true) }, le);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), groupLength, body]);
}

interface Part10 {
  readonly bytes: Buffer;
  /** Length of preamble, prefix and File Meta group: the data set's offset in the file. */
  readonly metaLength: number;
  /** File lengths at which the file ends cleanly after a top-level element (not for deflated). */
  readonly ends: readonly number[];
}

function part10(nodes: readonly Node[], syntax = EXPLICIT_LE, options: MetaOptions & { pad?: boolean } = {}): Part10 {
  const meta = fileMeta(syntax, options);
  const dataSet = encodeDataSet(nodes, layoutOf(syntax));
  if (syntax === DEFLATED) {
    let deflated = deflateRawSync(dataSet.bytes);
    if (options.pad && deflated.length % 2 === 1) deflated = Buffer.concat([deflated, Buffer.alloc(1)]);
    return { bytes: Buffer.concat([meta, deflated]), metaLength: meta.length, ends: [] };
  }
  return {
    bytes: Buffer.concat([meta, dataSet.bytes]),
    metaLength: meta.length,
    ends: dataSet.ends.map((end) => meta.length + end),
  };
}

/** The encoded length of nodes, to know where a later one starts. */
function sizeOf(nodes: readonly Node[], syntax = EXPLICIT_LE): number {
  return encodeDataSet(nodes, layoutOf(syntax)).bytes.length;
}

const text = (tag: number, vr: string, value: string): Plain => ({ tag, vr, value });
const bytes = (tag: number, vr: string, length: number, fill = 0x5a): Plain => ({
  tag,
  vr,
  value: Buffer.alloc(length, fill),
});
const raw = (...parts: Buffer[]): Raw => ({ raw: Buffer.concat(parts) });
const PN = text(0x00100010, 'PN', 'Doe^Jane');
const LO = text(0x00100020, 'LO', 'PID-1');

/** A data set with every structure the validator walks, valid in `syntax`. */
function richDataSet(syntax: string): Node[] {
  const explicit = syntax !== IMPLICIT_LE;
  const encapsulated = syntax === JPEG_BASELINE || syntax === RLE;
  const nested = (depth: number): Item[] => [
    {
      elements: [
        text(0x0040a040, 'CS', 'CONTAINER'),
        ...(depth > 0
          ? [{ tag: 0x0040a730, vr: 'SQ' as const, items: nested(depth - 1), defined: depth % 2 === 0 }]
          : []),
      ],
      defined: depth % 2 === 1,
    },
  ];
  const nodes: Node[] = [
    text(0x00080005, 'CS', 'ISO_IR 100'),
    text(0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.2'),
    text(0x00080018, 'UI', '1.2.826.0.1.3680043.10.1234.1'),
    // Undefined-length sequence: an undefined-length item and a defined-length one.
    {
      tag: 0x00081140,
      vr: 'SQ',
      items: [
        { elements: [text(0x00081150, 'UI', '1.2.3'), text(0x00081155, 'UI', '1.2.3.4')] },
        { elements: [text(0x00081150, 'UI', '1.2.3'), text(0x00081155, 'UI', '1.2.3.5')], defined: true },
      ],
    },
    // Defined-length sequence with empty items of both kinds, and empty sequences of both kinds.
    { tag: 0x00081115, vr: 'SQ', items: [{ elements: [], defined: true }, { elements: [] }], defined: true },
    { tag: 0x00081120, vr: 'SQ', items: [], defined: true },
    { tag: 0x00081125, vr: 'SQ', items: [] },
    PN,
    LO,
    text(0x00100030, 'DA', ''),
    // Nesting seven deep, alternating defined and undefined lengths.
    { tag: 0x0040a730, vr: 'SQ', items: nested(6) },
    // Private block: every long VR, then a 32-bit length just past the 16-bit range.
    text(0x00290010, 'LO', 'STRUCTURE TEST'),
    bytes(0x00291001, 'OB', 3),
    bytes(0x00291002, 'OD', 16),
    bytes(0x00291003, 'OF', 8),
    bytes(0x00291004, 'OL', 8),
    bytes(0x00291005, 'OV', 16),
    bytes(0x00291006, 'OW', 4),
    bytes(0x00291007, 'SV', 8),
    bytes(0x00291008, 'UV', 8),
    text(0x00291009, 'UC', 'unlimited characters'),
    text(0x0029100a, 'UR', 'https://example.com/'),
    text(0x0029100b, 'UT', 'unlimited text'),
    bytes(0x0029100c, 'UN', 6),
    bytes(0x0029100d, 'OB', 0x10004),
  ];
  if (explicit) {
    // A UN of undefined length: a sequence in implicit VR little endian, nesting included.
    nodes.push({
      tag: 0x00291010,
      vr: 'UN',
      items: [
        {
          elements: [
            text(0x00291011, 'LO', 'inside UN'),
            { tag: 0x00291012, vr: 'SQ', items: [{ elements: [text(0x00291013, 'LO', 'deeper')] }] },
          ],
        },
      ],
    });
  }
  nodes.push(text(0x00280010, 'US', '\u0002\u0000'), text(0x00280011, 'US', '\u0002\u0000'));
  if (encapsulated) {
    nodes.push({ tag: PIXEL_DATA, vr: 'OB', fragments: [new Uint8Array(0), Buffer.alloc(10, 1), Buffer.alloc(6, 2)] });
  } else {
    nodes.push(bytes(PIXEL_DATA, 'OW', 8));
  }
  // After the pixel data: Digital Signatures Sequence and Data Set Trailing Padding.
  nodes.push(
    { tag: 0xfffafffa, vr: 'SQ', items: [{ elements: [text(0x04000100, 'UI', '1.2.3.4.5')] }] },
    bytes(0xfffcfffc, 'OB', 4, 0),
  );
  return nodes;
}

// Feeding.

type Chunking = number | 'whole' | { readonly seed: number; readonly max: number };

function chunks(file: Uint8Array, chunking: Chunking): Uint8Array[] {
  if (chunking === 'whole') return [file];
  const pieces: Uint8Array[] = [];
  if (typeof chunking === 'number') {
    for (let i = 0; i < file.length; i += chunking) pieces.push(file.subarray(i, i + chunking));
    return pieces;
  }
  let state = chunking.seed >>> 0;
  for (let i = 0; i < file.length;) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const size = 1 + (state % chunking.max);
    pieces.push(file.subarray(i, i + size));
    i += size;
  }
  return pieces;
}

const CHUNKINGS: readonly Chunking[] = [
  'whole',
  1,
  2,
  3,
  5,
  7,
  12,
  13,
  4096,
  { seed: 1, max: 64 },
  { seed: 2, max: 1000 },
];

/** What push and end return for a file that is not deflated: undefined, for they are synchronous. */
function sync(result: void | Promise<void>): void {
  if (result !== undefined) throw new Error('The validator returned a promise for a file that is not deflated.');
}

/**
 * The StructureError the validator throws for `file`, or undefined when it accepts it. For every
 * transfer syntax but deflated the validator is synchronous: this asserts that push and end return
 * undefined (and so fails for a deflated file; use validateAsync).
 */
function check(file: Uint8Array, chunking: Chunking = 'whole', options?: StructureValidatorOptions) {
  const validator = new DicomStructureValidator(options);
  try {
    for (const piece of chunks(file, chunking)) sync(validator.push(piece));
    sync(validator.end());
    return undefined;
  } catch (error) {
    if (error instanceof StructureError) return error;
    throw error;
  }
}

/** As check, awaiting push and end, for deflated files (and any other). */
async function validateAsync(
  file: Uint8Array,
  chunking: Chunking = 'whole',
  options?: StructureValidatorOptions,
): Promise<StructureError | undefined> {
  const validator = new DicomStructureValidator(options);
  try {
    for (const piece of chunks(file, chunking)) await validator.push(piece);
    await validator.end();
    return undefined;
  } catch (error) {
    if (error instanceof StructureError) return error;
    throw error;
  }
}

const REJECT_CHUNKINGS = [1, 5, { seed: 3, max: 100 }] as const;

/** Asserts `file` is rejected the same way however it is chunked, and returns the error. */
function rejects(file: Uint8Array, options?: StructureValidatorOptions): StructureError {
  const error = check(file, 'whole', options);
  expect(error, 'the file should be rejected').toBeInstanceOf(StructureError);
  if (error === undefined) throw new Error('unreachable');
  for (const chunking of REJECT_CHUNKINGS) expect(check(file, chunking, options)?.message).toBe(error.message);
  return error;
}

async function rejectsAsync(file: Uint8Array, options?: StructureValidatorOptions): Promise<StructureError> {
  const error = await validateAsync(file, 'whole', options);
  expect(error, 'the file should be rejected').toBeInstanceOf(StructureError);
  if (error === undefined) throw new Error('unreachable');
  for (const chunking of REJECT_CHUNKINGS) {
    expect((await validateAsync(file, chunking, options))?.message).toBe(error.message);
  }
  return error;
}

function accepts(file: Uint8Array, chunkings: readonly Chunking[] = CHUNKINGS): void {
  for (const chunking of chunkings) {
    const error = check(file, chunking);
    expect(error?.message, `chunking ${JSON.stringify(chunking)}`).toBeUndefined();
  }
}

async function acceptsAsync(file: Uint8Array, chunkings: readonly Chunking[] = CHUNKINGS): Promise<void> {
  for (const chunking of chunkings) {
    const error = await validateAsync(file, chunking);
    expect(error?.message, `chunking ${JSON.stringify(chunking)}`).toBeUndefined();
  }
}

/** A file in `syntax`, checked synchronously unless it is deflated. */
async function checkIn(syntax: string, file: Uint8Array, chunking: Chunking = 'whole') {
  return syntax === DEFLATED ? validateAsync(file, chunking) : check(file, chunking);
}

async function acceptsIn(syntax: string, file: Uint8Array, chunkings: readonly Chunking[] = CHUNKINGS) {
  if (syntax === DEFLATED) await acceptsAsync(file, chunkings);
  else accepts(file, chunkings);
}

/** Whether the validator throws while the chunks are pushed (not only at the end). */
function throwsDuringPush(file: Uint8Array): boolean {
  const validator = new DicomStructureValidator();
  try {
    sync(validator.push(file));
  } catch (error) {
    if (error instanceof StructureError) return true;
    throw error;
  }
  return false;
}

/**
 * Whether a push rejects before end() is called, for a deflated file: the whole file is pushed, then
 * empty chunks while the threadpool inflates it (zlib reports errors after the push that caused them
 * has resolved, unless it was waiting for the inflater to drain).
 */
async function rejectsBeforeEnd(file: Uint8Array): Promise<boolean> {
  const validator = new DicomStructureValidator();
  try {
    await validator.push(file);
    for (let wait = 0; wait < 200; wait += 1) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      await validator.push(new Uint8Array(0));
    }
  } catch (error) {
    if (error instanceof StructureError) return true;
    throw error;
  }
  return false;
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const piece of source) parts.push(piece);
  return Buffer.concat(parts);
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  await Promise.resolve();
  yield bytes;
}

function fixtureFiles(): { name: string; bytes: Buffer }[] {
  return ['azure-samples', 'charsets'].flatMap((folder) =>
    readdirSync(join(FIXTURES, folder))
      .filter((name) => name.endsWith('.dcm'))
      .map((name) => ({ name: `${folder}/${name}`, bytes: readFileSync(join(FIXTURES, folder, name)) })),
  );
}

describe('DicomStructureValidator: valid files', () => {
  for (const syntax of SYNTAXES) {
    it(`accepts a data set with every structure in ${NAMES[syntax] ?? syntax}, however it is chunked`, async () => {
      await acceptsIn(syntax, part10(richDataSet(syntax), syntax).bytes);
    });
  }

  it('accepts the files the test builder writes, in every transfer syntax, as dicom-parser does', async () => {
    for (const transferSyntax of SYNTAXES) {
      const encapsulated = transferSyntax === JPEG_BASELINE || transferSyntax === RLE;
      const file = buildInstance({
        ...newInstanceUids(),
        transferSyntax,
        ...(encapsulated ? { fragments: [Buffer.alloc(100, 1), Buffer.alloc(51, 2)] } : { pixelBytes: 5000 }),
      });
      expect(() => dicomParser.parseDicom(file)).not.toThrow();
      await acceptsIn(transferSyntax, file, ['whole', 1, 7, { seed: 4, max: 300 }]);
    }
  });

  it('accepts the sample files, as dicom-parser does', () => {
    const files = fixtureFiles();
    expect(files.length).toBeGreaterThanOrEqual(20);
    for (const { name, bytes: file } of files) {
      expect(() => dicomParser.parseDicom(file), name).not.toThrow();
      const small = file.length < 100_000;
      for (const chunking of small ? CHUNKINGS : (['whole', 3, 65536, { seed: 5, max: 1 << 20 }] as const)) {
        expect(check(file, chunking)?.message, `${name} ${JSON.stringify(chunking)}`).toBeUndefined();
      }
    }
  });

  it('accepts the sample files transcoded to implicit VR, big endian and deflated', async () => {
    for (const { name, bytes: file } of fixtureFiles().filter(({ bytes: file }) => file.length < 100_000)) {
      for (const to of [IMPLICIT_LE, EXPLICIT_BE, DEFLATED]) {
        const transcoded = await collect(transcode(once(file), EXPLICIT_LE, to));
        expect(() => dicomParser.parseDicom(transcoded), `${name} → ${to}`).not.toThrow();
        expect((await checkIn(to, transcoded, 1))?.message, `${name} → ${to}`).toBeUndefined();
        expect((await checkIn(to, transcoded, { seed: 6, max: 50 }))?.message, `${name} → ${to}`).toBeUndefined();
      }
    }
  });

  it('accepts large values in 4 MiB chunks and in 1 MiB chunks', () => {
    const file = part10([PN, bytes(PIXEL_DATA, 'OW', 10 * 1024 * 1024 + 2)]).bytes;
    accepts(file, [4 * 1024 * 1024, 1024 * 1024, 'whole']);
  });

  it('accepts a File Meta group without a group length', async () => {
    accepts(part10(richDataSet(EXPLICIT_LE), EXPLICIT_LE, { groupLength: false }).bytes);
    await acceptsAsync(part10(richDataSet(DEFLATED), DEFLATED, { groupLength: false }).bytes);
  });

  it('accepts a deflated data set padded to even length with one 00H byte', async () => {
    const padded = part10(richDataSet(DEFLATED), DEFLATED, { pad: true }).bytes;
    const plain = part10(richDataSet(DEFLATED), DEFLATED).bytes;
    expect(padded.length).toBeGreaterThanOrEqual(plain.length);
    await acceptsAsync(padded);
    await acceptsAsync(Buffer.concat([plain, Buffer.alloc(1)]));
  });

  it('accepts 64 nested sequences by default, and takes a different bound', () => {
    expect(check(part10([deepSequence(64)]).bytes)).toBeUndefined();
    expect(check(part10([deepSequence(65)]).bytes, 'whole', { maxDepth: 65 })).toBeUndefined();
    expect(check(part10([deepSequence(4)]).bytes, 'whole', { maxDepth: 3 })?.message).toMatch(/more than 3 sequences/);
    expect(() => new DicomStructureValidator({ maxDepth: 0 })).toThrow(RangeError);
  });

  it('refuses a VR DICOM does not define: its length form is ambiguous (dcmtk reads 32 bits, dicom-parser 16)', () => {
    for (const file of [
      part10([PN, bytes(0x00291001, 'ZZ', 0x10000)]).bytes,
      part10([PN, { ...bytes(0x00291001, 'LB', 4), shortLength: true }, LO]).bytes,
    ]) {
      const error = rejects(file);
      expect(error).toBeInstanceOf(StructureError);
      expect(error.message).toMatch(/invalid VR .*two-letter codes PS3.5 defines/);
    }
  });

  it('does not check tag order, odd lengths, or an implicit VR value that does not start with an item', () => {
    accepts(part10([LO, PN, text(0x00080018, 'UI', '1.2.3')]).bytes, ['whole', 1]);
    accepts(part10([{ tag: 0x00100010, vr: 'PN', value: Buffer.from('ABC') }, LO]).bytes, ['whole', 1]);
    // Implicit VR: a defined-length value that does not start with an item is opaque; its bytes must be there.
    const opaque = raw(header(0x00081140, 'SQ', 6, IMPLICIT), Buffer.from('GARBAG'));
    accepts(part10([opaque, PN], IMPLICIT_LE).bytes, ['whole', 1]);
  });

  it('walks encapsulated Pixel Data in implicit VR and undefined-length OB/OW elsewhere as fragments', () => {
    const pixel: Encapsulated = { tag: PIXEL_DATA, vr: 'OB', fragments: [Buffer.alloc(4)] };
    accepts(part10([PN, pixel], IMPLICIT_LE).bytes, ['whole', 1]);
    accepts(part10([PN, { tag: 0x00291001, vr: 'OW', fragments: [Buffer.alloc(2)] }, pixel]).bytes, ['whole', 1]);
  });

  it('reads an item and delimiters of a UN sequence in little endian inside a big endian file', () => {
    const un: Sequence = { tag: 0x00291010, vr: 'UN', items: [{ elements: [text(0x00291011, 'LO', 'x')] }] };
    accepts(part10([PN, un, LO], EXPLICIT_BE).bytes, ['whole', 1]);
  });
});

/** Sequences nested `depth` deep, each in the one item of the one above. */
function deepSequence(depth: number, vr: 'SQ' | 'UN' = 'SQ'): Sequence {
  let node: Sequence = { tag: 0x0040a730, vr, items: [{ elements: [text(0x0040a040, 'CS', 'TEXT')] }] };
  for (let level = 1; level < depth; level += 1) node = { tag: 0x0040a730, vr, items: [{ elements: [node] }] };
  return node;
}

describe('DicomStructureValidator: truncation', () => {
  for (const syntax of SYNTAXES) {
    it(`rejects every proper prefix of a ${NAMES[syntax] ?? syntax} file except top-level element boundaries`, async () => {
      // Without the one value longer than 64 KiB, so that there are only a few thousand prefixes.
      const nodes = richDataSet(syntax).filter((node) => !('tag' in node) || node.tag !== 0x0029100d);
      const file = part10(nodes, syntax);
      const valid = new Set([...file.ends, file.bytes.length]);
      if (syntax === DEFLATED) expect(valid.size).toBe(1);
      for (let length = 0; length <= file.bytes.length; length += 1) {
        const prefix = file.bytes.subarray(0, length);
        const error = await checkIn(syntax, prefix);
        if (valid.has(length)) expect(error?.message, `prefix of ${length} bytes`).toBeUndefined();
        else expect(error, `prefix of ${length} bytes`).toBeInstanceOf(StructureError);
      }
      // Chunked prefixes reach the same verdicts (a sample: every 7th length, in 5-byte chunks).
      for (let length = 0; length <= file.bytes.length; length += 7) {
        const error = await checkIn(syntax, file.bytes.subarray(0, length), 5);
        expect(error === undefined, `prefix of ${length} bytes in 5-byte chunks`).toBe(valid.has(length));
      }
    });
  }

  it('rejects every proper prefix of a file whose data set is one sequence', () => {
    const file = part10([deepSequence(5)], EXPLICIT_LE).bytes;
    for (let length = 0; length < file.length; length += 1) {
      expect(check(file.subarray(0, length)), `prefix of ${length} bytes`).toBeInstanceOf(StructureError);
    }
    expect(check(file)).toBeUndefined();
  });

  it('says where a truncated value starts, how long it was declared and how much arrived', () => {
    for (const syntax of [EXPLICIT_LE, IMPLICIT_LE, EXPLICIT_BE]) {
      const { bytes: file, metaLength } = part10(
        [PN, raw(header(PIXEL_DATA, 'OW', 0xfffffff0, layoutOf(syntax)), Buffer.alloc(1000))],
        syntax,
      );
      const at = metaLength + sizeOf([PN], syntax);
      const error = rejects(file);
      expect(error.message).toBe(
        `The data set ends inside the value of (7FE0,0010) at byte ${at}: 4294967280 bytes declared, 1000 present.`,
      );
      expect(error.offset).toBe(at);
      expect(error.tag).toBe('(7FE0,0010)');
    }
  });

  it('says where a truncated element header starts', () => {
    const { bytes: file, metaLength } = part10([PN, LO]);
    const at = metaLength + sizeOf([PN]);
    const error = rejects(file.subarray(0, at + 5));
    expect(error.message).toBe(
      `The data set ends inside the header of (0010,0020) at byte ${at}: 5 of its bytes present.`,
    );
    expect(rejects(file.subarray(0, at + 3)).message).toBe(
      `The data set ends inside an element header at byte ${at}: 3 of its bytes present.`,
    );
  });

  it('rejects a file that ends inside the preamble, the File Meta group, or right after it', () => {
    const { bytes: file, metaLength } = part10([PN]);
    expect(rejects(file.subarray(0, 100)).message).toMatch(/before the 128-byte preamble and "DICM" prefix/);
    expect(rejects(file.subarray(0, 150)).message).toMatch(
      /inside the value of \(0002,0000\)|inside the header of a File Meta/,
    );
    expect(rejects(file.subarray(0, metaLength - 20)).message).toMatch(/File Meta group|value of \(0002,/);
    const empty = rejects(file.subarray(0, metaLength));
    expect(empty.message).toBe(
      `The file has no data set: it ends at byte ${metaLength}, where the data set should start.`,
    );
  });

  it('rejects a deflated file cut short, saying where the compressed stream stops', async () => {
    const { bytes: file, metaLength } = part10(richDataSet(DEFLATED), DEFLATED);
    const cut = file.subarray(0, file.length - 3);
    const error = await rejectsAsync(cut);
    expect(error.message).toBe(
      `The deflated data set ends early: the compressed stream is cut short at byte ${cut.length} of the file.`,
    );
    expect(error.offset).toBe(cut.length);
    expect(error.tag).toBeUndefined();
    expect((await rejectsAsync(file.subarray(0, metaLength))).message).toBe(
      `The deflated data set ends early: the compressed stream is cut short at byte ${metaLength} of the file.`,
    );
  });

  it('rejects a deflated file whose inflated data set is itself truncated', async () => {
    const meta = fileMeta(DEFLATED);
    const dataSet = encodeDataSet([PN, bytes(PIXEL_DATA, 'OW', 100)], layoutOf(EXPLICIT_LE)).bytes;
    const file = Buffer.concat([meta, deflateRawSync(dataSet.subarray(0, dataSet.length - 10))]);
    const at = sizeOf([PN]);
    const error = await rejectsAsync(file);
    expect(error.message).toBe(
      `The data set ends inside the value of (7FE0,0010) at byte ${at} of the inflated data set: 100 bytes declared, 90 present.`,
    );
    expect(error.offset).toBe(at);
    expect(error.tag).toBe('(7FE0,0010)');
  });
});

describe('DicomStructureValidator: broken nesting', () => {
  const sequenceTag = 0x00081140;

  it('rejects a value that runs past the end of its defined-length item', () => {
    const item = raw(
      header(sequenceTag, 'SQ', UNDEFINED, layoutOf(EXPLICIT_LE)),
      marker(ITEM, 12, IMPLICIT),
      header(0x00081150, 'UI', 8, layoutOf(EXPLICIT_LE)),
      Buffer.from('1.2.3.4\0'),
      marker(SEQUENCE_DELIMITER, 0, IMPLICIT),
    );
    const { bytes: file, metaLength } = part10([PN, item, LO]);
    const itemAt = metaLength + sizeOf([PN]) + 12;
    const error = rejects(file);
    expect(error.message).toBe(
      `The value of (0008,1150) at byte ${itemAt + 8} (8 bytes) runs past the end of an item of sequence ` +
        `(0008,1140) at byte ${itemAt + 8 + 12}.`,
    );
    expect(error.offset).toBe(itemAt + 8);
    expect(error.tag).toBe('(0008,1150)');
    expect(throwsDuringPush(file)).toBe(true);
  });

  it('rejects an item that runs past the end of its defined-length sequence', () => {
    const body = encodeDataSet([text(0x00081150, 'UI', '1.2.3')], layoutOf(EXPLICIT_LE)).bytes;
    const sequence = raw(
      header(sequenceTag, 'SQ', 8 + body.length - 2, layoutOf(EXPLICIT_LE)),
      marker(ITEM, body.length, IMPLICIT),
      body,
    );
    const { bytes: file, metaLength } = part10([PN, sequence, LO]);
    const at = metaLength + sizeOf([PN]);
    expect(rejects(file).message).toBe(
      `An item (FFFE,E000) of (0008,1140) at byte ${at + 12} (${body.length} bytes) runs past the end of sequence (0008,1140) ` +
        `at byte ${at + 12 + 8 + body.length - 2}.`,
    );
  });

  it('rejects a defined-length item that claims more bytes than it holds', () => {
    const body = encodeDataSet([text(0x00081150, 'UI', '1.2.3')], layoutOf(EXPLICIT_LE)).bytes;
    const sequence = raw(
      header(sequenceTag, 'SQ', UNDEFINED, layoutOf(EXPLICIT_LE)),
      marker(ITEM, body.length + 8, IMPLICIT),
      body,
      marker(SEQUENCE_DELIMITER, 0, IMPLICIT),
    );
    const { bytes: file, metaLength } = part10([PN, sequence, LO]);
    const at = metaLength + sizeOf([PN]) + 12 + 8 + body.length;
    expect(rejects(file).message).toBe(
      `Unexpected sequence delimiter (FFFE,E0DD) at byte ${at} in an item of sequence (0008,1140), where it closes nothing.`,
    );
  });

  it('rejects an item header that runs past the end of a defined-length item', () => {
    const body = encodeDataSet([text(0x00081150, 'UI', '1.2.3')], layoutOf(EXPLICIT_LE)).bytes;
    const sequence = raw(
      header(sequenceTag, 'SQ', UNDEFINED, layoutOf(EXPLICIT_LE)),
      marker(ITEM, body.length + 4, IMPLICIT),
      body,
      marker(SEQUENCE_DELIMITER, 0, IMPLICIT),
    );
    const { bytes: file, metaLength } = part10([PN, sequence, LO]);
    const itemAt = metaLength + sizeOf([PN]) + 12;
    const at = itemAt + 8 + body.length;
    expect(rejects(file).message).toBe(
      `The header of (FFFE,E0DD) at byte ${at} runs past the end of an item of sequence (0008,1140) at byte ${at + 4}.`,
    );
  });

  it('rejects a defined-length sequence that claims more bytes than its items', () => {
    const body = encodeDataSet([text(0x00081150, 'UI', '1.2.3')], layoutOf(EXPLICIT_LE)).bytes;
    const sequence = raw(
      header(sequenceTag, 'SQ', 8 + body.length + 6, layoutOf(EXPLICIT_LE)),
      marker(ITEM, body.length, IMPLICIT),
      body,
    );
    const { bytes: file, metaLength } = part10([PN, sequence, LO, text(0x00100030, 'DA', '20240101')]);
    const at = metaLength + sizeOf([PN]) + 12 + 8 + body.length;
    expect(rejects(file).message).toBe(
      `Sequence (0008,1140) holds (0010,0020) at byte ${at}, where an item (FFFE,E000) or the sequence ` +
        'delimiter (FFFE,E0DD) was expected.',
    );
  });

  it('rejects a value that stops short of its defined-length item end at the end of the file', () => {
    const body = encodeDataSet([text(0x00081150, 'UI', '1.2.3')], layoutOf(EXPLICIT_LE)).bytes;
    const sequence = raw(
      header(sequenceTag, 'SQ', 8 + body.length + 10, layoutOf(EXPLICIT_LE)),
      marker(ITEM, body.length + 10, IMPLICIT),
      body,
    );
    const { bytes: file, metaLength } = part10([PN, sequence]);
    const itemAt = metaLength + sizeOf([PN]) + 12;
    expect(rejects(file).message).toBe(
      `The data set ends inside an item of sequence (0008,1140), which starts at byte ${itemAt}: ` +
        `${body.length + 10} bytes declared, ${body.length} present.`,
    );
  });

  it('rejects sequences and items left open at the end of the file', () => {
    const open = raw(header(sequenceTag, 'SQ', UNDEFINED, layoutOf(EXPLICIT_LE)), marker(ITEM, UNDEFINED, IMPLICIT));
    const { bytes: file, metaLength } = part10([PN, open, PN]);
    const at = metaLength + sizeOf([PN]);
    expect(rejects(file).message).toBe(
      `The data set ends inside an item of sequence (0008,1140), which starts at byte ${at + 12}: ` +
        'its item delimiter (FFFE,E00D) is missing.',
    );
    const openSequence = raw(
      header(sequenceTag, 'SQ', UNDEFINED, layoutOf(EXPLICIT_LE)),
      marker(ITEM, UNDEFINED, IMPLICIT),
      marker(ITEM_DELIMITER, 0, IMPLICIT),
    );
    const error = rejects(part10([PN, openSequence]).bytes);
    expect(error.message).toBe(
      `The data set ends inside sequence (0008,1140), which starts at byte ${at}: ` +
        'its sequence delimiter (FFFE,E0DD) is missing.',
    );
    expect(error.offset).toBe(at);
    expect(error.tag).toBe('(0008,1140)');
  });

  it('rejects delimiters that close nothing', () => {
    const { metaLength } = part10([PN]);
    const at = metaLength + sizeOf([PN]);
    const stray = (tag: number) => part10([PN, raw(marker(tag, 0, IMPLICIT)), LO]).bytes;
    expect(rejects(stray(ITEM_DELIMITER)).message).toBe(
      `Unexpected item delimiter (FFFE,E00D) at byte ${at} in the data set, where it closes nothing.`,
    );
    expect(rejects(stray(SEQUENCE_DELIMITER)).message).toBe(
      `Unexpected sequence delimiter (FFFE,E0DD) at byte ${at} in the data set, where it closes nothing.`,
    );
    expect(rejects(stray(ITEM)).message).toBe(
      `Unexpected item (FFFE,E000) at byte ${at} in the data set: items belong in a sequence.`,
    );
    expect(rejects(stray(0xfffe1234)).message).toBe(
      `Unexpected (FFFE,1234) at byte ${at} in the data set: group FFFE holds only items and delimiters.`,
    );
    expect(throwsDuringPush(stray(ITEM_DELIMITER))).toBe(true);
    // An item delimiter directly in a sequence.
    const inSequence = raw(
      header(sequenceTag, 'SQ', UNDEFINED, layoutOf(EXPLICIT_LE)),
      marker(ITEM_DELIMITER, 0, IMPLICIT),
      marker(SEQUENCE_DELIMITER, 0, IMPLICIT),
    );
    expect(rejects(part10([PN, inSequence]).bytes).message).toBe(
      `Unexpected item delimiter (FFFE,E00D) at byte ${at + 12} in sequence (0008,1140), where it closes nothing.`,
    );
  });

  it('rejects delimiters inside defined-length sequences and items', () => {
    const { metaLength } = part10([PN]);
    const at = metaLength + sizeOf([PN]);
    const inDefinedSequence = raw(
      header(sequenceTag, 'SQ', 8, layoutOf(EXPLICIT_LE)),
      marker(SEQUENCE_DELIMITER, 0, IMPLICIT),
    );
    expect(rejects(part10([PN, inDefinedSequence]).bytes).message).toBe(
      `Unexpected sequence delimiter (FFFE,E0DD) at byte ${at + 12} in sequence (0008,1140), which has a defined length.`,
    );
    const inDefinedItem = raw(
      header(sequenceTag, 'SQ', UNDEFINED, layoutOf(EXPLICIT_LE)),
      marker(ITEM, 8, IMPLICIT),
      marker(ITEM_DELIMITER, 0, IMPLICIT),
      marker(SEQUENCE_DELIMITER, 0, IMPLICIT),
    );
    expect(rejects(part10([PN, inDefinedItem]).bytes).message).toBe(
      `Unexpected item delimiter (FFFE,E00D) at byte ${at + 20} in an item of sequence (0008,1140), ` +
        'which has a defined length.',
    );
  });

  it('rejects delimiters with a nonzero length', () => {
    const { metaLength } = part10([PN]);
    const at = metaLength + sizeOf([PN]);
    const itemDelimiter = raw(
      header(sequenceTag, 'SQ', UNDEFINED, layoutOf(EXPLICIT_LE)),
      marker(ITEM, UNDEFINED, IMPLICIT),
      marker(ITEM_DELIMITER, 4, IMPLICIT),
      Buffer.alloc(4),
      marker(SEQUENCE_DELIMITER, 0, IMPLICIT),
    );
    expect(rejects(part10([PN, itemDelimiter]).bytes).message).toBe(
      `The item delimiter (FFFE,E00D) at byte ${at + 20} has length 4; it must be 0.`,
    );
    const sequenceDelimiter = raw(
      header(sequenceTag, 'SQ', UNDEFINED, layoutOf(EXPLICIT_LE)),
      marker(SEQUENCE_DELIMITER, 2, IMPLICIT),
    );
    expect(rejects(part10([PN, sequenceDelimiter, LO]).bytes).message).toBe(
      `The sequence delimiter (FFFE,E0DD) at byte ${at + 12} has length 2; it must be 0.`,
    );
    const fragments = raw(
      header(PIXEL_DATA, 'OB', UNDEFINED, layoutOf(EXPLICIT_LE)),
      marker(ITEM, 0, IMPLICIT),
      marker(SEQUENCE_DELIMITER, 8, IMPLICIT),
    );
    expect(rejects(part10([PN, fragments]).bytes).message).toBe(
      `The sequence delimiter (FFFE,E0DD) at byte ${at + 20} has length 8; it must be 0.`,
    );
  });

  it('rejects an element where an item belongs', () => {
    const { metaLength } = part10([PN]);
    const at = metaLength + sizeOf([PN]);
    const sequence = raw(
      header(sequenceTag, 'SQ', UNDEFINED, layoutOf(EXPLICIT_LE)),
      encodeNode(LO, layoutOf(EXPLICIT_LE)),
    );
    expect(rejects(part10([PN, sequence]).bytes).message).toBe(
      `Sequence (0008,1140) holds (0010,0020) at byte ${at + 12}, where an item (FFFE,E000) or the sequence ` +
        'delimiter (FFFE,E0DD) was expected.',
    );
  });

  it('rejects 500 nested sequences as soon as the 65th opens, in every encoding', async () => {
    for (const syntax of [EXPLICIT_LE, IMPLICIT_LE, EXPLICIT_BE, DEFLATED]) {
      const { bytes: file, metaLength } = part10([PN, deepSequence(500)], syntax);
      const error = syntax === DEFLATED ? await rejectsAsync(file) : rejects(file);
      // Each level is a sequence header and an undefined-length item header (8 bytes in implicit VR).
      const level = (syntax === IMPLICIT_LE ? 8 : 12) + 8;
      const at = (syntax === DEFLATED ? 0 : metaLength) + sizeOf([PN], syntax) + 64 * level;
      const where = syntax === DEFLATED ? `byte ${at} of the inflated data set` : `byte ${at}`;
      expect(error.message).toBe(`Sequence (0040,A730) at ${where} is nested more than 64 sequences deep.`);
      expect(error.offset).toBe(at);
      expect(syntax === DEFLATED ? await rejectsBeforeEnd(file) : throwsDuringPush(file)).toBe(true);
    }
    // UN sequences of undefined length nest too (their insides are implicit VR).
    expect(rejects(part10([deepSequence(500, 'UN')]).bytes).message).toMatch(/nested more than 64 sequences deep/);
  });
});

describe('DicomStructureValidator: encapsulated Pixel Data', () => {
  const pixelHeader = header(PIXEL_DATA, 'OB', UNDEFINED, layoutOf(JPEG_BASELINE));

  it('rejects encapsulated Pixel Data without its sequence delimiter', () => {
    const pixel = raw(pixelHeader, marker(ITEM, 0, IMPLICIT), marker(ITEM, 4, IMPLICIT), Buffer.alloc(4));
    const { bytes: file, metaLength } = part10([PN, pixel], JPEG_BASELINE);
    const at = metaLength + sizeOf([PN]);
    const error = rejects(file);
    expect(error.message).toBe(
      `The data set ends inside the encapsulated value of (7FE0,0010), which starts at byte ${at}: ` +
        'its sequence delimiter (FFFE,E0DD) is missing.',
    );
    expect(error.tag).toBe('(7FE0,0010)');
  });

  it('rejects a fragment of undefined length, a truncated fragment and an element among the fragments', () => {
    const { metaLength } = part10([PN], JPEG_BASELINE);
    const at = metaLength + sizeOf([PN]);
    const undefinedFragment = raw(
      pixelHeader,
      marker(ITEM, UNDEFINED, IMPLICIT),
      marker(SEQUENCE_DELIMITER, 0, IMPLICIT),
    );
    expect(rejects(part10([PN, undefinedFragment], JPEG_BASELINE).bytes).message).toBe(
      `A fragment (FFFE,E000) of (7FE0,0010) at byte ${at + 12} has undefined length; fragments must have a defined length.`,
    );
    const truncated = raw(pixelHeader, marker(ITEM, 0, IMPLICIT), marker(ITEM, 100, IMPLICIT), Buffer.alloc(10));
    expect(rejects(part10([PN, truncated], JPEG_BASELINE).bytes).message).toBe(
      `The data set ends inside the value of a fragment (FFFE,E000) of (7FE0,0010) at byte ${at + 20}: ` +
        '100 bytes declared, 10 present.',
    );
    const element = raw(
      pixelHeader,
      marker(ITEM, 0, IMPLICIT),
      encodeNode(bytes(0xfffcfffc, 'OB', 2), layoutOf(EXPLICIT_LE)),
    );
    expect(rejects(part10([PN, element], JPEG_BASELINE).bytes).message).toBe(
      `The encapsulated value of (7FE0,0010) holds (FFFC,FFFC) at byte ${at + 20}, where an item (FFFE,E000) ` +
        'or the sequence delimiter (FFFE,E0DD) was expected.',
    );
  });

  it('rejects undefined length on a VR that does not allow it', () => {
    const { metaLength } = part10([PN]);
    const at = metaLength + sizeOf([PN]);
    const ut = raw(header(0x00181030, 'UT', UNDEFINED, layoutOf(EXPLICIT_LE)), marker(SEQUENCE_DELIMITER, 0, IMPLICIT));
    expect(rejects(part10([PN, ut]).bytes).message).toBe(
      `The element (0018,1030) at byte ${at} has undefined length, which VR UT does not allow.`,
    );
  });
});

describe('DicomStructureValidator: element headers', () => {
  it('rejects a VR that is not two uppercase letters, while the chunks are pushed', () => {
    const { bytes: file, metaLength } = part10([PN, { tag: 0x00100020, vr: 'lo', value: 'PID-1 ', shortLength: true }]);
    const at = metaLength + sizeOf([PN]);
    expect(rejects(file).message).toBe(
      `The element (0010,0020) at byte ${at} has an invalid VR (bytes 6C 6F); a VR is one of the two-letter codes PS3.5 defines. ` +
        'Is the transfer syntax right?',
    );
    expect(throwsDuringPush(file)).toBe(true);
    // Implicit VR data read as explicit VR is caught on its first element.
    const implicitAsExplicit = Buffer.concat([fileMeta(EXPLICIT_LE), encodeDataSet([PN, LO], IMPLICIT).bytes]);
    expect(rejects(implicitAsExplicit).message).toMatch(/invalid VR/);
  });

  it('reads a 32-bit length for OV, SV, UV, UC, UR, UT, OL, OD, OF, UN, SQ, OB and OW and a 16-bit one otherwise', () => {
    for (const vr of ['OV', 'SV', 'UV', 'UC', 'UR', 'UT', 'OL', 'OD', 'OF', 'UN', 'OB', 'OW']) {
      accepts(part10([PN, bytes(0x00291001, vr, 8), LO]).bytes, ['whole', 1]);
      // Written with a 16-bit length instead, the walk loses its footing and the file is rejected.
      const wrong = part10([PN, { ...bytes(0x00291001, vr, 8), shortLength: true }, LO]).bytes;
      expect(check(wrong), vr).toBeInstanceOf(StructureError);
    }
    accepts(part10([PN, { tag: 0x00081140, vr: 'SQ', items: [], defined: true }, LO]).bytes, ['whole', 1]);
    for (const vr of [
      'AE',
      'AS',
      'AT',
      'CS',
      'DA',
      'DS',
      'DT',
      'FD',
      'FL',
      'IS',
      'LO',
      'LT',
      'PN',
      'SH',
      'SL',
      'SS',
      'ST',
      'TM',
      'UI',
      'UL',
      'US',
    ]) {
      accepts(part10([PN, bytes(0x00291001, vr, 8), LO]).bytes, ['whole', 1]);
    }
  });
});

describe('DicomStructureValidator: File Meta group and transfer syntax', () => {
  it('rejects a file without "DICM" after the preamble', () => {
    const file = Buffer.from(part10([PN]).bytes);
    file.write('DICN', 128, 'latin1');
    const error = rejects(file);
    expect(error.message).toBe(
      'The file is not a DICOM Part 10 file: "DICM" is missing at byte 128, after the preamble.',
    );
    expect(error.offset).toBe(128);
  });

  it('rejects a File Meta group without a transfer syntax, or with one whose encoding is unknown', () => {
    const elements = [text(0x00020002, 'UI', '1.2.840.10008.5.1.4.1.1.2')];
    const missing = Buffer.concat([fileMeta('', { elements }), encodeDataSet([PN], layoutOf(EXPLICIT_LE)).bytes]);
    expect(rejects(missing).message).toBe('The File Meta group has no Transfer Syntax UID (0002,0010).');
    const unknown = part10([PN], '1.2.3.4.5').bytes;
    expect(rejects(unknown).message).toBe(
      'The transfer syntax 1.2.3.4.5 is not one whose data set encoding is known, so its structure cannot be checked.',
    );
  });

  it('rejects a file that ends before the File Meta group length says the group does', () => {
    const { bytes: file } = part10([PN]);
    const groupEnd = 144 + file.readUInt32LE(140);
    // Cut at the boundary after the Transfer Syntax UID, short of the declared group end.
    const afterSyntax =
      groupEnd - encodeNode(text(0x00020012, 'UI', '1.2.826.0.1.3680043.10.1234'), layoutOf(EXPLICIT_LE)).length;
    expect(rejects(file.subarray(0, afterSyntax)).message).toBe(
      `The file ends at byte ${afterSyntax}, inside the File Meta group, which (0002,0000) says ends at byte ${groupEnd}.`,
    );
  });

  it('ends a deflated file’s File Meta group where its group length says', async () => {
    const { bytes: file } = part10([PN], DEFLATED);
    const wrong = Buffer.from(file);
    wrong.writeUInt32LE(wrong.readUInt32LE(140) - 2, 140);
    expect((await rejectsAsync(wrong)).message).toMatch(/runs past the end of the group that \(0002,0000\) declares/);
  });

  it('rejects deflated data that is corrupt or followed by other bytes', async () => {
    const { bytes: file, metaLength } = part10([PN, LO], DEFLATED);
    const corrupt = Buffer.from(file);
    corrupt[metaLength] = 0x07; // final block of the reserved type 3
    const error = await rejectsAsync(corrupt);
    expect(error.message).toBe(
      `The deflated data set is corrupt near byte ${metaLength} of the file: invalid block type.`,
    );
    expect(error.offset).toBe(metaLength);
    const end = file.length;
    const junk = await rejectsAsync(Buffer.concat([file, Buffer.from([0, 0])]));
    expect(junk.message).toBe(
      `The deflated data set has bytes after its end: the deflate stream ends at byte ${end} of the file ` +
        'and 2 bytes follow, where only a single 00H pad byte may.',
    );
    expect(junk.offset).toBe(end);
    expect((await rejectsAsync(Buffer.concat([file, Buffer.from([1])]))).message).toBe(
      `The deflated data set has bytes after its end: the deflate stream ends at byte ${end} of the file ` +
        'and a byte of 01H follows, where only a single 00H pad byte may.',
    );
    expect((await rejectsAsync(Buffer.concat([file, file]))).message).toMatch(/has bytes after its end/);
    // Found as soon as the inflater reaches the end of the stream, before end().
    expect(await rejectsBeforeEnd(Buffer.concat([file, Buffer.alloc(50, 1)]))).toBe(true);
  });
});

describe('DicomStructureValidator: deflated data sets', () => {
  /** A data set with 300 KB of noisy pixel data: many of the inflater's 16 KiB output pieces. */
  function noisyDataSet(): Buffer {
    const pixels = Buffer.alloc(300_000);
    let state = 11;
    for (let i = 0; i < pixels.length; i += 1) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      pixels[i] = i > 1000 && state % 3 === 0 ? (pixels[i - 1 - (state % 1000)] ?? 0) : (state >>> 24) % 16;
    }
    return encodeDataSet([PN, LO, { tag: PIXEL_DATA, vr: 'OB', value: pixels }], layoutOf(EXPLICIT_LE)).bytes;
  }

  it('walks a large deflated data set across the inflated pieces however the chunks fall', async () => {
    const dataSet = noisyDataSet();
    await acceptsAsync(Buffer.concat([fileMeta(DEFLATED), deflateRawSync(dataSet, { level: 9 })]), [
      'whole',
      13,
      4096,
      { seed: 1, max: 20_000 },
    ]);
    await acceptsAsync(Buffer.concat([fileMeta(DEFLATED), deflateRawSync(dataSet, { level: 0 })]), [
      'whole',
      4096,
      { seed: 2, max: 20_000 },
    ]);
  });

  it('says where the inflated data set breaks, many inflated pieces in', async () => {
    const before = encodeDataSet([PN, bytes(PIXEL_DATA, 'OB', 300_000, 0)], layoutOf(EXPLICIT_LE)).bytes;
    const broken = Buffer.concat([before, marker(ITEM_DELIMITER, 0, IMPLICIT), encodeNode(LO, layoutOf(EXPLICIT_LE))]);
    const error = await rejectsAsync(Buffer.concat([fileMeta(DEFLATED), deflateRawSync(broken)]));
    expect(error.message).toBe(
      `Unexpected item delimiter (FFFE,E00D) at byte ${before.length} of the inflated data set in the data set, ` +
        'where it closes nothing.',
    );
    expect(error.offset).toBe(before.length);
    expect(error.tag).toBe('(FFFE,E00D)');
  });

  it('throws only StructureError for damaged deflated data', async () => {
    const file = part10(richDataSet(DEFLATED), DEFLATED).bytes;
    const metaLength = fileMeta(DEFLATED).length;
    let state = 5;
    let rejected = 0;
    for (let trial = 0; trial < 300; trial += 1) {
      const damaged = Buffer.from(file);
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      const at = metaLength + (state % (file.length - metaLength));
      damaged[at] = (damaged[at] ?? 0) ^ (1 << (state >>> 29));
      // validateAsync rethrows anything but a StructureError.
      if ((await validateAsync(damaged, { seed: trial, max: 50 })) !== undefined) rejected += 1;
    }
    expect(rejected).toBeGreaterThan(150);
  });

  it('rejects the push that waits for the inflater to drain as soon as the inflated data set breaks', async () => {
    // Incompressible bytes after the break, so that the compressed file fills the inflater's queue.
    const noise = Buffer.alloc(200_000);
    let state = 7;
    for (let i = 0; i < noise.length; i += 1) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      noise[i] = state >>> 24;
    }
    const { bytes: file } = part10([PN, deepSequence(500), { tag: 0x00291001, vr: 'OB', value: noise }], DEFLATED);
    expect(file.length).toBeGreaterThan(150_000);
    const validator = new DicomStructureValidator();
    await expect(validator.push(file)).rejects.toThrow(/nested more than 64 sequences deep/);
  });

  it('inflates a decompression bomb in the threadpool, without blocking the event loop', async () => {
    // 1 MiB of deflated zeros that inflate to 1 GiB: the value of one OB element of that length, so valid.
    const size = 1 << 30;
    const layout = layoutOf(EXPLICIT_LE);
    const head = Buffer.concat([encodeNode(PN, layout), header(PIXEL_DATA, 'OB', size, layout)]);
    // Each piece ends on a full flush: byte-aligned, not final, and referring to nothing before it,
    // so the pieces string together into one deflate stream.
    const flush = { finishFlush: zlibConstants.Z_FULL_FLUSH };
    const mebibyte = deflateRawSync(Buffer.alloc(1 << 20), { level: 9, ...flush });
    const compressed = Buffer.concat([
      deflateRawSync(head, flush),
      ...new Array<Buffer>(size / (1 << 20)).fill(mebibyte),
      deflateRawSync(Buffer.alloc(0)),
    ]);
    expect(compressed.length).toBeLessThan(1.1 * (1 << 20));
    const file = Buffer.concat([fileMeta(DEFLATED), compressed]);
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
    }, 10);
    const started = performance.now();
    let error: StructureError | undefined;
    try {
      error = await validateAsync(file, 256 * 1024);
    } finally {
      clearInterval(timer);
    }
    const elapsed = performance.now() - started;
    expect(error?.message).toBeUndefined();
    expect(elapsed).toBeLessThan(30_000);
    // A free event loop ticks every 10 ms; the synchronous inflater let it tick not once.
    expect(ticks).toBeGreaterThan(Math.max(10, elapsed / 40));
  });
});

describe('DicomStructureValidator: use', () => {
  it('keeps throwing the first error, and refuses chunks after end()', () => {
    const { bytes: file } = part10([PN, raw(marker(ITEM_DELIMITER, 0, IMPLICIT)), LO]);
    const validator = new DicomStructureValidator();
    let first: unknown;
    try {
      sync(validator.push(file));
    } catch (error) {
      first = error;
    }
    expect(first).toBeInstanceOf(StructureError);
    expect(() => {
      sync(validator.push(Buffer.alloc(4)));
    }).toThrow(first);
    expect(() => {
      sync(validator.end());
    }).toThrow(first);
    const done = new DicomStructureValidator();
    sync(done.push(part10([PN]).bytes));
    sync(done.end());
    sync(done.end());
    expect(() => {
      sync(done.push(Buffer.alloc(1)));
    }).toThrow(/after end/);
  });

  it('keeps rejecting with the first error of a deflated file, and refuses chunks after end()', async () => {
    const { bytes: file } = part10([PN, raw(marker(ITEM_DELIMITER, 0, IMPLICIT)), LO], DEFLATED);
    const validator = new DicomStructureValidator();
    let first: unknown;
    try {
      await validator.push(file);
      // The error is found in the threadpool's time: an empty push reports it once it is known.
      for (let wait = 0; wait < 200; wait += 1) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        await validator.push(new Uint8Array(0));
      }
    } catch (error) {
      first = error;
    }
    expect(first).toBeInstanceOf(StructureError);
    await expect(validator.push(Buffer.alloc(4))).rejects.toBe(first);
    await expect(validator.end()).rejects.toBe(first);
    await expect(validator.end()).rejects.toBe(first);
    await expect(validator.push(Buffer.alloc(4))).rejects.toBe(first);
    const done = new DicomStructureValidator();
    await done.push(part10([PN], DEFLATED).bytes);
    await done.end();
    await done.end();
    expect(() => {
      void done.push(Buffer.alloc(1));
    }).toThrow(/after end/);
  });

  it('is synchronous for every transfer syntax but deflated, which turns asynchronous after the File Meta group', async () => {
    for (const syntax of SYNTAXES) {
      const { bytes: file, metaLength } = part10([PN, LO], syntax);
      const validator = new DicomStructureValidator();
      expect(validator.push(file.subarray(0, metaLength - 1)), NAMES[syntax]).toBeUndefined();
      const pushed = validator.push(file.subarray(metaLength - 1));
      if (syntax !== DEFLATED) {
        expect(pushed, NAMES[syntax]).toBeUndefined();
        expect(validator.end(), NAMES[syntax]).toBeUndefined();
        continue;
      }
      expect(pushed).toBeInstanceOf(Promise);
      await pushed;
      const ended = validator.end();
      expect(ended).toBeInstanceOf(Promise);
      await ended;
    }
  });

  it('accepts empty chunks anywhere', async () => {
    const file = part10(richDataSet(DEFLATED), DEFLATED).bytes;
    const validator = new DicomStructureValidator();
    for (const piece of chunks(file, { seed: 9, max: 40 })) {
      await validator.push(new Uint8Array(0));
      await validator.push(piece);
    }
    await validator.push(new Uint8Array(0));
    await validator.end();
  });
});
