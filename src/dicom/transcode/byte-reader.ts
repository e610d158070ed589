import { TranscodeError } from './transcode-error.js';

/** Largest piece passed on at once, so even one huge source chunk leaves as bounded output chunks. */
export const MAX_PIECE = 256 * 1024;

/**
 * Pull-based reads over a chunked byte stream. It buffers only what a read asks for (an element
 * header, a small value, a unit split across chunks); large values are passed on as pieces.
 */
export class ByteReader {
  private chunks: Uint8Array[] = [];
  /** Offset of the first unread byte in chunks[0]. */
  private head = 0;
  private buffered = 0;
  private consumed = 0;
  private ended = false;

  constructor(private readonly source: AsyncIterator<Uint8Array>) {}

  /** Bytes consumed so far; defined-length sequences and items end at a position. */
  get position(): number {
    return this.consumed;
  }

  /** Buffers at least `n` bytes; false when the input ends first. */
  async fill(n: number): Promise<boolean> {
    while (this.buffered < n) {
      if (this.ended) return false;
      const next = await this.source.next();
      if (next.done) {
        this.ended = true;
        return false;
      }
      if (next.value.byteLength > 0) {
        this.chunks.push(next.value);
        this.buffered += next.value.byteLength;
      }
    }
    return true;
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }

  /** The next 16-bit little endian number without consuming it, or undefined at the end. */
  async peekUint16LE(): Promise<number | undefined> {
    if (!(await this.fill(2))) return undefined;
    const bytes = this.take(2, false);
    return (bytes[0] ?? 0) | ((bytes[1] ?? 0) << 8);
  }

  /** Exactly `n` bytes; `what` names them in the error when the input ends first. */
  async read(n: number, what: () => string): Promise<Uint8Array> {
    if (!(await this.fill(n))) throw this.truncated(n, what);
    return this.take(n, true);
  }

  /**
   * Yields the next `n` bytes in pieces whose lengths are multiples of `unit` (except an odd tail),
   * so each piece can be byte-swapped on its own. Pieces share the source's memory.
   */
  async *pieces(n: number, unit: number, what: () => string): AsyncGenerator<Uint8Array> {
    let remaining = n;
    while (remaining > 0) {
      const wanted = Math.min(unit, remaining);
      if (!(await this.fill(wanted))) throw this.truncated(remaining, what);
      const inFirst = (this.chunks[0]?.byteLength ?? 0) - this.head;
      let size = Math.min(remaining, inFirst, MAX_PIECE);
      if (size >= unit) size -= size % unit;
      // A unit split across two chunks is copied together.
      else size = wanted;
      remaining -= size;
      yield this.take(size, true);
    }
  }

  /** Discards the next `n` bytes without holding them. */
  async skip(n: number, what: () => string): Promise<void> {
    const pieces = this.pieces(n, 1, what);
    while (!(await pieces.next()).done) {
      // discard
    }
  }

  /** Everything not yet read: the buffered bytes, then the rest of the source. */
  async *rest(): AsyncGenerator<Uint8Array> {
    while (this.buffered > 0) yield this.take((this.chunks[0]?.byteLength ?? 0) - this.head, true);
    if (this.ended) return;
    for (;;) {
      const next = await this.source.next();
      if (next.done) return;
      this.consumed += next.value.byteLength;
      yield next.value;
    }
  }

  /** Lets the source release what it holds when reading stops early. */
  async close(): Promise<void> {
    await this.source.return?.();
  }

  /** Takes (or with consume false, peeks) `n` buffered bytes; copies only when they span chunks. */
  private take(n: number, consume: boolean): Uint8Array {
    const first = this.chunks[0];
    if (first === undefined) return new Uint8Array(0);
    let result: Uint8Array;
    if (first.byteLength - this.head >= n) {
      result = first.subarray(this.head, this.head + n);
      if (consume) this.advance(n);
      return result;
    }
    result = new Uint8Array(n);
    let offset = 0;
    let index = 0;
    let head = this.head;
    while (offset < n) {
      const chunk = this.chunks[index];
      if (chunk === undefined) break;
      const part = chunk.subarray(head, head + n - offset);
      result.set(part, offset);
      offset += part.byteLength;
      index += 1;
      head = 0;
    }
    if (consume) this.advance(n);
    return result;
  }

  private advance(n: number): void {
    this.buffered -= n;
    this.consumed += n;
    // Drop the used chunks in one splice: shifting one at a time is quadratic for tiny chunks.
    let left = n;
    let drop = 0;
    let head = this.head;
    for (let chunk = this.chunks[0]; chunk !== undefined && left > 0; chunk = this.chunks[drop]) {
      const inChunk = chunk.byteLength - head;
      if (left < inChunk) {
        head += left;
        break;
      }
      left -= inChunk;
      drop += 1;
      head = 0;
    }
    this.chunks.splice(0, drop);
    this.head = head;
  }

  private truncated(missing: number, what: () => string): TranscodeError {
    return new TranscodeError(
      `The input is truncated: it ends ${missing} byte(s) short, at offset ${this.consumed + this.buffered}, in ${what()}.`,
    );
  }
}
