import dicomParser, { type DataSet } from 'dicom-parser';
import { constants as zlibConstants, inflateRawSync } from 'node:zlib';
import { parserKey, Tag } from './tags.js';
import { transferSyntaxInfo, type TransferSyntaxInfo } from './transfer-syntax.js';

/** Why a part could not be read as a DICOM Part 10 file. */
export class InvalidDicomError extends Error {
  override readonly name = 'InvalidDicomError';
}

export interface DicomHeader {
  readonly dataSet: DataSet;
  readonly transferSyntax: TransferSyntaxInfo;
  /** Byte offset of the Pixel Data value in the file, when the data set is not deflated. */
  readonly pixelDataOffset: number | undefined;
  /** Pixel Data value length; -1 for undefined length (encapsulated). */
  readonly pixelDataLength: number | undefined;
  /** True when the header exceeded the byte budget and only its first part was read. */
  readonly truncated: boolean;
}

const PREAMBLE_LENGTH = 128;
const PIXEL_DATA = parserKey(Tag.PixelData);
const FIRST_ATTEMPT = 16 * 1024;

/** Inflates as much of a deflated data set as has arrived, so a partial file can be parsed. */
function partialInflater(bytes: Uint8Array, position: number): Uint8Array {
  const inflated = inflateRawSync(bytes.subarray(position), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
  const whole = Buffer.allocUnsafe(position + inflated.length);
  whole.set(bytes.subarray(0, position), 0);
  whole.set(inflated, position);
  return whole;
}

/**
 * Collects the first bytes of a streamed Part 10 file until its header (everything before Pixel
 * Data) can be parsed. It holds at most `maxHeaderBytes`: past that the header is parsed as far as
 * it goes, so memory stays bounded whatever the file. Parse attempts double in size, so the total
 * parsing work stays linear in the header length.
 */
export class DicomHeaderReader {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private nextAttempt = FIRST_ATTEMPT;
  private header: DicomHeader | undefined;
  private magicChecked = false;

  constructor(private readonly maxHeaderBytes: number) {}

  get bytesHeld(): number {
    return this.size;
  }

  /** The bytes collected so far, to be written out once the header is known. */
  takeBuffered(): Uint8Array[] {
    const chunks = this.chunks;
    this.chunks = [];
    return chunks;
  }

  /** Adds the next chunk; returns the header once it is complete. */
  push(chunk: Uint8Array): DicomHeader | undefined {
    if (this.header) return this.header;
    this.chunks.push(chunk);
    this.size += chunk.byteLength;
    if (!this.magicChecked && this.size >= PREAMBLE_LENGTH + 4) this.checkMagic();
    if (this.size < this.nextAttempt && this.size < this.maxHeaderBytes) return undefined;
    this.header = this.attempt(false);
    this.nextAttempt = Math.min(this.size * 2, this.maxHeaderBytes);
    return this.header;
  }

  /** Called at the end of the part: parses whatever arrived, or explains why it is not DICOM. */
  finish(): DicomHeader {
    if (this.header) return this.header;
    if (this.size < PREAMBLE_LENGTH + 4) {
      throw new InvalidDicomError(this.size === 0 ? 'The part is empty.' : 'The part is too short to be a DICOM file.');
    }
    const header = this.attempt(true);
    if (!header) throw new InvalidDicomError('The DICOM data set is incomplete.');
    this.header = header;
    return header;
  }

  private joined(): Uint8Array {
    if (this.chunks.length !== 1) {
      const whole = Buffer.concat(this.chunks);
      this.chunks = [whole];
    }
    return this.chunks[0] ?? new Uint8Array(0);
  }

  private checkMagic(): void {
    this.magicChecked = true;
    const bytes = this.joined();
    const magic = String.fromCharCode(...bytes.subarray(PREAMBLE_LENGTH, PREAMBLE_LENGTH + 4));
    if (magic !== 'DICM') {
      throw new InvalidDicomError(
        'The part is not a DICOM Part 10 file: the "DICM" prefix after the 128-byte preamble is missing.',
      );
    }
  }

  /** One parse attempt; undefined means more bytes are needed. */
  private attempt(final: boolean): DicomHeader | undefined {
    const bytes = this.joined();
    const atBudget = this.size >= this.maxHeaderBytes;
    let dataSet: DataSet;
    let complete: boolean;
    try {
      dataSet = dicomParser.parseDicom(bytes, { untilTag: PIXEL_DATA, inflater: partialInflater });
      complete = final || dataSet.elements[PIXEL_DATA] !== undefined;
    } catch (thrown) {
      const partial = partialDataSet(thrown);
      if (!final && !atBudget) return undefined;
      if (!partial || final) throw new InvalidDicomError(describe(thrown));
      // The partial data set lacks the file meta group; read it on its own for the transfer syntax.
      dataSet = withMeta(partial, bytes);
      complete = false;
    }
    if (!complete && !atBudget) return undefined;
    return this.toHeader(dataSet, !complete);
  }

  private toHeader(dataSet: DataSet, truncated: boolean): DicomHeader {
    const uid = dataSet.string(parserKey(Tag.TransferSyntaxUID))?.replace(/\0/g, '').trim();
    if (!uid) throw new InvalidDicomError('The file meta information has no Transfer Syntax UID (0002,0010).');
    const transferSyntax = transferSyntaxInfo(uid);
    if (!transferSyntax) throw new InvalidDicomError(`The transfer syntax ${uid} is not supported.`);
    const pixel = dataSet.elements[PIXEL_DATA];
    const located = pixel !== undefined && !transferSyntax.deflated;
    return {
      dataSet,
      transferSyntax,
      pixelDataOffset: located ? pixel.dataOffset : undefined,
      pixelDataLength: located ? (pixel.hadUndefinedLength ? -1 : pixel.length) : undefined,
      truncated,
    };
  }
}

function withMeta(dataSet: DataSet, bytes: Uint8Array): DataSet {
  try {
    const meta = dicomParser.readPart10Header(bytes);
    for (const [tag, element] of Object.entries(meta.elements)) dataSet.elements[tag] ??= element;
  } catch {
    // Without a readable meta group toHeader reports the missing transfer syntax.
  }
  return dataSet;
}

/** dicom-parser throws `{ exception, dataSet }` when the buffer ends mid-element. */
function partialDataSet(thrown: unknown): DataSet | undefined {
  if (typeof thrown === 'object' && thrown !== null && 'dataSet' in thrown) {
    const dataSet = (thrown as { dataSet?: DataSet }).dataSet;
    return dataSet?.elements ? dataSet : undefined;
  }
  return undefined;
}

function describe(thrown: unknown): string {
  const inner = typeof thrown === 'object' && thrown !== null && 'exception' in thrown ? thrown.exception : thrown;
  const text = inner instanceof Error ? inner.message : String(inner);
  return `The DICOM data set could not be read (${text.replace(/^dicomParser[.:]?\w*:\s*/, '')}).`;
}
