import { type Encoding, ITEM, ITEM_DELIMITER, SEQUENCE_DELIMITER, type Token } from './element-reader.js';
import { formatTag, TranscodeError } from './transcode-error.js';
import { hasLongLength, MAX_SHORT_LENGTH, swapUnit } from './vr-encoding.js';

/** Small headers and values are gathered into output chunks of about this size. */
const FLUSH_AT = 64 * 1024;
const UNDEFINED_LENGTH = 0xffffffff;

/**
 * Encodes tokens in `encoding`. Sequences and items are always written with undefined length and
 * delimiters: their content length changes with the VR encoding and is unknown until streamed.
 */
export async function* writeDataSet(tokens: AsyncIterable<Token>, encoding: Encoding): AsyncGenerator<Uint8Array> {
  const out = new Output(encoding.littleEndian);
  let unit: number = 1;
  for await (const token of tokens) {
    switch (token.type) {
      case 'element': {
        unit = token.littleEndian === encoding.littleEndian ? 1 : swapUnit(token.vr);
        if (token.length % unit !== 0) {
          throw new TranscodeError(
            `Element ${formatTag(token.tag)} (${token.vr}) has length ${token.length}, not a multiple of ${unit}, so its byte order cannot be changed.`,
          );
        }
        out.tag(token.tag);
        if (encoding.explicitVr) {
          // A value too long for a 16-bit length is written as UN (PS3.5 6.2.2, CP-1066).
          const vr = !hasLongLength(token.vr) && token.length > MAX_SHORT_LENGTH ? 'UN' : token.vr;
          out.vr(vr);
          if (hasLongLength(vr)) out.uint32(token.length, 2);
          else out.uint16(token.length);
        } else out.uint32(token.length);
        if (token.value) out.bytes(swapped(token.value, unit));
        break;
      }
      case 'chunk': {
        // Large pieces go straight out; small ones (from small input chunks) are gathered first.
        if (token.bytes.byteLength < FLUSH_AT) {
          out.bytes(swapped(token.bytes, unit));
          break;
        }
        const pending = out.take();
        if (pending) yield pending;
        yield swapped(token.bytes, unit);
        break;
      }
      case 'sequence':
        out.tag(token.tag);
        if (encoding.explicitVr) {
          out.vr('SQ');
          out.uint32(UNDEFINED_LENGTH, 2);
        } else out.uint32(UNDEFINED_LENGTH);
        break;
      case 'item':
        out.tag(ITEM);
        out.uint32(UNDEFINED_LENGTH);
        break;
      case 'item-end':
        out.tag(ITEM_DELIMITER);
        out.uint32(0);
        break;
      case 'sequence-end':
      case 'fragments-end':
        out.tag(SEQUENCE_DELIMITER);
        out.uint32(0);
        break;
      case 'fragments':
        // Encapsulated syntaxes are all explicit VR little endian (PS3.5 A.4).
        out.tag(token.tag);
        out.vr('OB');
        out.uint32(UNDEFINED_LENGTH, 2);
        break;
      case 'fragment': {
        out.tag(ITEM);
        out.uint32(token.bytes.byteLength);
        const pending = out.take();
        if (pending) yield pending;
        if (token.bytes.byteLength > 0) yield token.bytes;
        break;
      }
    }
    if (out.size >= FLUSH_AT) {
      const full = out.take();
      if (full) yield full;
    }
  }
  const last = out.take();
  if (last) yield last;
}

/** A copy of `bytes` with each `unit`-byte value reversed; the source's buffers are never changed. */
function swapped(bytes: Uint8Array, unit: number): Uint8Array {
  if (unit === 1 || bytes.byteLength === 0) return bytes;
  const copy = Buffer.from(bytes);
  if (unit === 2) copy.swap16();
  else if (unit === 4) copy.swap32();
  else copy.swap64();
  return copy;
}

/** Collects small encoded pieces until they are worth yielding as one chunk. */
class Output {
  private parts: Uint8Array[] = [];
  size = 0;

  constructor(private readonly littleEndian: boolean) {}

  tag(tag: number): void {
    const bytes = Buffer.allocUnsafe(4);
    if (this.littleEndian) {
      bytes.writeUInt16LE(tag >>> 16, 0);
      bytes.writeUInt16LE(tag & 0xffff, 2);
    } else bytes.writeUInt32BE(tag >>> 0, 0);
    this.bytes(bytes);
  }

  vr(vr: string): void {
    this.bytes(Buffer.from(vr, 'latin1'));
  }

  uint16(value: number): void {
    const bytes = Buffer.allocUnsafe(2);
    if (this.littleEndian) bytes.writeUInt16LE(value);
    else bytes.writeUInt16BE(value);
    this.bytes(bytes);
  }

  /** A 32-bit number, after `reserved` zero bytes (the explicit long-length header form). */
  uint32(value: number, reserved = 0): void {
    const bytes = Buffer.alloc(reserved + 4);
    if (this.littleEndian) bytes.writeUInt32LE(value, reserved);
    else bytes.writeUInt32BE(value, reserved);
    this.bytes(bytes);
  }

  bytes(bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return;
    this.parts.push(bytes);
    this.size += bytes.byteLength;
  }

  /** The collected bytes as one chunk, or undefined when there are none. */
  take(): Uint8Array | undefined {
    if (this.size === 0) return undefined;
    const chunk = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    return chunk;
  }
}
