/**
 * Reads a multipart/related response (WADO-RS) part by part without holding a part: each part's
 * body is a stream the caller reads (to disk, say) before asking for the next part.
 */
export interface ResponsePart {
  /** Part headers, names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: ReadableStream<Uint8Array>;
}

/** The boundary parameter of a multipart Content-Type, unquoted. */
export function boundaryOf(contentType: string | null): string | undefined {
  const match = /;\s*boundary=(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(contentType ?? '');
  return match ? (match[1]?.replace(/\\(.)/g, '$1') ?? match[2]) : undefined;
}

const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 64 * 1024;

class Scanner {
  private buffer: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  /** Reads one more chunk into the buffer; false at the end of the stream. */
  async fill(): Promise<boolean> {
    if (this.ended) return false;
    const { done, value } = await this.reader.read();
    if (done) {
      this.ended = true;
      return false;
    }
    this.buffer = this.buffer.length === 0 ? Buffer.from(value) : Buffer.concat([this.buffer, value]);
    return true;
  }

  /** Waits for `needle`; returns its index, or -1 at the end of the stream. */
  async find(needle: Buffer, limit = Number.POSITIVE_INFINITY): Promise<number> {
    for (;;) {
      const at = this.buffer.indexOf(needle);
      if (at >= 0) return at;
      if (this.buffer.length > limit) throw new Error('A multipart part header is over 64 KiB.');
      if (!(await this.fill())) return -1;
    }
  }

  /** Waits for at least `n` buffered bytes; false when the stream ends first. */
  async need(n: number): Promise<boolean> {
    while (this.buffer.length < n) if (!(await this.fill())) return false;
    return true;
  }

  take(n: number): Buffer {
    const head = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    return head;
  }

  peek(n: number): Buffer {
    return this.buffer.subarray(0, n);
  }

  get length(): number {
    return this.buffer.length;
  }

  indexOf(needle: Buffer): number {
    return this.buffer.indexOf(needle);
  }

  cancel(): Promise<void> {
    return this.reader.cancel();
  }
}

function parseHeaders(block: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of block.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

const truncated = (): Error => new Error('The multipart response ended before its closing boundary.');

/** The parts of `body`, in order; the stream is cancelled if the caller stops early. */
export async function* readParts(body: ReadableStream<Uint8Array>, boundary: string): AsyncGenerator<ResponsePart> {
  const scanner = new Scanner(body.getReader());
  // Every delimiter is CRLF--boundary; the first may have no CRLF before it (no preamble).
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  let finished = false;
  try {
    if (!(await scanner.need(delimiter.length - 2))) throw truncated();
    if (scanner.peek(delimiter.length - 2).equals(delimiter.subarray(2))) scanner.take(delimiter.length - 2);
    else {
      const at = await scanner.find(delimiter);
      if (at < 0) throw truncated();
      scanner.take(at + delimiter.length);
    }
    for (;;) {
      // After a delimiter: `--` closes the body, otherwise optional whitespace then CRLF.
      if (!(await scanner.need(2))) throw truncated();
      if (scanner.peek(2).toString('latin1') === '--') break;
      const lineEnd = await scanner.find(Buffer.from('\r\n'));
      if (lineEnd < 0) throw truncated();
      scanner.take(lineEnd + 2);
      // A part with no headers starts right away with CRLF.
      let headers: Record<string, string> = {};
      if (!(await scanner.need(2))) throw truncated();
      if (scanner.peek(2).toString('latin1') === '\r\n') scanner.take(2);
      else {
        const end = await scanner.find(HEADER_END, MAX_HEADER_BYTES);
        if (end < 0) throw truncated();
        headers = parseHeaders(scanner.take(end).toString('latin1'));
        scanner.take(HEADER_END.length);
      }
      let partDone!: () => void;
      let partFailed!: (error: Error) => void;
      const done = new Promise<void>((resolve, reject) => {
        partDone = resolve;
        partFailed = reject;
      });
      // Awaited below when the caller asks for the next part; a caller that stops early never does.
      done.catch(() => undefined);
      let over = false;
      const partBody = new ReadableStream<Uint8Array>(
        {
          async pull(controller) {
            try {
              for (;;) {
                const at = scanner.indexOf(delimiter);
                if (at >= 0) {
                  if (at > 0) controller.enqueue(scanner.take(at));
                  scanner.take(delimiter.length);
                  over = true;
                  controller.close();
                  partDone();
                  return;
                }
                // Keep what could be the start of a delimiter split across chunks.
                const safe = scanner.length - (delimiter.length - 1);
                if (safe > 0) {
                  controller.enqueue(scanner.take(safe));
                  return;
                }
                if (!(await scanner.fill())) throw truncated();
              }
            } catch (error) {
              controller.error(error);
              partFailed(error as Error);
            }
          },
        },
        { highWaterMark: 0 },
      );
      yield { headers, body: partBody };
      // Whatever the caller left of the part is skipped.
      if (!over) {
        const reader = partBody.getReader();
        while (!(await reader.read()).done);
      }
      await done;
    }
    finished = true;
  } finally {
    if (!finished) await scanner.cancel().catch(() => undefined);
  }
}
