import { formatTag } from '../transcode/transcode-error.js';
import { transferSyntaxInfo } from '../transfer-syntax.js';
import { EXPLICIT_HEADER_SIZE, vrSlot } from './explicit-vr.js';
import { StructureError } from './structure-error.js';

const PREAMBLE = 128;
const PREFIX_END = PREAMBLE + 4;
const DICM = 'DICM';
const GROUP_LENGTH = 0x00020000;
const TRANSFER_SYNTAX = 0x00020010;
const UNDEFINED_LENGTH = 0xffffffff;
/** A UID is at most 64 characters (PS3.5 9.1). */
const MAX_UID = 64;
const MAX_HEADER = 12;

/**
 * Walks the 128-byte preamble, "DICM" and the File Meta group (explicit VR little endian, PS3.10 7.1)
 * of a Part 10 file pushed in chunks. It keeps only the Transfer Syntax UID and the group length.
 *
 * The group ends at the first tag outside group 0002, as dicom-parser (and so the header reader)
 * reads it. A deflated data set's first bytes are compressed and could look like group 0002, so once
 * the transfer syntax says deflated and (0002,0000) is present, the group ends where that length says.
 */
export class FileMetaScanner {
  private position = 0;
  private readonly carry = new Uint8Array(MAX_HEADER);
  private readonly carryView = new DataView(this.carry.buffer);
  private carried = 0;
  /** Data set bytes taken into the carry buffer before the group was known to have ended. */
  private pending: Uint8Array = new Uint8Array(0);
  private skipLeft = 0;
  private valueTag = 0;
  private valueStart = 0;
  private valueLength = 0;
  private readonly uid = new Uint8Array(MAX_UID);
  private readonly groupLength = new Uint8Array(4);
  private capture: Uint8Array | undefined;
  private captured = 0;
  private transferSyntaxUid: string | undefined;
  private groupEnd: number | undefined;
  private complete = false;

  /** The file offset where the data set starts, once the group has ended. */
  get offset(): number {
    return this.position;
  }

  get transferSyntax(): string | undefined {
    return this.transferSyntaxUid;
  }

  /**
   * Walks the next bytes. Returns -1 while the group goes on; once it has ended, the offset in
   * `chunk` where the data set's bytes resume, after those `takePending` returns.
   */
  push(chunk: Uint8Array): number {
    const length = chunk.byteLength;
    let at = 0;
    let view: DataView | undefined;
    while (at < length) {
      if (this.position < PREFIX_END) {
        const count = Math.min(PREFIX_END - this.position, length - at);
        for (let i = 0; i < count; i += 1) {
          const offset = this.position + i;
          if (offset >= PREAMBLE && chunk[at + i] !== DICM.charCodeAt(offset - PREAMBLE)) {
            throw new StructureError(
              `The file is not a DICOM Part 10 file: "DICM" is missing at byte ${PREAMBLE}, after the preamble.`,
              PREAMBLE,
              undefined,
            );
          }
        }
        at += count;
        this.position += count;
        continue;
      }
      if (this.skipLeft > 0) {
        const count = Math.min(this.skipLeft, length - at);
        if (this.capture) {
          this.capture.set(chunk.subarray(at, at + count), this.captured);
          this.captured += count;
        }
        at += count;
        this.position += count;
        this.skipLeft -= count;
        if (this.skipLeft === 0) this.valueDone();
        continue;
      }
      let size: number;
      const before = this.carried;
      if (before === 0 && length - at >= MAX_HEADER) {
        view ??= new DataView(chunk.buffer, chunk.byteOffset, length);
        size = this.header(view, at, MAX_HEADER);
      } else {
        const taken = Math.min(MAX_HEADER - before, length - at);
        this.carry.set(chunk.subarray(at, at + taken), before);
        size = this.header(this.carryView, 0, before + taken);
        if (size === 0) {
          this.carried = before + taken;
          at += taken;
          continue;
        }
        this.carried = 0;
        if (size > 0) size -= before;
      }
      if (size < 0) {
        this.complete = true;
        this.pending = this.carry.slice(0, before);
        return at;
      }
      at += size;
    }
    return -1;
  }

  /** The data set's bytes that were held back while telling whether the group had ended. */
  takePending(): Uint8Array {
    const pending = this.pending;
    this.pending = new Uint8Array(0);
    return pending;
  }

  /** At the end of the file: throws unless the group ended on a clean boundary. */
  end(): void {
    if (this.complete) return;
    if (this.position === 0) throw new StructureError('The part is empty: it holds no bytes at all.', 0, undefined);
    if (this.position < PREFIX_END) {
      throw new StructureError(
        `The file ends at byte ${this.position}, before the 128-byte preamble and "DICM" prefix are complete.`,
        this.position,
        undefined,
      );
    }
    if (this.carried > 0) {
      throw new StructureError(
        `The file ends inside the header of a File Meta element at byte ${this.position}: ` +
          `${this.carried} of its bytes present.`,
        this.position,
        undefined,
      );
    }
    if (this.skipLeft > 0) {
      throw new StructureError(
        `The file ends inside the value of ${formatTag(this.valueTag)} at byte ${this.valueStart}: ` +
          `${this.valueLength} bytes declared, ${this.valueLength - this.skipLeft} present.`,
        this.valueStart,
        formatTag(this.valueTag),
      );
    }
    if (this.groupEnd !== undefined && this.position < this.groupEnd) {
      throw new StructureError(
        `The file ends at byte ${this.position}, inside the File Meta group, which (0002,0000) says ends ` +
          `at byte ${this.groupEnd}.`,
        this.position,
        formatTag(GROUP_LENGTH),
      );
    }
    this.complete = true;
  }

  /**
   * Reads the File Meta element header at `at`: returns its size, 0 when more bytes are needed, or
   * -1 when the group has ended here.
   */
  private header(view: DataView, at: number, available: number): number {
    const start = this.position;
    const bounded = this.groupEnd !== undefined && this.transferSyntaxUid !== undefined && this.isDeflated();
    if (bounded && start === this.groupEnd) return -1;
    if (available < 2) return 0;
    if (view.getUint16(at, true) !== 0x0002) {
      if (!bounded) return -1;
      throw new StructureError(
        `The File Meta group length (0002,0000) puts the end of the group at byte ${this.groupEnd ?? 0}, ` +
          `but it ends at byte ${start}.`,
        start,
        formatTag(GROUP_LENGTH),
      );
    }
    if (available < 8) return 0;
    const tag = ((view.getUint16(at, true) << 16) | view.getUint16(at + 2, true)) >>> 0;
    const vr = vrSlot(view.getUint8(at + 4), view.getUint8(at + 5));
    if (vr < 0) {
      throw new StructureError(
        `The File Meta element ${formatTag(tag)} at byte ${start} has an invalid VR (not one PS3.5 defines); the group is explicit VR little endian.`,
        start,
        formatTag(tag),
      );
    }
    let size = 8;
    let length: number;
    if (EXPLICIT_HEADER_SIZE[vr] === 12) {
      if (available < 12) return 0;
      size = 12;
      length = view.getUint32(at + 8, true);
    } else {
      length = view.getUint16(at + 6, true);
    }
    if (length === UNDEFINED_LENGTH) {
      throw new StructureError(
        `The File Meta element ${formatTag(tag)} at byte ${start} has undefined length.`,
        start,
        formatTag(tag),
      );
    }
    const valueStart = start + size;
    if (bounded && valueStart + length > (this.groupEnd ?? 0)) {
      throw new StructureError(
        `The File Meta element ${formatTag(tag)} at byte ${start} runs past the end of the group that ` +
          `(0002,0000) declares, at byte ${this.groupEnd ?? 0}.`,
        start,
        formatTag(tag),
      );
    }
    this.capture = undefined;
    this.captured = 0;
    if (tag === TRANSFER_SYNTAX) {
      if (length > MAX_UID) {
        throw new StructureError(
          `The Transfer Syntax UID (0002,0010) at byte ${start} is ${length} bytes long; a UID has at most ${MAX_UID}.`,
          start,
          formatTag(tag),
        );
      }
      this.capture = this.uid;
    } else if (tag === GROUP_LENGTH && length === 4) {
      this.capture = this.groupLength;
    }
    this.position = valueStart;
    this.valueTag = tag;
    this.valueStart = start;
    this.valueLength = length;
    this.skipLeft = length;
    if (length === 0) this.valueDone();
    return size;
  }

  private valueDone(): void {
    if (this.capture === this.uid) {
      this.transferSyntaxUid = String.fromCharCode(...this.uid.subarray(0, this.captured)).replace(/[\0 ]+$/, '');
    } else if (this.capture === this.groupLength) {
      const bytes = this.groupLength;
      const length =
        ((bytes[0] ?? 0) | ((bytes[1] ?? 0) << 8) | ((bytes[2] ?? 0) << 16) | ((bytes[3] ?? 0) << 24)) >>> 0;
      this.groupEnd = this.position + length;
    }
    this.capture = undefined;
  }

  private isDeflated(): boolean {
    return transferSyntaxInfo(this.transferSyntaxUid ?? '')?.deflated === true;
  }
}
