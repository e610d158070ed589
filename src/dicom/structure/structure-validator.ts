import { transferSyntaxInfo } from '../transfer-syntax.js';
import { DataSetWalker } from './data-set-walker.js';
import { DeflatedInput } from './deflated-input.js';
import { FileMetaScanner } from './file-meta-scanner.js';
import { StructureError } from './structure-error.js';

export { StructureError } from './structure-error.js';

export interface StructureValidatorOptions {
  /** Most sequences nested inside one another; one more is a StructureError. Default 64. */
  readonly maxDepth?: number;
}

export const DEFAULT_MAX_DEPTH = 64;

/**
 * Checks, while a Part 10 file streams past, that it is whole: preamble, "DICM", File Meta group,
 * then every element of the data set to the last byte, in its transfer syntax (implicit or explicit
 * VR little endian, explicit VR big endian, deflated, encapsulated), ending on an element boundary
 * with every sequence and item closed. Give it every chunk in order, then call `end`, awaiting each:
 * they fail with a StructureError saying where the file broke, as soon as that is certain, and with
 * the same error on every later call.
 *
 * `push` and `end` are synchronous (they return undefined and throw) until the File Meta group says
 * the data set is deflated, so that the common case costs no promise per chunk; from then on they
 * return a promise. The inflating runs in node:zlib's threadpool, so a chunk that inflates a
 * thousandfold does not block the event loop. A push resolves once its chunk is queued in the
 * inflater (waiting for the queue to drain when it is full), so a deflated chunk may still be held
 * after that: do not reuse its memory. A failure found while inflating rejects the push that is
 * waiting, if one is, and otherwise the next call; `end` resolves only once everything is inflated
 * and walked.
 *
 * Memory is O(1): the nesting stack (bounded by `maxDepth`), at most 12 bytes of an element header
 * split across chunks, the Transfer Syntax UID and, for a deflated data set, zlib's state with its
 * 32 KiB window, the queued input (64 KiB on Node 22, or one larger chunk) and one 16 KiB piece of
 * output at a time. Values are skipped by counting, so a chunk of pixel data costs a subtraction.
 * Time is linear in the bytes walked.
 *
 * Measured once (Node 22, two busy cores, synthetic files in 1 MiB chunks): 1 GiB of Pixel Data in
 * under 25 ms; a data set of nothing but 14-byte elements at about 450 MB/s; items in a sequence at
 * about 470 MB/s; a deflated data set at 160-320 MB/s of inflated bytes, and 1 GiB of deflated zeros
 * at about 400 MB/s with the event loop ticking throughout.
 */
export class DicomStructureValidator {
  private readonly maxDepth: number;
  private readonly meta = new FileMetaScanner();
  private walker: DataSetWalker | undefined;
  private deflated: DeflatedInput | undefined;
  private failure: StructureError | undefined;
  private ended = false;

  constructor(options: StructureValidatorOptions = {}) {
    const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    if (!Number.isInteger(maxDepth) || maxDepth < 1) throw new RangeError(`maxDepth must be a positive integer.`);
    this.maxDepth = maxDepth;
  }

  /** Walks the next chunk of the file; only a deflated chunk is kept, queued until it is inflated. */
  push(chunk: Uint8Array): void | Promise<void> {
    if (this.failure) throw this.failure;
    const deflated = this.deflated;
    if (this.ended && deflated?.failure === undefined) {
      throw new Error('DicomStructureValidator.push() was called after end().');
    }
    if (deflated) return deflated.push(chunk);
    try {
      if (this.walker) {
        this.walker.push(chunk);
        return;
      }
      const at = this.meta.push(chunk);
      if (at < 0) return;
      const pending = this.meta.takePending();
      const rest = chunk.subarray(at);
      const input = this.startDataSet();
      if (input instanceof DeflatedInput) return input.push(pending.byteLength === 0 ? rest : concat(pending, rest));
      input.push(pending);
      input.push(rest);
    } catch (error) {
      throw this.record(error);
    }
  }

  /** The file has no more bytes: fails unless it ended on a clean boundary. */
  end(): void | Promise<void> {
    if (this.failure) throw this.failure;
    if (this.deflated) {
      this.ended = true;
      return this.deflated.end();
    }
    if (this.ended) return;
    this.ended = true;
    try {
      if (!this.walker) {
        this.meta.end();
        const input = this.startDataSet();
        if (input instanceof DeflatedInput) return input.end();
      }
      this.walker?.end();
    } catch (error) {
      throw this.record(error);
    }
  }

  /** Starts the data set walk: returns what takes the data set's bytes. */
  private startDataSet(): DataSetWalker | DeflatedInput {
    const start = this.meta.offset;
    const uid = this.meta.transferSyntax;
    if (!uid) {
      throw new StructureError('The File Meta group has no Transfer Syntax UID (0002,0010).', start, '(0002,0010)');
    }
    const syntax = transferSyntaxInfo(uid);
    if (!syntax) {
      throw new StructureError(
        `The transfer syntax ${uid} is not one whose data set encoding is known, so its structure cannot be checked.`,
        start,
        '(0002,0010)',
      );
    }
    const maxDepth = this.maxDepth;
    if (syntax.deflated) {
      // Offsets inside the data set count inflated bytes; the inflater's count the file's.
      const walker = new DataSetWalker({
        explicitVr: true,
        littleEndian: true,
        maxDepth,
        start: 0,
        offsetSuffix: ' of the inflated data set',
      });
      this.deflated = new DeflatedInput(walker, start);
      return this.deflated;
    }
    this.walker = new DataSetWalker({
      explicitVr: syntax.explicitVr,
      littleEndian: syntax.littleEndian,
      maxDepth,
      start,
    });
    return this.walker;
  }

  /** Keeps a StructureError, so that every later call fails with it. */
  private record(error: unknown): unknown {
    if (error instanceof StructureError) this.failure = error;
    return error;
  }
}

function concat(first: Uint8Array, second: Uint8Array): Uint8Array {
  const joined = new Uint8Array(first.byteLength + second.byteLength);
  joined.set(first, 0);
  joined.set(second, first.byteLength);
  return joined;
}
