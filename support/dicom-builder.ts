/**
 * Writes small DICOM Part 10 files in code for tests and benchmarks, in any of the native
 * transfer syntaxes, so no fixture has to be downloaded.
 */
import { deflateRawSync } from 'node:zlib';

export interface ElementSpec {
  /** Eight hex digits, e.g. "0020000D". */
  readonly tag: string;
  readonly vr: string;
  /** Text (padded to even length) or raw bytes. */
  readonly value: string | Uint8Array;
}

export const EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const IMPLICIT_LE = '1.2.840.10008.1.2';
export const EXPLICIT_BE = '1.2.840.10008.1.2.2';
export const DEFLATED = '1.2.840.10008.1.2.1.99';
export const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';

const LONG_VRS = new Set(['OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'SQ', 'UC', 'UN', 'UR', 'UT']);

function valueBytes(element: ElementSpec): Buffer {
  if (typeof element.value !== 'string') return Buffer.from(element.value);
  const pad = element.vr === 'UI' ? '\0' : ' ';
  const text = element.value.length % 2 === 1 ? element.value + pad : element.value;
  return Buffer.from(text, element.vr === 'PN' || element.vr === 'LO' ? 'utf8' : 'latin1');
}

function encodeElement(element: ElementSpec, explicit: boolean, littleEndian: boolean): Buffer {
  const group = parseInt(element.tag.slice(0, 4), 16);
  const elem = parseInt(element.tag.slice(4), 16);
  const value = valueBytes(element);
  const undefinedLength = element.vr === 'OB' && value.length === 0xffffffff;
  const u16 = (n: number) => {
    const b = Buffer.alloc(2);
    if (littleEndian) b.writeUInt16LE(n);
    else b.writeUInt16BE(n);
    return b;
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    if (littleEndian) b.writeUInt32LE(n);
    else b.writeUInt32BE(n);
    return b;
  };
  const length = undefinedLength ? 0xffffffff : value.length;
  const header = explicit
    ? LONG_VRS.has(element.vr)
      ? Buffer.concat([u16(group), u16(elem), Buffer.from(element.vr, 'latin1'), Buffer.alloc(2), u32(length)])
      : Buffer.concat([u16(group), u16(elem), Buffer.from(element.vr, 'latin1'), u16(length)])
    : Buffer.concat([u16(group), u16(elem), u32(length)]);
  return Buffer.concat([header, value]);
}

export interface InstanceSpec {
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly sopInstanceUid: string;
  readonly sopClassUid?: string | undefined;
  readonly transferSyntax?: string;
  /** Extra or overriding attributes; a value of null removes a default attribute. */
  readonly attributes?: Readonly<Record<string, { vr: string; value: string | Uint8Array } | null>>;
  /** Native pixel data bytes; omitted means no Pixel Data element. */
  readonly pixelBytes?: number;
  /** Encapsulated pixel data fragments (for compressed transfer syntaxes). */
  readonly fragments?: readonly Uint8Array[];
}

/** A Part 10 file with the attributes of a plausible CT image. */
export function buildInstance(spec: InstanceSpec): Buffer {
  const transferSyntax = spec.transferSyntax ?? EXPLICIT_LE;
  const attributes = new Map<string, { vr: string; value: string | Uint8Array }>([
    ['00080005', { vr: 'CS', value: 'ISO_IR 192' }],
    ['00080016', { vr: 'UI', value: spec.sopClassUid ?? '1.2.840.10008.5.1.4.1.1.2' }],
    ['00080018', { vr: 'UI', value: spec.sopInstanceUid }],
    ['00080020', { vr: 'DA', value: '20240131' }],
    ['00080030', { vr: 'TM', value: '101500' }],
    ['00080050', { vr: 'SH', value: 'ACC0001' }],
    ['00080060', { vr: 'CS', value: 'CT' }],
    ['00080090', { vr: 'PN', value: 'Referring^Doctor' }],
    ['00081030', { vr: 'LO', value: 'CT CHEST' }],
    ['00100010', { vr: 'PN', value: 'Test^Patient' }],
    ['00100020', { vr: 'LO', value: 'PID-0001' }],
    ['00100030', { vr: 'DA', value: '19700101' }],
    ['0020000D', { vr: 'UI', value: spec.studyInstanceUid }],
    ['0020000E', { vr: 'UI', value: spec.seriesInstanceUid }],
    ['00200011', { vr: 'IS', value: '1' }],
    ['00200013', { vr: 'IS', value: '1' }],
    ['00280010', { vr: 'US', value: u16le(512) }],
    ['00280011', { vr: 'US', value: u16le(512) }],
  ]);
  for (const [tag, value] of Object.entries(spec.attributes ?? {})) {
    if (value === null) attributes.delete(tag.toUpperCase());
    else attributes.set(tag.toUpperCase(), value);
  }
  const explicit = transferSyntax !== IMPLICIT_LE;
  const littleEndian = transferSyntax !== EXPLICIT_BE;
  const elements = [...attributes.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([tag, { vr, value }]) => {
      // US values are given little-endian; big endian swaps them.
      const bytes = !littleEndian && vr === 'US' && typeof value !== 'string' ? Buffer.from(value).swap16() : value;
      return encodeElement({ tag, vr, value: bytes }, explicit, littleEndian);
    });
  if (spec.fragments) elements.push(encapsulatedPixelData(spec.fragments));
  else if (spec.pixelBytes !== undefined) {
    elements.push(
      encodeElement({ tag: '7FE00010', vr: 'OW', value: Buffer.alloc(spec.pixelBytes, 0x5a) }, explicit, littleEndian),
    );
  }
  let dataSet = Buffer.concat(elements);
  if (transferSyntax === DEFLATED) dataSet = deflateRawSync(dataSet);
  return Buffer.concat([fileMeta(spec, transferSyntax), dataSet]);
}

function u16le(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

function encapsulatedPixelData(fragments: readonly Uint8Array[]): Buffer {
  const item = (bytes: Uint8Array) => {
    const header = Buffer.alloc(8);
    header.writeUInt16LE(0xfffe, 0);
    header.writeUInt16LE(0xe000, 2);
    header.writeUInt32LE(bytes.length, 4);
    return Buffer.concat([header, bytes]);
  };
  const header = Buffer.alloc(12);
  header.writeUInt16LE(0x7fe0, 0);
  header.writeUInt16LE(0x0010, 2);
  header.write('OB', 4, 'latin1');
  header.writeUInt32LE(0xffffffff, 8);
  const end = Buffer.alloc(8);
  end.writeUInt16LE(0xfffe, 0);
  end.writeUInt16LE(0xe0dd, 2);
  return Buffer.concat([header, item(new Uint8Array(0)), ...fragments.map(item), end]);
}

function fileMeta(spec: InstanceSpec, transferSyntax: string): Buffer {
  const meta = [
    encodeElement({ tag: '00020001', vr: 'OB', value: Buffer.from([0, 1]) }, true, true),
    encodeElement({ tag: '00020002', vr: 'UI', value: spec.sopClassUid ?? '1.2.840.10008.5.1.4.1.1.2' }, true, true),
    encodeElement({ tag: '00020003', vr: 'UI', value: spec.sopInstanceUid }, true, true),
    encodeElement({ tag: '00020010', vr: 'UI', value: transferSyntax }, true, true),
    encodeElement({ tag: '00020012', vr: 'UI', value: '1.2.826.0.1.3680043.10.1234' }, true, true),
  ];
  const body = Buffer.concat(meta);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(body.length);
  return Buffer.concat([
    Buffer.alloc(128),
    Buffer.from('DICM', 'latin1'),
    encodeElement({ tag: '00020000', vr: 'UL', value: groupLength }, true, true),
    body,
  ]);
}

let counter = 0;
/** A fresh, valid UID under a test root. */
export function testUid(): string {
  counter += 1;
  return `1.2.826.0.1.3680043.10.1234.${Date.now()}.${process.pid}.${counter}`;
}

export function newInstanceUids(studyInstanceUid = testUid(), seriesInstanceUid = testUid()) {
  return { studyInstanceUid, seriesInstanceUid, sopInstanceUid: testUid() };
}
