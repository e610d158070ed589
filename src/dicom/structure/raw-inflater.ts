import { StructureError } from './structure-error.js';

const HEADER = 0;
const STORED = 1;
const CODES = 2;
const DONE = 3;
type Mode = typeof HEADER | typeof STORED | typeof CODES | typeof DONE;

const WINDOW = 32 * 1024;
/** History plus 64 KiB of new output between slides. */
const OUTPUT = 3 * WINDOW;
const MAX_MATCH = 258;
const MAX_BITS = 15;
const MAX_LITERALS = 286;
const MAX_DISTANCES = 30;

/** Numbers written in a line, separated by spaces. */
function numbers(list: string): number[] {
  return list.split(' ').map(Number);
}

/** Length symbols 257-285: base lengths and extra bits (RFC 1951 3.2.5). */
const LENGTH_BASE = Uint16Array.from(
  numbers('3 4 5 6 7 8 9 10 11 13 15 17 19 23 27 31 35 43 51 59 67 83 99 115 131 163 195 227 258'),
);
const LENGTH_EXTRA = Uint8Array.from(numbers('0 0 0 0 0 0 0 0 1 1 1 1 2 2 2 2 3 3 3 3 4 4 4 4 5 5 5 5 0'));
/** Distance symbols 0-29: base distances and extra bits. */
const DISTANCE_BASE = Uint16Array.from(
  numbers(
    '1 2 3 4 5 7 9 13 17 25 33 49 65 97 129 193 257 385 513 769 1025 1537 2049 3073 4097 6145 8193 12289 16385 24577',
  ),
);
const DISTANCE_EXTRA = Uint8Array.from(numbers('0 0 0 0 1 1 2 2 3 3 4 4 5 5 6 6 7 7 8 8 9 9 10 10 11 11 12 12 13 13'));
/** The order code length code lengths come in (RFC 1951 3.2.7). */
const CODE_LENGTH_ORDER = Uint8Array.from(numbers('16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1 15'));

const CODE_LENGTH_CODES = 0;
const LITERAL_CODES = 1;
const DISTANCE_CODES = 2;
type CodeKind = typeof CODE_LENGTH_CODES | typeof LITERAL_CODES | typeof DISTANCE_CODES;

/** Bit-reversed 8-bit values: DEFLATE packs Huffman codes most significant bit first. */
const REVERSED = new Uint8Array(256);
for (let i = 0; i < 256; i += 1) {
  let reversed = 0;
  for (let bit = 0; bit < 8; bit += 1) reversed |= ((i >>> bit) & 1) << (7 - bit);
  REVERSED[i] = reversed;
}

/**
 * Fills a lookup table indexed by the next `bits` input bits (least significant first) with
 * `symbol << 4 | code length`; 0 marks bit patterns no code starts with. Returns the table's bits,
 * or why the code lengths are invalid (zlib's rules: never over-subscribed; incomplete only for a
 * literal or distance code of a single 1-bit code).
 */
function buildTable(
  lengths: Uint8Array,
  from: number,
  count: number,
  table: Uint16Array,
  kind: CodeKind,
): number | string {
  const counts = new Uint16Array(MAX_BITS + 1);
  for (let i = 0; i < count; i += 1) {
    const length = lengths[from + i] ?? 0;
    counts[length] = (counts[length] ?? 0) + 1;
  }
  counts[0] = 0;
  let max = MAX_BITS;
  while (max > 0 && counts[max] === 0) max -= 1;
  const bits = Math.max(max, 1);
  const size = 1 << bits;
  table.fill(0, 0, size);
  // No codes at all: every entry stays invalid, which only matters if one is used.
  if (max === 0) return kind === CODE_LENGTH_CODES ? 'the code length code is empty' : bits;
  let left = 1;
  for (let length = 1; length <= MAX_BITS; length += 1) {
    left = left * 2 - (counts[length] ?? 0);
    if (left < 0) return 'a Huffman code is over-subscribed';
  }
  if (left > 0 && (kind === CODE_LENGTH_CODES || max !== 1)) return 'a Huffman code is incomplete';
  const next = new Uint16Array(MAX_BITS + 2);
  let code = 0;
  for (let length = 1; length <= MAX_BITS; length += 1) {
    code = (code + (counts[length - 1] ?? 0)) << 1;
    next[length] = code;
  }
  for (let symbol = 0; symbol < count; symbol += 1) {
    const length = lengths[from + symbol] ?? 0;
    if (length === 0) continue;
    const value = next[length] ?? 0;
    next[length] = value + 1;
    const reversed = (((REVERSED[value & 0xff] ?? 0) << 8) | (REVERSED[value >>> 8] ?? 0)) >>> (16 - length);
    const entry = (symbol << 4) | length;
    for (let slot = reversed; slot < size; slot += 1 << length) table[slot] = entry;
  }
  return bits;
}

/** The fixed codes of block type 1 (RFC 1951 3.2.6), built once. */
const FIXED = (() => {
  const lengths = new Uint8Array(288 + 32);
  lengths.fill(8, 0, 144);
  lengths.fill(9, 144, 256);
  lengths.fill(7, 256, 280);
  lengths.fill(8, 280, 288);
  lengths.fill(5, 288, 320);
  const literals = new Uint16Array(1 << 9);
  const distances = new Uint16Array(1 << 5);
  const literalBits = buildTable(lengths, 0, 288, literals, LITERAL_CODES);
  const distanceBits = buildTable(lengths, 288, 32, distances, DISTANCE_CODES);
  if (typeof literalBits === 'string' || typeof distanceBits === 'string') throw new Error('Fixed Huffman codes');
  return { literals, literalBits, distances, distanceBits };
})();

/**
 * A synchronous, push-based raw DEFLATE decoder (RFC 1951) for the Deflated Explicit VR Little
 * Endian data set (PS3.5 A.5), with bounded memory: a 96 KiB output buffer of which 32 KiB is the
 * history matches refer to, two 32 K-entry code tables, and fewer than 600 bytes of input held across
 * pushes (the most a block header with its code tables takes).
 *
 * Why not node:zlib: its streams are asynchronous, so `push` could not throw as soon as the data set
 * breaks, and its synchronous API is one-shot. `inflateRawSync` on each chunk loses the decoder state
 * between chunks (and with Z_SYNC_FLUSH only hides that), and `Inflate#_processChunk` without a
 * callback closes its handle after one call. Inflating everything at the end would hold the whole
 * file. This decoder keeps its state between pushes instead: each step (a block header, one literal
 * or one length-distance pair) either completes or is rolled back to its start to wait for more input.
 *
 * Inflated bytes go to the sink in pieces of at most 96 KiB, which it must not keep: the buffer is
 * reused. Checks are zlib's: block type, stored length complement, over-subscribed or incomplete code
 * sets, repeat codes, missing end-of-block code, invalid codes, distances beyond the output so far.
 * After the last block only a single 00H pad byte may follow (pydicom pads to even length).
 */
export class RawInflater {
  /** Input not yet decoded: the rest of a chunk, or a rolled-back step and the next chunk. */
  private data: Uint8Array = new Uint8Array(0);
  private pos = 0;
  /** File offset of data[0]. */
  private dataOffset: number;
  private bitBuffer = 0;
  private bitCount = 0;
  private mode: Mode = HEADER;
  private lastBlock = false;
  private storedLeft = 0;
  /** File offset just past the deflate stream's last byte, once it has ended. */
  private streamEnd = 0;
  private trailing = 0;

  private readonly out = new Uint8Array(OUTPUT);
  private outPos = 0;
  private flushed = 0;

  private readonly literalTable = new Uint16Array(1 << MAX_BITS);
  private readonly distanceTable = new Uint16Array(1 << MAX_BITS);
  private readonly codeLengthTable = new Uint16Array(1 << 7);
  private readonly lengths = new Uint8Array(MAX_LITERALS + MAX_DISTANCES);
  private literals: Uint16Array = FIXED.literals;
  private literalBits = FIXED.literalBits;
  private distances: Uint16Array = FIXED.distances;
  private distanceBits = FIXED.distanceBits;

  /** `start` is the file offset of the first compressed byte, for messages. */
  constructor(
    private readonly sink: (bytes: Uint8Array) => void,
    start: number,
  ) {
    this.dataOffset = start;
  }

  get finished(): boolean {
    return this.mode === DONE;
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    if (this.mode === DONE) {
      this.checkTrailing(chunk, 0);
      return;
    }
    if (this.pos < this.data.byteLength) {
      const rest = this.data.subarray(this.pos);
      const joined = new Uint8Array(rest.byteLength + chunk.byteLength);
      joined.set(rest, 0);
      joined.set(chunk, rest.byteLength);
      this.dataOffset += this.pos;
      this.data = joined;
    } else {
      this.dataOffset += this.data.byteLength;
      // A plain Uint8Array view (not a Buffer) keeps the hot loop's element reads monomorphic.
      this.data = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
    this.pos = 0;
    this.run();
    this.flush();
    if (this.finished) {
      // Whole bytes read ahead into the bit buffer follow the stream's last bit, like the rest.
      this.streamEnd = this.dataOffset + this.pos - (this.bitCount >>> 3);
      const partial = this.bitCount & 7;
      for (let count = partial; count < this.bitCount; count += 8) this.trail((this.bitBuffer >>> count) & 0xff);
      this.bitCount = partial;
      this.checkTrailing(this.data, this.pos);
      this.data = new Uint8Array(0);
      this.pos = 0;
      return;
    }
    // Keep only the undecoded tail (a rolled-back step), copied so the caller's chunk is not held.
    this.dataOffset += this.pos;
    this.data = Uint8Array.prototype.slice.call(this.data, this.pos);
    this.pos = 0;
  }

  /** Throws unless the deflate stream has ended. */
  end(): void {
    if (this.mode === DONE) return;
    const at = this.dataOffset + this.data.byteLength;
    throw new StructureError(
      `The deflated data set ends early: the compressed stream is cut short at byte ${at} of the file.`,
      at,
      undefined,
    );
  }

  private run(): void {
    for (;;) {
      const mode = this.mode;
      const progressed =
        mode === HEADER ? this.blockHeader() : mode === STORED ? this.stored() : mode === CODES && this.codes();
      if (!progressed || this.mode === DONE) return;
    }
  }

  /** Reads a block header (with its code tables); false, with nothing consumed, if input runs out. */
  private blockHeader(): boolean {
    const pos = this.pos;
    const bitBuffer = this.bitBuffer;
    const bitCount = this.bitCount;
    if (this.readBlockHeader()) return true;
    this.pos = pos;
    this.bitBuffer = bitBuffer;
    this.bitCount = bitCount;
    return false;
  }

  private readBlockHeader(): boolean {
    if (!this.need(3)) return false;
    const header = this.bits(3);
    this.lastBlock = (header & 1) === 1;
    switch (header >>> 1) {
      case 0: {
        this.dropBits(this.bitCount & 7);
        if (!this.need(16)) return false;
        const length = this.bits(16);
        if (!this.need(16)) return false;
        const complement = this.bits(16);
        if (length !== (~complement & 0xffff)) throw this.corrupt('a stored block has a bad length check');
        this.storedLeft = length;
        this.mode = STORED;
        return true;
      }
      case 1:
        this.literals = FIXED.literals;
        this.literalBits = FIXED.literalBits;
        this.distances = FIXED.distances;
        this.distanceBits = FIXED.distanceBits;
        this.mode = CODES;
        return true;
      case 2:
        return this.dynamicTables();
      default:
        throw this.corrupt('a block has the invalid type 3');
    }
  }

  private dynamicTables(): boolean {
    if (!this.need(14)) return false;
    const literalCount = this.bits(5) + 257;
    const distanceCount = this.bits(5) + 1;
    const codeLengthCount = this.bits(4) + 4;
    if (literalCount > MAX_LITERALS || distanceCount > MAX_DISTANCES) {
      throw this.corrupt('a block has too many length or distance symbols');
    }
    const lengths = this.lengths;
    lengths.fill(0, 0, 19);
    for (let i = 0; i < codeLengthCount; i += 1) {
      if (!this.need(3)) return false;
      lengths[CODE_LENGTH_ORDER[i] ?? 0] = this.bits(3);
    }
    const codeLengthBits = this.build(lengths, 0, 19, this.codeLengthTable, CODE_LENGTH_CODES);
    const total = literalCount + distanceCount;
    let i = 0;
    while (i < total) {
      const symbol = this.decode(this.codeLengthTable, codeLengthBits);
      if (symbol < 0) return false;
      if (symbol < 16) {
        lengths[i++] = symbol;
        continue;
      }
      let value = 0;
      let repeat: number;
      if (symbol === 16) {
        if (i === 0) throw this.corrupt('a code length repeat has nothing to repeat');
        value = lengths[i - 1] ?? 0;
        if (!this.need(2)) return false;
        repeat = 3 + this.bits(2);
      } else if (symbol === 17) {
        if (!this.need(3)) return false;
        repeat = 3 + this.bits(3);
      } else {
        if (!this.need(7)) return false;
        repeat = 11 + this.bits(7);
      }
      if (i + repeat > total) throw this.corrupt('a code length repeat runs past the code lengths');
      lengths.fill(value, i, i + repeat);
      i += repeat;
    }
    if (lengths[256] === 0) throw this.corrupt('a block has no end-of-block code');
    this.literalBits = this.build(lengths, 0, literalCount, this.literalTable, LITERAL_CODES);
    this.literals = this.literalTable;
    this.distanceBits = this.build(lengths, literalCount, distanceCount, this.distanceTable, DISTANCE_CODES);
    this.distances = this.distanceTable;
    this.mode = CODES;
    return true;
  }

  /** Copies a stored block's bytes; false when input runs out first. */
  private stored(): boolean {
    const out = this.out;
    // Whole bytes already in the bit buffer come first.
    while (this.storedLeft > 0 && this.bitCount >= 8) {
      if (this.outPos === OUTPUT) this.slide();
      out[this.outPos++] = this.bits(8);
      this.storedLeft -= 1;
    }
    while (this.storedLeft > 0) {
      const available = this.data.byteLength - this.pos;
      if (available === 0) return false;
      if (this.outPos === OUTPUT) this.slide();
      const count = Math.min(this.storedLeft, available, OUTPUT - this.outPos);
      out.set(this.data.subarray(this.pos, this.pos + count), this.outPos);
      this.outPos += count;
      this.pos += count;
      this.storedLeft -= count;
    }
    this.mode = this.lastBlock ? DONE : HEADER;
    return true;
  }

  /** Decodes literals and matches up to the end of the block; false when input runs out first. */
  private codes(): boolean {
    return this.fastCodes() || this.carefulCodes();
  }

  /**
   * The hot loop, while at least 8 input bytes are left: one symbol with its extra bits and distance
   * takes at most 48 bits, so no read needs checking. State lives in locals until it returns; true
   * at the end of the block, false when fewer than 8 bytes are left.
   */
  private fastCodes(): boolean {
    const out = this.out;
    const data = this.data;
    const safeEnd = data.byteLength - 8;
    const literals = this.literals;
    const literalMask = (1 << this.literalBits) - 1;
    const distances = this.distances;
    const distanceMask = (1 << this.distanceBits) - 1;
    let pos = this.pos;
    let bitBuffer = this.bitBuffer;
    let bitCount = this.bitCount;
    let outPos = this.outPos;
    let endOfBlock = false;
    while (pos <= safeEnd) {
      if (outPos > OUTPUT - MAX_MATCH) {
        this.outPos = outPos;
        this.slide();
        outPos = this.outPos;
      }
      while (bitCount < MAX_BITS) {
        bitBuffer |= (data[pos++] ?? 0) << bitCount;
        bitCount += 8;
      }
      let entry = literals[bitBuffer & literalMask] ?? 0;
      if (entry === 0) throw this.corruptAt(pos, 'an invalid code');
      let bits = entry & 15;
      bitBuffer >>>= bits;
      bitCount -= bits;
      let symbol = entry >>> 4;
      if (symbol < 256) {
        out[outPos++] = symbol;
        continue;
      }
      if (symbol === 256) {
        endOfBlock = true;
        break;
      }
      symbol -= 257;
      if (symbol >= 29) throw this.corruptAt(pos, 'an invalid length code');
      let length = LENGTH_BASE[symbol] ?? 0;
      bits = LENGTH_EXTRA[symbol] ?? 0;
      if (bits > 0) {
        while (bitCount < bits) {
          bitBuffer |= (data[pos++] ?? 0) << bitCount;
          bitCount += 8;
        }
        length += bitBuffer & ((1 << bits) - 1);
        bitBuffer >>>= bits;
        bitCount -= bits;
      }
      while (bitCount < MAX_BITS) {
        bitBuffer |= (data[pos++] ?? 0) << bitCount;
        bitCount += 8;
      }
      entry = distances[bitBuffer & distanceMask] ?? 0;
      if (entry === 0) throw this.corruptAt(pos, 'an invalid distance code');
      bits = entry & 15;
      bitBuffer >>>= bits;
      bitCount -= bits;
      const code = entry >>> 4;
      if (code >= 30) throw this.corruptAt(pos, 'an invalid distance code');
      let distance = DISTANCE_BASE[code] ?? 0;
      bits = DISTANCE_EXTRA[code] ?? 0;
      if (bits > 0) {
        while (bitCount < bits) {
          bitBuffer |= (data[pos++] ?? 0) << bitCount;
          bitCount += 8;
        }
        distance += bitBuffer & ((1 << bits) - 1);
        bitBuffer >>>= bits;
        bitCount -= bits;
      }
      // After the first slide 32 KiB of history always precede outPos, so only the start can fail.
      if (distance > outPos) throw this.corruptAt(pos, 'a distance reaches back before the start of the data');
      let from = outPos - distance;
      if (length > 32 && distance >= length) {
        out.copyWithin(outPos, from, from + length);
        outPos += length;
      } else {
        // Byte by byte: faster for short copies, and right for overlapping ones, which repeat
        // bytes they have just written.
        for (const end = outPos + length; outPos < end;) out[outPos++] = out[from++] ?? 0;
      }
    }
    // A throw above ends the inflater for good, so only its offset is saved then.
    this.pos = pos;
    this.bitBuffer = bitBuffer;
    this.bitCount = bitCount;
    this.outPos = outPos;
    if (endOfBlock) this.mode = this.lastBlock ? DONE : HEADER;
    return endOfBlock;
  }

  /** The last 7 input bytes: each symbol is rolled back whole when the input ends inside it. */
  private carefulCodes(): boolean {
    const out = this.out;
    for (;;) {
      if (this.outPos > OUTPUT - MAX_MATCH) this.slide();
      const pos = this.pos;
      const bitBuffer = this.bitBuffer;
      const bitCount = this.bitCount;
      let symbol = this.decode(this.literals, this.literalBits);
      if (symbol < 256) {
        if (symbol < 0) return this.rollBack(pos, bitBuffer, bitCount);
        out[this.outPos++] = symbol;
        continue;
      }
      if (symbol === 256) {
        this.mode = this.lastBlock ? DONE : HEADER;
        return true;
      }
      symbol -= 257;
      if (symbol >= 29) throw this.corrupt('an invalid length code');
      let length = LENGTH_BASE[symbol] ?? 0;
      const lengthExtra = LENGTH_EXTRA[symbol] ?? 0;
      if (lengthExtra > 0) {
        if (!this.need(lengthExtra)) return this.rollBack(pos, bitBuffer, bitCount);
        length += this.bits(lengthExtra);
      }
      const code = this.decode(this.distances, this.distanceBits);
      if (code < 0) return this.rollBack(pos, bitBuffer, bitCount);
      if (code >= 30) throw this.corrupt('an invalid distance code');
      let distance = DISTANCE_BASE[code] ?? 0;
      const distanceExtra = DISTANCE_EXTRA[code] ?? 0;
      if (distanceExtra > 0) {
        if (!this.need(distanceExtra)) return this.rollBack(pos, bitBuffer, bitCount);
        distance += this.bits(distanceExtra);
      }
      if (distance > this.outPos) throw this.corrupt('a distance reaches back before the start of the data');
      let from = this.outPos - distance;
      for (const end = this.outPos + length; this.outPos < end;) out[this.outPos++] = out[from++] ?? 0;
    }
  }

  private rollBack(pos: number, bitBuffer: number, bitCount: number): false {
    this.pos = pos;
    this.bitBuffer = bitBuffer;
    this.bitCount = bitCount;
    return false;
  }

  /** Passes on the new output, then keeps its last 32 KiB as history at the start of the buffer. */
  private slide(): void {
    this.flush();
    this.out.copyWithin(0, this.outPos - WINDOW, this.outPos);
    this.outPos = WINDOW;
    this.flushed = WINDOW;
  }

  private flush(): void {
    if (this.outPos === this.flushed) return;
    const piece = this.out.subarray(this.flushed, this.outPos);
    this.flushed = this.outPos;
    this.sink(piece);
  }

  /** Ensures `n` (at most 16) bits are buffered; false when the input runs out first. */
  private need(n: number): boolean {
    while (this.bitCount < n) {
      if (this.pos >= this.data.byteLength) return false;
      this.bitBuffer |= (this.data[this.pos++] ?? 0) << this.bitCount;
      this.bitCount += 8;
    }
    return true;
  }

  private bits(n: number): number {
    const value = this.bitBuffer & ((1 << n) - 1);
    this.bitBuffer >>>= n;
    this.bitCount -= n;
    return value;
  }

  private dropBits(n: number): void {
    this.bitBuffer >>>= n;
    this.bitCount -= n;
  }

  /**
   * The next symbol of a code, or -1 when the input ends inside it. With fewer than `bits` bits at
   * hand the missing high bits read as 0; an entry no longer than the bits at hand is still right,
   * because a code's entry fills every slot that shares its low bits.
   */
  private decode(table: Uint16Array, bits: number): number {
    while (this.bitCount < bits && this.pos < this.data.byteLength) {
      this.bitBuffer |= (this.data[this.pos++] ?? 0) << this.bitCount;
      this.bitCount += 8;
    }
    const entry = table[this.bitBuffer & ((1 << bits) - 1)] ?? 0;
    const length = entry & 15;
    if (entry === 0 || length > this.bitCount) {
      if (entry === 0 && this.bitCount >= bits) throw this.corrupt('an invalid code');
      return -1;
    }
    this.bitBuffer >>>= length;
    this.bitCount -= length;
    return entry >>> 4;
  }

  /** Fills `table` for the code given by `count` lengths from `lengths[from]`; returns its bits. */
  private build(lengths: Uint8Array, from: number, count: number, table: Uint16Array, kind: CodeKind): number {
    const result = buildTable(lengths, from, count, table, kind);
    if (typeof result === 'string') throw this.corrupt(result);
    return result;
  }

  private trail(byte: number): void {
    const at = this.streamEnd + this.trailing;
    this.trailing += 1;
    if (this.trailing > 1 || byte !== 0) {
      throw new StructureError(
        `The deflated data set has bytes after its end: byte ${at} of the file follows the end of the ` +
          'deflate stream, where only a single 00H pad byte may.',
        at,
        undefined,
      );
    }
  }

  private checkTrailing(bytes: Uint8Array, from: number): void {
    for (let i = from; i < bytes.byteLength; i += 1) this.trail(bytes[i] ?? 0);
  }

  private corrupt(what: string): StructureError {
    return this.corruptAt(this.pos, what);
  }

  private corruptAt(pos: number, what: string): StructureError {
    const at = this.dataOffset + pos;
    return new StructureError(`The deflated data set is corrupt near byte ${at} of the file: ${what}.`, at, undefined);
  }
}
