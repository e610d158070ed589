import { formatTag } from '../transcode/transcode-error.js';
import { EXPLICIT_HEADER_SIZE, VR_OB, VR_OW, VR_SQ, VR_UN, vrName, vrSlot } from './explicit-vr.js';
import { StructureError } from './structure-error.js';

const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
const SEQUENCE_DELIMITER = 0xfffee0dd;
const UNDEFINED_LENGTH = 0xffffffff;
const PIXEL_DATA = 0x7fe00010;

/** The longest element header: tag, VR, 2 reserved bytes and a 32-bit length. */
const MAX_HEADER = 12;

/** What a frame of the nesting stack is. */
const DATA_SET = 0;
const SEQUENCE = 1;
const ITEM_FRAME = 2;
/** The fragments of an encapsulated value: defined-length items, then a sequence delimiter. */
const FRAGMENTS = 3;
type Kind = typeof DATA_SET | typeof SEQUENCE | typeof ITEM_FRAME | typeof FRAGMENTS;

interface Frame {
  readonly kind: Kind;
  /** The sequence or encapsulated element's tag; for an item, its sequence's. */
  readonly tag: number;
  /** Offset of the frame's header (the data set's first byte for the data set). */
  readonly start: number;
  /** Where a defined-length frame ends; -1 when a delimiter ends it. */
  readonly end: number;
  /** Declared length, for messages; -1 when undefined. */
  readonly length: number;
  /** The nearest defined end of this frame or an enclosing one: nothing inside may pass it. */
  readonly limit: number;
  readonly explicitVr: boolean;
  readonly littleEndian: boolean;
}

export interface WalkerOptions {
  readonly explicitVr: boolean;
  readonly littleEndian: boolean;
  /** Most sequences open at once. */
  readonly maxDepth: number;
  /** Offset of the data set's first byte, so offsets in messages are the file's. */
  readonly start: number;
  /** Follows every offset in messages, e.g. " of the inflated data set". */
  readonly offsetSuffix?: string;
}

/**
 * Walks a data set pushed in chunks of any size, element header by element header, and checks that
 * its nesting holds together (PS3.5 7.1-7.5, A.4). It holds only the open sequences and items and at
 * most one element header split across chunks; values are skipped by counting, never copied.
 *
 * Undefined length opens a sequence for SQ (and in implicit VR, where there is no VR to say so), a
 * sequence in implicit VR little endian for UN (PS3.5 6.2.2), and fragments for OB and OW (and
 * Pixel Data in implicit VR) as in PS3.5 A.4; other VRs may not have it. Fragments are items
 * of defined length ended by a sequence delimiter. Item and sequence delimiters must have length 0
 * and close an undefined-length item or sequence; defined-length ones end exactly at their length,
 * and nothing inside may cross that end. At least one element must be there.
 *
 * In implicit VR a defined-length value is a sequence when it starts with an item tag (what
 * dicom-parser and dcmtk decide too; the dictionary would miss private sequences).
 *
 * Not checked, on purpose: tag order (PS3.5 7.1 asks for ascending tags, but real files break it
 * slightly and nothing structural depends on it), even value lengths and the reserved bytes of
 * long explicit VR headers.
 */
export class DataSetWalker {
  private position: number;
  private readonly stack: Frame[];
  private top: Frame;
  /** Sequences open now. */
  private depth = 0;
  /** Value bytes still to skip, of the element whose header starts at valueStart. */
  private skipLeft = 0;
  private valueTag = 0;
  private valueStart = 0;
  private valueLength = 0;
  /** An element header split across chunks. */
  private readonly carry = new Uint8Array(MAX_HEADER);
  private readonly carryView = new DataView(this.carry.buffer);
  private carried = 0;
  private readonly maxDepth: number;
  private readonly suffix: string;

  constructor(options: WalkerOptions) {
    this.position = options.start;
    this.maxDepth = options.maxDepth;
    this.suffix = options.offsetSuffix ?? '';
    this.top = {
      kind: DATA_SET,
      tag: 0,
      start: options.start,
      end: -1,
      length: -1,
      limit: Infinity,
      explicitVr: options.explicitVr,
      littleEndian: options.littleEndian,
    };
    this.stack = [this.top];
  }

  /** Walks the next bytes; throws StructureError as soon as they cannot be right. */
  push(chunk: Uint8Array): void {
    const length = chunk.byteLength;
    let at = 0;
    let view: DataView | undefined;
    while (at < length) {
      if (this.skipLeft > 0) {
        const skipped = Math.min(this.skipLeft, length - at);
        at += skipped;
        this.position += skipped;
        this.skipLeft -= skipped;
        if (this.skipLeft === 0) this.closeEnded();
        continue;
      }
      if (this.carried === 0 && length - at >= MAX_HEADER) {
        view ??= new DataView(chunk.buffer, chunk.byteOffset, length);
        at += this.header(view, at, MAX_HEADER);
        continue;
      }
      // Near the end of the chunk: gather the header in the carry buffer, across chunks if need be.
      const before = this.carried;
      const taken = Math.min(MAX_HEADER - before, length - at);
      this.carry.set(chunk.subarray(at, at + taken), before);
      const size = this.header(this.carryView, 0, before + taken);
      if (size === 0) {
        this.carried = before + taken;
        at += taken;
      } else if (size >= before) {
        this.carried = 0;
        at += size - before;
      } else {
        // The header needed a look past its end (an implicit VR sequence check) and used fewer
        // bytes than were carried: walk the rest of the carry (at most 4 bytes) before the chunk.
        const rest = this.carry.slice(size, before + taken);
        this.carried = 0;
        at += taken;
        this.push(rest);
      }
    }
  }

  /** Called when the data set has no more bytes: throws unless it ended on a clean boundary. */
  end(): void {
    if (this.carried > 0) {
      const tag = this.carried >= 4 ? this.tagAt(this.carryView, 0) : undefined;
      const what = tag === undefined ? 'an element header' : `the header of ${formatTag(tag)}`;
      throw this.error(
        `The data set ends inside ${what} at ${this.at(this.position)}: ${this.carried} of its bytes present.`,
        this.position,
        tag,
      );
    }
    if (this.position === this.stack[0]?.start) {
      throw this.error(
        `The file has no data set: it ends at ${this.at(this.position)}, where the data set should start.`,
        this.position,
        undefined,
      );
    }
    if (this.skipLeft > 0) {
      const present = this.valueLength - this.skipLeft;
      throw this.error(
        `The data set ends inside the value of ${this.valueName()} at ${this.at(this.valueStart)}: ` +
          `${this.valueLength} bytes declared, ${present} present.`,
        this.valueStart,
        this.valueTag,
      );
    }
    const frame = this.top;
    if (frame.kind === DATA_SET) return;
    const what = describe(frame);
    const missing =
      frame.end !== -1
        ? `${frame.length} bytes declared, ${frame.length - (frame.end - this.position)} present.`
        : frame.kind === ITEM_FRAME
          ? 'its item delimiter (FFFE,E00D) is missing.'
          : 'its sequence delimiter (FFFE,E0DD) is missing.';
    throw this.error(
      `The data set ends inside ${what}, which starts at ${this.at(frame.start)}: ${missing}`,
      frame.start,
      frame.tag,
    );
  }

  /**
   * Reads the element header at `at` if `available` bytes hold all of it: returns its size and acts
   * on it, or returns 0 (and changes nothing) when more bytes are needed.
   */
  private header(view: DataView, at: number, available: number): number {
    if (available < 8) return 0;
    const frame = this.top;
    const littleEndian = frame.littleEndian;
    const tag = this.tagAt(view, at);
    const start = this.position;
    if (tag >>> 16 === 0xfffe) {
      this.itemOrDelimiter(tag, view.getUint32(at + 4, littleEndian), start, frame);
      return 8;
    }
    if (frame.kind === SEQUENCE || frame.kind === FRAGMENTS) {
      throw this.error(
        `${capitalize(describe(frame))} holds ${formatTag(tag)} at ${this.at(start)}, where an item (FFFE,E000) ` +
          'or the sequence delimiter (FFFE,E0DD) was expected.',
        start,
        tag,
      );
    }
    let size = 8;
    let length: number;
    let vr = -1;
    if (!frame.explicitVr) {
      length = view.getUint32(at + 4, littleEndian);
      // Implicit VR names no SQ: as dicom-parser (and dcmtk) read it, a defined-length value that
      // starts with an item tag is a sequence, and is walked like one.
      if (length >= 8 && length !== UNDEFINED_LENGTH && tag !== PIXEL_DATA) {
        if (available < 12) return 0;
        if (this.tagAt(view, at + 8) === ITEM) vr = VR_SQ;
      }
    } else {
      vr = vrSlot(view.getUint8(at + 4), view.getUint8(at + 5));
      if (vr < 0) throw this.invalidVr(view, at, tag, start);
      if (EXPLICIT_HEADER_SIZE[vr] === 12) {
        if (available < 12) return 0;
        size = 12;
        length = view.getUint32(at + 8, littleEndian);
      } else {
        length = view.getUint16(at + 6, littleEndian);
      }
    }
    const valueStart = start + size;
    if (valueStart > frame.limit) throw this.headerPastEnd(tag, start);
    this.position = valueStart;
    if (length === UNDEFINED_LENGTH) {
      this.openUndefined(tag, vr, start, frame);
      return size;
    }
    const end = valueStart + length;
    if (end > frame.limit) {
      throw this.error(
        `The value of ${formatTag(tag)} at ${this.at(start)} (${length} bytes) runs past the end of ` +
          `${this.limitOwner()} at ${this.at(frame.limit)}.`,
        start,
        tag,
      );
    }
    if (vr === VR_SQ) {
      this.open(SEQUENCE, tag, start, end, length, frame.explicitVr, littleEndian);
    } else if (length > 0) {
      this.skip(tag, start, length);
      return size;
    }
    this.closeEnded();
    return size;
  }

  /** An element of undefined length: a sequence, or an encapsulated value (PS3.5 7.5, A.4, 6.2.2). */
  private openUndefined(tag: number, vr: number, start: number, frame: Frame): void {
    const { explicitVr, littleEndian } = frame;
    if (!explicitVr) {
      // Implicit VR has no VR to say so: undefined length is a sequence, or encapsulated Pixel Data.
      if (tag === PIXEL_DATA) this.open(FRAGMENTS, tag, start, -1, -1, false, littleEndian);
      else this.open(SEQUENCE, tag, start, -1, -1, false, littleEndian);
    } else if (vr === VR_SQ) {
      this.open(SEQUENCE, tag, start, -1, -1, true, littleEndian);
    } else if (vr === VR_UN) {
      // A UN value of undefined length is a sequence encoded in implicit VR little endian (PS3.5 6.2.2).
      this.open(SEQUENCE, tag, start, -1, -1, false, true);
    } else if (vr === VR_OB || vr === VR_OW) {
      this.open(FRAGMENTS, tag, start, -1, -1, true, littleEndian);
    } else {
      throw this.error(
        `The element ${formatTag(tag)} at ${this.at(start)} has undefined length, which VR ${vrName(vr)} does not allow.`,
        start,
        tag,
      );
    }
  }

  /** (FFFE,xxxx): an item, an item delimiter or a sequence delimiter, each allowed only in its place. */
  private itemOrDelimiter(tag: number, length: number, start: number, frame: Frame): void {
    const valueStart = start + 8;
    if (valueStart > frame.limit) throw this.headerPastEnd(tag, start);
    this.position = valueStart;
    if (tag === ITEM && (frame.kind === SEQUENCE || frame.kind === FRAGMENTS)) {
      if (length === UNDEFINED_LENGTH) {
        if (frame.kind === FRAGMENTS) {
          throw this.error(
            `A fragment (FFFE,E000) of ${formatTag(frame.tag)} at ${this.at(start)} has undefined length; ` +
              'fragments must have a defined length.',
            start,
            tag,
          );
        }
        this.open(ITEM_FRAME, frame.tag, start, -1, -1, frame.explicitVr, frame.littleEndian);
        return;
      }
      const end = valueStart + length;
      if (end > frame.limit) {
        const what = frame.kind === FRAGMENTS ? 'A fragment (FFFE,E000)' : 'An item (FFFE,E000)';
        throw this.error(
          `${what} of ${formatTag(frame.tag)} at ${this.at(start)} (${length} bytes) runs past the end of ` +
            `${this.limitOwner()} at ${this.at(frame.limit)}.`,
          start,
          tag,
        );
      }
      if (frame.kind === FRAGMENTS) {
        if (length > 0) {
          this.skip(tag, start, length);
          return;
        }
      } else {
        this.open(ITEM_FRAME, frame.tag, start, end, length, frame.explicitVr, frame.littleEndian);
      }
      this.closeEnded();
      return;
    }
    const closes =
      (tag === SEQUENCE_DELIMITER && (frame.kind === FRAGMENTS || frame.kind === SEQUENCE)) ||
      (tag === ITEM_DELIMITER && frame.kind === ITEM_FRAME);
    if (closes && frame.end === -1) {
      if (length !== 0) {
        throw this.error(
          `The ${delimiterName(tag)} ${formatTag(tag)} at ${this.at(start)} has length ${length}; it must be 0.`,
          start,
          tag,
        );
      }
      this.close();
      this.closeEnded();
      return;
    }
    const found = `${formatTag(tag)} at ${this.at(start)} in ${describe(frame)}`;
    let why: string;
    if (tag === ITEM) why = `Unexpected item ${found}: items belong in a sequence.`;
    else if (tag !== ITEM_DELIMITER && tag !== SEQUENCE_DELIMITER) {
      why = `Unexpected ${found}: group FFFE holds only items and delimiters.`;
    } else if (closes) why = `Unexpected ${delimiterName(tag)} ${found}, which has a defined length.`;
    else why = `Unexpected ${delimiterName(tag)} ${found}, where it closes nothing.`;
    throw this.error(why, start, tag);
  }

  private open(
    kind: Kind,
    tag: number,
    start: number,
    end: number,
    length: number,
    explicitVr: boolean,
    littleEndian: boolean,
  ): void {
    if (kind === SEQUENCE) {
      if (this.depth >= this.maxDepth) {
        throw this.error(
          `Sequence ${formatTag(tag)} at ${this.at(start)} is nested more than ${this.maxDepth} sequences deep.`,
          start,
          tag,
        );
      }
      this.depth += 1;
    }
    const limit = end === -1 ? this.top.limit : end;
    this.top = { kind, tag, start, end, length, limit, explicitVr, littleEndian };
    this.stack.push(this.top);
  }

  private close(): void {
    if (this.top.kind === SEQUENCE) this.depth -= 1;
    this.stack.pop();
    const top = this.stack[this.stack.length - 1];
    if (top === undefined) throw new Error('The data set frame was closed.');
    this.top = top;
  }

  /** Closes the defined-length sequences and items that end where the walk now is. */
  private closeEnded(): void {
    while (this.top.end === this.position) this.close();
  }

  private skip(tag: number, start: number, length: number): void {
    this.skipLeft = length;
    this.valueTag = tag;
    this.valueStart = start;
    this.valueLength = length;
  }

  private tagAt(view: DataView, at: number): number {
    if (!this.top.littleEndian) return view.getUint32(at, false);
    return ((view.getUint16(at, true) << 16) | view.getUint16(at + 2, true)) >>> 0;
  }

  private valueName(): string {
    if (this.valueTag === ITEM) return `a fragment (FFFE,E000) of ${formatTag(this.top.tag)}`;
    return formatTag(this.valueTag);
  }

  /** The frame whose defined end is the current limit. */
  private limitOwner(): string {
    const limit = this.top.limit;
    for (let i = this.stack.length - 1; i >= 0; i -= 1) {
      const frame = this.stack[i];
      if (frame?.end === limit) return describe(frame);
    }
    return describe(this.top);
  }

  private headerPastEnd(tag: number, start: number): StructureError {
    return this.error(
      `The header of ${formatTag(tag)} at ${this.at(start)} runs past the end of ${this.limitOwner()} ` +
        `at ${this.at(this.top.limit)}.`,
      start,
      tag,
    );
  }

  private invalidVr(view: DataView, at: number, tag: number, start: number): StructureError {
    const bytes = [view.getUint8(at + 4), view.getUint8(at + 5)];
    const shown = bytes.map((byte) => byte.toString(16).toUpperCase().padStart(2, '0')).join(' ');
    return this.error(
      `The element ${formatTag(tag)} at ${this.at(start)} has an invalid VR (bytes ${shown}); ` +
        'a VR is one of the two-letter codes PS3.5 defines. Is the transfer syntax right?',
      start,
      tag,
    );
  }

  private at(offset: number): string {
    return `byte ${offset}${this.suffix}`;
  }

  private error(message: string, offset: number, tag: number | undefined): StructureError {
    return new StructureError(message, offset, tag === undefined ? undefined : formatTag(tag));
  }
}

function describe(frame: Frame): string {
  switch (frame.kind) {
    case DATA_SET:
      return 'the data set';
    case SEQUENCE:
      return `sequence ${formatTag(frame.tag)}`;
    case ITEM_FRAME:
      return `an item of sequence ${formatTag(frame.tag)}`;
    case FRAGMENTS:
      return `the encapsulated value of ${formatTag(frame.tag)}`;
  }
}

function delimiterName(tag: number): string {
  return tag === ITEM_DELIMITER ? 'item delimiter' : 'sequence delimiter';
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
