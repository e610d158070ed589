/**
 * The valid instances the fuzzer mutates: generated ones in every native transfer syntax, with
 * nested sequences of defined and undefined length and encapsulated pixel data in several
 * fragments, plus the sample files under test/fixtures.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { layoutOf, type Layout } from './layout.js';
import {
  DEFLATED,
  EXPLICIT_BE,
  EXPLICIT_LE,
  IMPLICIT_LE,
  JPEG_BASELINE,
  RLE_LOSSLESS,
  writePart10,
  type Node,
} from './writer.js';

export interface Seed {
  readonly name: string;
  /** The valid file as sent. */
  readonly file: Buffer;
  readonly layout: Layout;
  /** Written by writer.ts (not a sample file). */
  readonly generated: boolean;
  /** How often the random phase picks it, relative to the others. */
  readonly weight: number;
}

const UID_ROOT = '1.2.826.0.1.3680043.10.1234.4242';
const CT = '1.2.840.10008.5.1.4.1.1.2';
const SC = '1.2.840.10008.5.1.4.1.1.7';

export interface InstanceUids {
  readonly study: string;
  readonly series: string;
  readonly sop: string;
}

export function seedUids(n: number): InstanceUids {
  return { study: `${UID_ROOT}.1.${n}`, series: `${UID_ROOT}.2.${n}`, sop: `${UID_ROOT}.3.${n}` };
}

function text(tag: number, vr: string, value: string): Node {
  return { tag, vr, value };
}

function attributes(uids: InstanceUids, sopClassUid: string, rows: number, columns: number): Node[] {
  return [
    text(0x00080005, 'CS', 'ISO_IR 100'),
    text(0x00080016, 'UI', sopClassUid),
    text(0x00080018, 'UI', uids.sop),
    text(0x00080020, 'DA', '20240131'),
    text(0x00080030, 'TM', '101500'),
    text(0x00080050, 'SH', 'ACC-FUZZ'),
    text(0x00080060, 'CS', 'OT'),
    text(0x00100010, 'PN', 'Fuzz^Patient'),
    text(0x00100020, 'LO', 'FUZZ-0001'),
    text(0x00100030, 'DA', '19700101'),
    text(0x0020000d, 'UI', uids.study),
    text(0x0020000e, 'UI', uids.series),
    text(0x00200011, 'IS', '1'),
    text(0x00200013, 'IS', '1'),
    { tag: 0x00280002, vr: 'US', value: { u16: [1] } },
    text(0x00280004, 'CS', 'MONOCHROME2'),
    { tag: 0x00280010, vr: 'US', value: { u16: [rows] } },
    { tag: 0x00280011, vr: 'US', value: { u16: [columns] } },
    { tag: 0x00280100, vr: 'US', value: { u16: [8] } },
    { tag: 0x00280101, vr: 'US', value: { u16: [8] } },
    { tag: 0x00280102, vr: 'US', value: { u16: [7] } },
    { tag: 0x00280103, vr: 'US', value: { u16: [0] } },
  ];
}

/** Sequences nested four deep, mixing defined and undefined lengths, with empty ones and an empty item. */
function sequences(uids: InstanceUids): Node[] {
  const reference = (n: number): Node[] => [text(0x00081150, 'UI', CT), text(0x00081155, 'UI', `${uids.sop}.${n}`)];
  const innermost: Node = {
    tag: 0x0040a730,
    vr: 'SQ',
    definedLength: true,
    definedItems: false,
    items: [[text(0x0040a010, 'CS', 'CONTAINS'), text(0x0040a040, 'CS', 'TEXT'), text(0x0040a160, 'UT', 'deep')]],
  };
  const third: Node = {
    tag: 0x0040a730,
    vr: 'SQ',
    definedLength: false,
    definedItems: true,
    items: [[text(0x0040a010, 'CS', 'CONTAINS'), innermost], [text(0x0040a040, 'CS', 'CONTAINER')]],
  };
  return [
    // Defined-length sequence of defined-length items.
    { tag: 0x00081110, vr: 'SQ', definedLength: true, definedItems: true, items: [reference(1), reference(2)] },
    // Undefined-length sequence holding nested sequences, and an empty item.
    {
      tag: 0x00081115,
      vr: 'SQ',
      items: [
        [
          text(0x0020000e, 'UI', `${uids.series}.9`),
          { tag: 0x00081140, vr: 'SQ', definedLength: true, definedItems: false, items: [reference(3), reference(4)] },
          third,
        ],
        [],
      ],
    },
    // Empty sequences: defined length 0, and undefined length with only its delimiter.
    { tag: 0x00081120, vr: 'SQ', definedLength: true, items: [] },
    { tag: 0x00081125, vr: 'SQ', items: [] },
    { tag: 0x00400275, vr: 'SQ', definedLength: false, definedItems: true, items: [[text(0x00400009, 'SH', 'SPS1')]] },
  ];
}

function pixels(count: number, fill: number): Uint8Array {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i += 1) out[i] = (fill + i * 7) & 0xff;
  return out;
}

export interface Generated {
  readonly name: string;
  readonly transferSyntax: string;
  readonly nested: boolean;
  readonly fragments?: readonly Uint8Array[];
  readonly offsetTable?: boolean;
  readonly frames?: number;
}

const GENERATED: readonly Generated[] = [
  { name: 'explicit-le-flat', transferSyntax: EXPLICIT_LE, nested: false },
  { name: 'explicit-le-nested', transferSyntax: EXPLICIT_LE, nested: true },
  { name: 'implicit-le-flat', transferSyntax: IMPLICIT_LE, nested: false },
  { name: 'implicit-le-nested', transferSyntax: IMPLICIT_LE, nested: true },
  { name: 'explicit-be-flat', transferSyntax: EXPLICIT_BE, nested: false },
  { name: 'explicit-be-nested', transferSyntax: EXPLICIT_BE, nested: true },
  { name: 'deflated-flat', transferSyntax: DEFLATED, nested: false },
  { name: 'deflated-nested', transferSyntax: DEFLATED, nested: true },
  {
    name: 'jpeg-nested-4-fragments',
    transferSyntax: JPEG_BASELINE,
    nested: true,
    fragments: [pixels(30, 1), pixels(18, 2), pixels(40, 3), pixels(6, 4)],
  },
  {
    name: 'rle-3-frames-offset-table',
    transferSyntax: RLE_LOSSLESS,
    nested: false,
    fragments: [pixels(64, 5), pixels(64, 6), pixels(64, 7)],
    offsetTable: true,
    frames: 3,
  },
];

export function generatedInstance(spec: Generated, uids: InstanceUids): Buffer {
  const sopClassUid = spec.fragments ? SC : CT;
  const nodes = attributes(uids, sopClassUid, 8, 8);
  if (spec.nested) nodes.push(...sequences(uids));
  if (spec.frames !== undefined) nodes.push(text(0x00280008, 'IS', String(spec.frames)));
  if (spec.fragments) {
    nodes.push({ tag: 0x7fe00010, vr: 'OB', fragments: spec.fragments, offsetTable: spec.offsetTable ?? false });
  } else {
    nodes.push({ tag: 0x7fe00010, vr: 'OW', value: pixels(64, 9) });
  }
  return writePart10(spec.transferSyntax, sopClassUid, uids.sop, nodes);
}

/** A valid explicit VR little endian instance with its own UIDs, the companion part in multipart cases. */
export function companionInstance(n: number): Buffer {
  return generatedInstance({ name: 'companion', transferSyntax: EXPLICIT_LE, nested: false }, seedUids(9000 + n));
}

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

function fixtureFiles(folder: string): string[] {
  return readdirSync(join(FIXTURES, folder))
    .filter((name) => name.endsWith('.dcm'))
    .sort()
    .map((name) => join(folder, name));
}

export interface SeedOptions {
  /** Include the 2.9 MB Azure sample files (default true). */
  readonly azureSamples?: boolean;
}

/** Every seed, in a fixed order. */
export function loadSeeds(options: SeedOptions = {}): Seed[] {
  const seeds: Seed[] = GENERATED.map((spec, n) => {
    const file = generatedInstance(spec, seedUids(n + 1));
    const weight = spec.nested || spec.fragments ? 6 : 4;
    return { name: spec.name, file, layout: layoutOf(file), generated: true, weight };
  });
  for (const path of fixtureFiles('charsets')) {
    // chrSQEncoding*.dcm hold no Study, Series or SOP Instance UID: every mutant would fail for that.
    if (path.includes('chrSQEncoding')) continue;
    const file = readFileSync(join(FIXTURES, path));
    seeds.push({ name: path, file, layout: layoutOf(file), generated: false, weight: 1 });
  }
  if (options.azureSamples ?? true) {
    for (const path of fixtureFiles('azure-samples')) {
      const file = readFileSync(join(FIXTURES, path));
      seeds.push({ name: path, file, layout: layoutOf(file), generated: false, weight: 0.3 });
    }
  }
  return seeds;
}

/** The file for mutated logical bytes: a deflated data set is compressed again after its meta group. */
export function encodeLogical(layout: Layout, logical: Uint8Array, metaEnd = layout.metaEnd): Buffer {
  const bytes = Buffer.from(logical.buffer, logical.byteOffset, logical.byteLength);
  if (!layout.deflated) return bytes;
  const cut = Math.min(metaEnd, bytes.length);
  return Buffer.concat([bytes.subarray(0, cut), deflateRawSync(bytes.subarray(cut))]);
}
