import { createInflateRaw, type InflateRaw } from 'node:zlib';
import type { DataSetWalker } from './data-set-walker.js';
import { StructureError } from './structure-error.js';

/**
 * Inflated bytes reach the walker in pieces of at most this size: 64 KiB rather than zlib's 16 KiB
 * default halves the hops between the threadpool and the event loop (about twice the speed on a
 * highly compressed data set), and bounds what is held at once just as well.
 */
const OUTPUT_CHUNK = 64 * 1024;

/**
 * Feeds the Deflated Explicit VR Little Endian data set (PS3.5 A.5) through node:zlib's streaming
 * raw inflater, whose work runs in the libuv threadpool: a small chunk that inflates a thousandfold
 * does not hold up the event loop, and neither input nor output accumulates. Inflated bytes go to the
 * walker as they come, in the 'data' handler; a walker error destroys the inflater.
 *
 * The first failure is kept: `push` and `end` reject with it from then on. It is a StructureError
 * for anything wrong with the file; offsets in the compressed stream are the file's.
 */
export class DeflatedInput {
  private readonly inflate: InflateRaw;
  /** Compressed bytes pushed, and the last of them (a possible pad byte). */
  private pushed = 0;
  private lastByte = 0;
  /** The deflate stream has ended: what follows it is not written to the inflater. */
  private streamEnded = false;
  private firstFailure: Error | undefined;
  private ending: Promise<void> | undefined;

  /** `start` is the file offset of the first compressed byte, for messages. */
  constructor(
    private readonly walker: DataSetWalker,
    private readonly start: number,
  ) {
    this.inflate = createInflateRaw({ chunkSize: OUTPUT_CHUNK });
    this.inflate.on('data', (bytes: Buffer) => {
      try {
        this.walker.push(bytes);
      } catch (error) {
        this.fail(error as Error);
      }
    });
    this.inflate.on('error', (error) => {
      this.fail(this.zlibError(error));
    });
    this.inflate.on('end', () => {
      this.streamEnded = true;
      this.checkTrailing();
    });
  }

  get failure(): Error | undefined {
    return this.firstFailure;
  }

  /**
   * Resolves once `chunk` is in the inflater's queue; when that holds its high-water mark (64 KiB on
   * Node 22), once the queue has drained.
   */
  push(chunk: Uint8Array): Promise<void> {
    const length = chunk.byteLength;
    if (length > 0 && this.firstFailure === undefined) {
      this.pushed += length;
      this.lastByte = chunk[length - 1] ?? 0;
      if (this.streamEnded) this.checkTrailing();
      else if (!this.inflate.write(chunk)) return this.settled('drain');
    }
    return this.firstFailure ? Promise.reject(this.firstFailure) : Promise.resolve();
  }

  /**
   * No more compressed bytes: resolves once the deflate stream has ended cleanly, with at most one
   * 00H pad byte after it (pydicom pads to even length), and the inflated data set is whole.
   */
  end(): Promise<void> {
    this.ending ??= this.finish();
    return this.ending;
  }

  private async finish(): Promise<void> {
    if (this.firstFailure === undefined) {
      this.inflate.end();
      await this.settled('close');
    }
    this.checkTrailing();
    this.rethrow();
    try {
      this.walker.end();
    } catch (error) {
      this.fail(error as Error);
      throw error;
    }
  }

  private rethrow(): void {
    if (this.firstFailure) throw this.firstFailure;
  }

  /** Waits for `event` or for the inflater to close (as it does on any failure). */
  private settled(event: 'drain' | 'close'): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.inflate.off(event, done);
        this.inflate.off('close', done);
        if (this.firstFailure) reject(this.firstFailure);
        else resolve();
      };
      this.inflate.on(event, done);
      if (event !== 'close') this.inflate.on('close', done);
    });
  }

  /** Once the stream has ended, the inflater has consumed all of it and nothing after it. */
  private checkTrailing(): void {
    if (!this.streamEnded || this.firstFailure) return;
    const end = this.start + this.inflate.bytesWritten;
    const after = this.start + this.pushed - end;
    if (after === 0 || (after === 1 && this.lastByte === 0)) return;
    const what = after === 1 ? `a byte of ${hex(this.lastByte)} follows` : `${after} bytes follow`;
    this.fail(
      new StructureError(
        `The deflated data set has bytes after its end: the deflate stream ends at byte ${end} of the file ` +
          `and ${what}, where only a single 00H pad byte may.`,
        end,
        undefined,
      ),
    );
  }

  /** zlib's data errors as StructureErrors; anything else (out of memory, say) is not the file's fault. */
  private zlibError(error: Error): Error {
    const code = (error as { code?: unknown }).code;
    if (code === 'Z_BUF_ERROR') {
      // zlib's "unexpected end of file": the input ran out before the last block ended.
      const at = this.start + this.pushed;
      return new StructureError(
        `The deflated data set ends early: the compressed stream is cut short at byte ${at} of the file.`,
        at,
        undefined,
      );
    }
    if (code !== 'Z_DATA_ERROR') return error;
    // zlib reports no position; what it had consumed before the failing step is a lower bound.
    const at = this.start + this.inflate.bytesWritten;
    return new StructureError(
      `The deflated data set is corrupt near byte ${at} of the file: ${error.message}.`,
      at,
      undefined,
    );
  }

  private fail(error: Error): void {
    this.firstFailure ??= error;
    this.inflate.destroy();
  }
}

function hex(byte: number): string {
  return `${byte.toString(16).toUpperCase().padStart(2, '0')}H`;
}
