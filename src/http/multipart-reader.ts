import { DicomwebError } from '../dicomweb/errors.js';
import { drain } from '../util/streams.js';

export interface MultipartLimits {
  /** Largest header block of one part, in bytes. */
  readonly maxPartHeaderBytes: number;
  /** Largest preamble before the first boundary. */
  readonly maxPreambleBytes: number;
}

export const DEFAULT_MULTIPART_LIMITS: MultipartLimits = { maxPartHeaderBytes: 16 * 1024, maxPreambleBytes: 64 * 1024 };

export interface MultipartPart {
  /** Header names in lower case. */
  readonly headers: ReadonlyMap<string, string>;
  /** The part's bytes; must be consumed (or abandoned) before the next part is read. */
  readonly body: AsyncIterable<Uint8Array>;
}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

function malformed(message: string): DicomwebError {
  return new DicomwebError('MalformedMultipart', message);
}

/**
 * A streaming multipart/related reader (RFC 2046 §5.1, RFC 2387). Bytes are passed on as they
 * arrive; the reader holds back only what could be the start of a delimiter, so its memory is
 * bounded by the larger of a network chunk and the part-header limit, whatever the part size.
 * Inside a part's body the network chunks are passed on as views, never copied.
 */
export class MultipartReader {
  private readonly delimiter: Buffer;
  private readonly source: AsyncIterator<Uint8Array>;
  /** Starts with CRLF so a body that begins directly with the first boundary needs no special case. */
  private buffer: Buffer = Buffer.from(CRLF);
  private ended = false;

  constructor(
    body: AsyncIterable<Uint8Array>,
    boundary: string,
    private readonly limits: MultipartLimits = DEFAULT_MULTIPART_LIMITS,
  ) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
    this.source = body[Symbol.asyncIterator]();
  }

  async *parts(): AsyncGenerator<MultipartPart> {
    await this.skipPreamble();
    for (;;) {
      if (await this.atCloseDelimiter()) {
        await this.discardEpilogue();
        return;
      }
      const headers = await this.readHeaders();
      let finished = false;
      const body = this.partBody(() => (finished = true));
      yield { headers, body };
      // The consumer may have stopped early: a fresh reader over the same buffer skips the rest.
      if (!finished) await drain(this.partBody(() => (finished = true)));
    }
  }

  /** The next chunk of the body, undefined at its end. */
  private async next(): Promise<Buffer | undefined> {
    if (this.ended) return undefined;
    const next = await this.source.next();
    if (next.done) {
      this.ended = true;
      return undefined;
    }
    return Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
  }

  /**
   * Pulls one more chunk into the buffer; false at the end of the body. Only used where the
   * buffer is small (preamble tail, boundary line, part headers), so the copy is bounded.
   */
  private async fill(): Promise<boolean> {
    const chunk = await this.next();
    if (chunk === undefined) return false;
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    return true;
  }

  private async skipPreamble(): Promise<void> {
    let skipped = 0;
    for (;;) {
      const at = this.buffer.indexOf(this.delimiter);
      if (at >= 0) {
        this.buffer = this.buffer.subarray(at + this.delimiter.length);
        return;
      }
      const keep = Math.min(this.buffer.length, this.delimiter.length - 1);
      skipped += this.buffer.length - keep;
      this.buffer = this.buffer.subarray(this.buffer.length - keep);
      if (skipped > this.limits.maxPreambleBytes) {
        throw malformed('The multipart body does not start with the boundary given in the Content-Type header.');
      }
      if (!(await this.fill())) {
        throw malformed(
          skipped === 0 && this.buffer.length <= CRLF.length
            ? 'The request body is empty.'
            : 'The multipart body does not contain the boundary given in the Content-Type header.',
        );
      }
    }
  }

  /** After a delimiter: "--" closes the body; otherwise optional padding and CRLF open a part. */
  private async atCloseDelimiter(): Promise<boolean> {
    for (;;) {
      if (this.buffer.length >= 2 && this.buffer[0] === 0x2d && this.buffer[1] === 0x2d) return true;
      const lineEnd = this.buffer.indexOf(CRLF);
      if (lineEnd >= 0) {
        const padding = this.buffer.subarray(0, lineEnd);
        if (!padding.every((byte) => byte === 0x20 || byte === 0x09)) {
          throw malformed('A multipart boundary line has unexpected characters after the boundary.');
        }
        this.buffer = this.buffer.subarray(lineEnd); // keep the CRLF: an empty header block starts with it
        return false;
      }
      if (this.buffer.length > 256) throw malformed('A multipart boundary line is not terminated by CRLF.');
      if (!(await this.fill())) throw malformed('The multipart body ends without its closing boundary.');
    }
  }

  private async readHeaders(): Promise<Map<string, string>> {
    for (;;) {
      // The buffer starts with the boundary line's CRLF; headers end at the first empty line.
      const end = this.buffer.indexOf(HEADER_END);
      if (end >= 0) {
        const block = this.buffer.subarray(CRLF.length, end).toString('latin1');
        this.buffer = this.buffer.subarray(end + HEADER_END.length);
        return parseHeaderBlock(block);
      }
      if (this.buffer.length > this.limits.maxPartHeaderBytes) {
        throw malformed(`A part's headers are longer than ${this.limits.maxPartHeaderBytes} bytes.`);
      }
      if (!(await this.fill())) throw malformed('The multipart body ends inside the headers of a part.');
    }
  }

  private async *partBody(onFinished: () => void): AsyncGenerator<Uint8Array> {
    for (;;) {
      const at = this.buffer.indexOf(this.delimiter);
      if (at >= 0) {
        const last = this.buffer.subarray(0, at);
        this.buffer = this.buffer.subarray(at + this.delimiter.length);
        onFinished();
        if (last.length > 0) yield last;
        return;
      }
      // Everything but a possible partial delimiter at the end can be passed on now.
      const safe = this.buffer.length - (this.delimiter.length - 1);
      if (safe > 0) {
        const out = this.buffer.subarray(0, safe);
        this.buffer = this.buffer.subarray(safe);
        yield out;
      }
      const chunk = await this.next();
      if (chunk === undefined) {
        this.buffer = EMPTY;
        throw malformed('The multipart body ends in the middle of a part (the closing boundary is missing).');
      }
      const seam = this.joinTail(this.buffer, chunk);
      this.buffer = seam.rest;
      if (seam.partEnd !== undefined) {
        onFinished();
        if (seam.partEnd.length > 0) yield seam.partEnd;
        return;
      }
      if (seam.body !== undefined) yield seam.body;
    }
  }

  /**
   * Joins the held-back tail (shorter than the delimiter) to the next network chunk without
   * copying the chunk, as concatenating them would for every chunk of a large part. Only a
   * delimiter that starts in the tail needs both, and the tail plus the chunk's first bytes show
   * whether one does. Either the part ends in the tail (`partEnd`: its last bytes, `rest` after
   * the delimiter), or the tail is part body (`body`) and the search goes on in `rest`.
   */
  private joinTail(tail: Buffer, chunk: Buffer): { rest: Buffer; body?: Buffer; partEnd?: Buffer } {
    if (tail.length === 0) return { rest: chunk };
    const keep = this.delimiter.length - 1;
    // Too short to settle it: joining two pieces shorter than the delimiter is cheap.
    if (chunk.length < keep) return { rest: Buffer.concat([tail, chunk]) };
    // The delimiter starts with CR: without one, no delimiter starts in the tail.
    const cr = tail.indexOf(0x0d);
    if (cr >= 0) {
      const at = Buffer.concat([tail.subarray(cr), chunk.subarray(0, keep)]).indexOf(this.delimiter);
      if (at >= 0 && cr + at < tail.length) {
        return {
          rest: chunk.subarray(cr + at + this.delimiter.length - tail.length),
          partEnd: tail.subarray(0, cr + at),
        };
      }
    }
    return { rest: chunk, body: tail };
  }

  private async discardEpilogue(): Promise<void> {
    this.buffer = EMPTY;
    while (await this.fill()) this.buffer = EMPTY;
  }
}

function parseHeaderBlock(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.split('\r\n')) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformed(`A part header line is not "Name: value": ${JSON.stringify(line.slice(0, 80))}.`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}
