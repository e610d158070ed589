/**
 * Where the elements of a VALID Part 10 file are: every element, item and delimiter with its
 * offset, header and length field, so mutations can cut and rewrite at exact boundaries. Works on
 * the "logical" bytes (a deflated file's data set inflated). Not a validator: it trusts the seed.
 */
import { inflateRawSync } from 'node:zlib';
import { DEFLATED, EXPLICIT_BE, IMPLICIT_LE, LONG_VRS } from './writer.js';

export type NodeKind =
  'meta' | 'element' | 'sequence' | 'item' | 'itemDelimiter' | 'sequenceDelimiter' | 'encapsulated' | 'fragment';

export interface LayoutNode {
  readonly kind: NodeKind;
  readonly tag: number;
  /** The explicit VR, when there is one. */
  readonly vr: string | undefined;
  readonly offset: number;
  readonly headerSize: number;
  readonly lengthOffset: number;
  readonly lengthSize: 2 | 4;
  readonly length: number;
  /** First byte after the element, its items and its delimiter. */
  readonly end: number;
  /** Sequences open around it (0 in the top data set). */
  readonly depth: number;
  readonly littleEndian: boolean;
  readonly explicitVr: boolean;
}

export interface Layout {
  readonly transferSyntax: string;
  readonly deflated: boolean;
  /** The logical bytes: the file, or for a deflated file its meta group and inflated data set. */
  readonly logical: Buffer;
  /** Offset of the data set's first byte. */
  readonly metaEnd: number;
  readonly nodes: readonly LayoutNode[];
}

const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
const SEQUENCE_DELIMITER = 0xfffee0dd;
const UNDEFINED = 0xffffffff;
const PIXEL_DATA = 0x7fe00010;

interface Mode {
  readonly explicitVr: boolean;
  readonly littleEndian: boolean;
}

export function layoutOf(file: Uint8Array): Layout {
  const bytes = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (bytes.toString('latin1', 128, 132) !== 'DICM') throw new Error('layout: not a Part 10 file');
  const nodes: LayoutNode[] = [];
  let at = 132;
  let transferSyntax = '';
  while (at + 8 <= bytes.length && bytes.readUInt16LE(at) === 0x0002) {
    const tag = ((bytes.readUInt16LE(at) << 16) | bytes.readUInt16LE(at + 2)) >>> 0;
    const vr = bytes.toString('latin1', at + 4, at + 6);
    const long = LONG_VRS.has(vr);
    const headerSize = long ? 12 : 8;
    const length = long ? bytes.readUInt32LE(at + 8) : bytes.readUInt16LE(at + 6);
    const end = at + headerSize + length;
    if (tag === 0x00020010) {
      transferSyntax = bytes.toString('latin1', at + headerSize, end).replace(/[\0 ]+$/, '');
    }
    nodes.push({
      kind: 'meta',
      tag,
      vr,
      offset: at,
      headerSize,
      lengthOffset: long ? at + 8 : at + 6,
      lengthSize: long ? 4 : 2,
      length,
      end,
      depth: 0,
      littleEndian: true,
      explicitVr: true,
    });
    at = end;
  }
  const metaEnd = at;
  const deflated = transferSyntax === DEFLATED;
  const logical = deflated
    ? Buffer.concat([bytes.subarray(0, metaEnd), inflateRawSync(bytes.subarray(metaEnd))])
    : bytes;
  const walker = new Walker(logical, nodes);
  const end = walker.dataSet(
    metaEnd,
    logical.length,
    0,
    { explicitVr: transferSyntax !== IMPLICIT_LE, littleEndian: transferSyntax !== EXPLICIT_BE },
    false,
  );
  if (end !== logical.length) throw new Error(`layout: the data set ends at ${end} of ${logical.length}`);
  return { transferSyntax, deflated, logical, metaEnd, nodes };
}

class Walker {
  constructor(
    private readonly bytes: Buffer,
    private readonly nodes: LayoutNode[],
  ) {}

  private tag(at: number, mode: Mode): number {
    const b = this.bytes;
    return mode.littleEndian ? ((b.readUInt16LE(at) << 16) | b.readUInt16LE(at + 2)) >>> 0 : b.readUInt32BE(at);
  }

  private u32(at: number, mode: Mode): number {
    return mode.littleEndian ? this.bytes.readUInt32LE(at) : this.bytes.readUInt32BE(at);
  }

  /** Walks elements from `at` until `limit`, or (untilDelimiter) up to and including an item delimiter. */
  dataSet(at: number, limit: number, depth: number, mode: Mode, untilDelimiter: boolean): number {
    while (at < limit) {
      const tag = this.tag(at, mode);
      if (tag === ITEM_DELIMITER && untilDelimiter) {
        this.push('itemDelimiter', tag, undefined, at, 8, at + 4, 4, 0, at + 8, depth, mode);
        return at + 8;
      }
      at = this.element(at, depth, mode);
    }
    if (untilDelimiter) throw new Error(`layout: no item delimiter before ${limit}`);
    return at;
  }

  private element(at: number, depth: number, mode: Mode): number {
    const b = this.bytes;
    const tag = this.tag(at, mode);
    let vr: string | undefined;
    let headerSize = 8;
    let lengthOffset = at + 4;
    let lengthSize: 2 | 4 = 4;
    if (mode.explicitVr) {
      vr = b.toString('latin1', at + 4, at + 6);
      if (LONG_VRS.has(vr)) {
        headerSize = 12;
        lengthOffset = at + 8;
      } else {
        lengthOffset = at + 6;
        lengthSize = 2;
      }
    }
    const length =
      lengthSize === 2
        ? mode.littleEndian
          ? b.readUInt16LE(lengthOffset)
          : b.readUInt16BE(lengthOffset)
        : this.u32(lengthOffset, mode);
    const valueStart = at + headerSize;
    const index = this.nodes.length;
    const record = (kind: NodeKind, end: number) =>
      this.nodes.splice(index, 0, {
        kind,
        tag,
        vr,
        offset: at,
        headerSize,
        lengthOffset,
        lengthSize,
        length,
        end,
        depth,
        littleEndian: mode.littleEndian,
        explicitVr: mode.explicitVr,
      });
    if (length === UNDEFINED) {
      if (tag === PIXEL_DATA || vr === 'OB' || vr === 'OW') {
        const end = this.fragments(valueStart, depth, mode);
        record('encapsulated', end);
        return end;
      }
      // SQ, implicit VR, or UN: a sequence (a UN one in implicit VR little endian, PS3.5 6.2.2).
      const inner: Mode = vr === 'UN' ? { explicitVr: false, littleEndian: true } : mode;
      const end = this.items(valueStart, Infinity, depth + 1, inner);
      record('sequence', end);
      return end;
    }
    const end = valueStart + length;
    const looksLikeSequence = vr === 'SQ' || (!mode.explicitVr && length >= 8 && this.tag(valueStart, mode) === ITEM);
    if (looksLikeSequence) {
      record('sequence', end);
      this.items(valueStart, end, depth + 1, mode);
      return end;
    }
    record('element', end);
    return end;
  }

  /** Items of a sequence, until `limit` or (undefined length) through the sequence delimiter. */
  private items(at: number, limit: number, depth: number, mode: Mode): number {
    while (at < limit) {
      const tag = this.tag(at, mode);
      const length = this.u32(at + 4, mode);
      if (tag === SEQUENCE_DELIMITER) {
        this.push('sequenceDelimiter', tag, undefined, at, 8, at + 4, 4, length, at + 8, depth, mode);
        return at + 8;
      }
      if (tag !== ITEM) throw new Error(`layout: expected an item at ${at}`);
      const index = this.nodes.length;
      const end =
        length === UNDEFINED
          ? this.dataSet(at + 8, Infinity, depth, mode, true)
          : this.dataSet(at + 8, at + 8 + length, depth, mode, false);
      this.nodes.splice(index, 0, {
        kind: 'item',
        tag,
        vr: undefined,
        offset: at,
        headerSize: 8,
        lengthOffset: at + 4,
        lengthSize: 4,
        length,
        end,
        depth,
        littleEndian: mode.littleEndian,
        explicitVr: mode.explicitVr,
      });
      at = end;
    }
    if (limit !== Infinity) return at;
    throw new Error('layout: a sequence of undefined length has no delimiter');
  }

  private fragments(at: number, depth: number, mode: Mode): number {
    for (;;) {
      const tag = this.tag(at, mode);
      const length = this.u32(at + 4, mode);
      if (tag === SEQUENCE_DELIMITER) {
        this.push('sequenceDelimiter', tag, undefined, at, 8, at + 4, 4, length, at + 8, depth + 1, mode);
        return at + 8;
      }
      if (tag !== ITEM) throw new Error(`layout: expected a fragment at ${at}`);
      this.push('fragment', tag, undefined, at, 8, at + 4, 4, length, at + 8 + length, depth + 1, mode);
      at += 8 + length;
    }
  }

  private push(
    kind: NodeKind,
    tag: number,
    vr: string | undefined,
    offset: number,
    headerSize: number,
    lengthOffset: number,
    lengthSize: 2 | 4,
    length: number,
    end: number,
    depth: number,
    mode: Mode,
  ): void {
    this.nodes.push({
      kind,
      tag,
      vr,
      offset,
      headerSize,
      lengthOffset,
      lengthSize,
      length,
      end,
      depth,
      littleEndian: mode.littleEndian,
      explicitVr: mode.explicitVr,
    });
  }
}
