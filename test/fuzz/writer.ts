/**
 * A small Part 10 writer for the fuzz seeds, independent of the server's code: any native
 * transfer syntax, sequences and items of defined or undefined length nested at will, and
 * encapsulated pixel data in several fragments with or without a Basic Offset Table.
 */
import { deflateRawSync } from 'node:zlib';

export const EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const IMPLICIT_LE = '1.2.840.10008.1.2';
export const EXPLICIT_BE = '1.2.840.10008.1.2.2';
export const DEFLATED = '1.2.840.10008.1.2.1.99';
export const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
export const RLE_LOSSLESS = '1.2.840.10008.1.2.5';

export interface Encoding {
  readonly explicitVr: boolean;
  readonly littleEndian: boolean;
  readonly deflated: boolean;
}

export function encodingOf(transferSyntax: string): Encoding {
  return {
    explicitVr: transferSyntax !== IMPLICIT_LE,
    littleEndian: transferSyntax !== EXPLICIT_BE,
    deflated: transferSyntax === DEFLATED,
  };
}

/** VRs whose explicit header has 2 reserved bytes and a 32-bit length (PS3.5 7.1.2). */
export const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

export type Value = string | Uint8Array | { readonly u16: readonly number[] };

export interface Plain {
  readonly tag: number;
  readonly vr: string;
  readonly value: Value;
}
export interface Sequence {
  readonly tag: number;
  readonly vr: 'SQ';
  readonly items: readonly (readonly Node[])[];
  /** A defined length for the sequence (default: undefined length, closed by a delimiter). */
  readonly definedLength?: boolean;
  /** Defined lengths for its items (default: undefined length). */
  readonly definedItems?: boolean;
}
export interface Encapsulated {
  readonly tag: number;
  readonly vr: 'OB';
  readonly fragments: readonly Uint8Array[];
  /** Fill the Basic Offset Table with one offset per fragment (default: empty). */
  readonly offsetTable?: boolean;
}
export type Node = Plain | Sequence | Encapsulated;

const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
const SEQUENCE_DELIMITER = 0xfffee0dd;
export const UNDEFINED = 0xffffffff;

class Out {
  constructor(readonly littleEndian: boolean) {}
  u16(n: number): Buffer {
    const b = Buffer.alloc(2);
    if (this.littleEndian) b.writeUInt16LE(n);
    else b.writeUInt16BE(n);
    return b;
  }
  u32(n: number): Buffer {
    const b = Buffer.alloc(4);
    if (this.littleEndian) b.writeUInt32LE(n >>> 0);
    else b.writeUInt32BE(n >>> 0);
    return b;
  }
  tag(tag: number): Buffer {
    return Buffer.concat([this.u16(tag >>> 16), this.u16(tag & 0xffff)]);
  }
}

function valueBytes(node: Plain, out: Out): Buffer {
  const value = node.value;
  if (typeof value === 'string') {
    const pad = node.vr === 'UI' ? '\0' : ' ';
    const text = value.length % 2 === 1 ? value + pad : value;
    return Buffer.from(text, 'latin1');
  }
  if (value instanceof Uint8Array) return Buffer.from(value);
  return Buffer.concat(value.u16.map((n) => out.u16(n)));
}

/** An element header: tag, (VR), length, in the given encoding. */
export function elementHeader(tag: number, vr: string, length: number, encoding: Encoding): Buffer {
  const out = new Out(encoding.littleEndian);
  if (!encoding.explicitVr) return Buffer.concat([out.tag(tag), out.u32(length)]);
  if (LONG_VRS.has(vr)) {
    return Buffer.concat([out.tag(tag), Buffer.from(vr, 'latin1'), Buffer.alloc(2), out.u32(length)]);
  }
  return Buffer.concat([out.tag(tag), Buffer.from(vr, 'latin1'), out.u16(length)]);
}

/** An item, item delimiter or sequence delimiter header. */
export function itemHeader(
  kind: 'item' | 'itemDelimiter' | 'sequenceDelimiter',
  length: number,
  littleEndian: boolean,
) {
  const out = new Out(littleEndian);
  const tag = kind === 'item' ? ITEM : kind === 'itemDelimiter' ? ITEM_DELIMITER : SEQUENCE_DELIMITER;
  return Buffer.concat([out.tag(tag), out.u32(length)]);
}

export function encodeDataSet(nodes: readonly Node[], encoding: Encoding): Buffer {
  return Buffer.concat(nodes.map((node) => encodeNode(node, encoding)));
}

function encodeNode(node: Node, encoding: Encoding): Buffer {
  const le = encoding.littleEndian;
  if ('items' in node) {
    const items = node.items.map((item) => {
      const content = encodeDataSet(item, encoding);
      return node.definedItems
        ? Buffer.concat([itemHeader('item', content.length, le), content])
        : Buffer.concat([itemHeader('item', UNDEFINED, le), content, itemHeader('itemDelimiter', 0, le)]);
    });
    const body = Buffer.concat(items);
    return node.definedLength
      ? Buffer.concat([elementHeader(node.tag, 'SQ', body.length, encoding), body])
      : Buffer.concat([
          elementHeader(node.tag, 'SQ', UNDEFINED, encoding),
          body,
          itemHeader('sequenceDelimiter', 0, le),
        ]);
  }
  if ('fragments' in node) {
    const offsets: number[] = [];
    let at = 0;
    for (const fragment of node.fragments) {
      offsets.push(at);
      at += 8 + fragment.length;
    }
    const out = new Out(le);
    const table = node.offsetTable ? Buffer.concat(offsets.map((n) => out.u32(n))) : Buffer.alloc(0);
    return Buffer.concat([
      elementHeader(node.tag, node.vr, UNDEFINED, encoding),
      itemHeader('item', table.length, le),
      table,
      ...node.fragments.flatMap((fragment) => [itemHeader('item', fragment.length, le), Buffer.from(fragment)]),
      itemHeader('sequenceDelimiter', 0, le),
    ]);
  }
  const value = valueBytes(node, new Out(le));
  return Buffer.concat([elementHeader(node.tag, node.vr, value.length, encoding), value]);
}

/** Preamble, "DICM" and the File Meta group (always explicit VR little endian). */
export function fileMeta(sopClassUid: string, sopInstanceUid: string, transferSyntax: string): Buffer {
  const meta: Encoding = { explicitVr: true, littleEndian: true, deflated: false };
  const body = encodeDataSet(
    [
      { tag: 0x00020001, vr: 'OB', value: Uint8Array.of(0, 1) },
      { tag: 0x00020002, vr: 'UI', value: sopClassUid },
      { tag: 0x00020003, vr: 'UI', value: sopInstanceUid },
      { tag: 0x00020010, vr: 'UI', value: transferSyntax },
      { tag: 0x00020012, vr: 'UI', value: '1.2.826.0.1.3680043.10.1234.77' },
      { tag: 0x00020013, vr: 'SH', value: 'FUZZ_WRITER' },
    ],
    meta,
  );
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(body.length);
  return Buffer.concat([
    Buffer.alloc(128),
    Buffer.from('DICM', 'latin1'),
    encodeDataSet([{ tag: 0x00020000, vr: 'UL', value: groupLength }], meta),
    body,
  ]);
}

/** A whole Part 10 file: File Meta group, then the data set (deflated when the syntax says so). */
export function writePart10(
  transferSyntax: string,
  sopClassUid: string,
  sopInstanceUid: string,
  nodes: readonly Node[],
): Buffer {
  const encoding = encodingOf(transferSyntax);
  const sorted = [...nodes].sort((a, b) => a.tag - b.tag);
  let dataSet = encodeDataSet(sorted, encoding);
  if (encoding.deflated) dataSet = deflateRawSync(dataSet);
  return Buffer.concat([fileMeta(sopClassUid, sopInstanceUid, transferSyntax), dataSet]);
}
