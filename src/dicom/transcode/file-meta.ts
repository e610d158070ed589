import type { ByteReader } from './byte-reader.js';
import { SMALL_VALUE } from './element-reader.js';
import { formatTag, TranscodeError } from './transcode-error.js';
import { hasLongLength, isKnownVr } from './vr-encoding.js';

/** One File Meta element (group 0002, always explicit VR little endian, PS3.10 7.1). */
export interface MetaElement {
  readonly tag: number;
  readonly vr: string;
  readonly value: Uint8Array;
}

const PREAMBLE = 128;
const GROUP_LENGTH = 0x00020000;
const TRANSFER_SYNTAX = 0x00020010;

/**
 * Reads the preamble, "DICM" and the File Meta group. The group ends where the next tag is not in
 * group 0002; in a deflated file that tag is compressed, so the group length says where it ends.
 */
export async function readFileMeta(bytes: ByteReader, deflated: boolean): Promise<MetaElement[]> {
  const prefix = await bytes.read(PREAMBLE + 4, () => 'the preamble and "DICM" prefix');
  if (String.fromCharCode(...prefix.subarray(PREAMBLE)) !== 'DICM') {
    throw new TranscodeError('The input is not a DICOM Part 10 file: "DICM" is missing after the 128-byte preamble.');
  }
  const elements: MetaElement[] = [];
  let end: number | undefined;
  for (;;) {
    if (deflated && end !== undefined) {
      if (bytes.position >= end) break;
    } else if ((await bytes.peekUint16LE()) !== 0x0002) break;
    const element = await readMetaElement(bytes);
    if (element.tag >>> 16 !== 0x0002) throw new TranscodeError('The File Meta group length is wrong.');
    if (element.tag === GROUP_LENGTH && element.value.byteLength === 4) {
      end = bytes.position + Buffer.from(element.value).readUInt32LE(0);
    }
    elements.push(element);
  }
  return elements;
}

async function readMetaElement(bytes: ByteReader): Promise<MetaElement> {
  const what = () => 'the File Meta group';
  const header = await bytes.read(6, what);
  const view = Buffer.from(header.buffer, header.byteOffset, header.byteLength);
  const tag = ((view.readUInt16LE(0) << 16) | view.readUInt16LE(2)) >>> 0;
  const vr = view.toString('latin1', 4, 6);
  if (!isKnownVr(vr)) throw new TranscodeError(`File Meta element ${formatTag(tag)} has an invalid VR.`);
  const lengthBytes = Buffer.from(await bytes.read(hasLongLength(vr) ? 6 : 2, what));
  const length = hasLongLength(vr) ? lengthBytes.readUInt32LE(2) : lengthBytes.readUInt16LE(0);
  if (length > SMALL_VALUE) throw new TranscodeError(`File Meta element ${formatTag(tag)} is too long (${length}).`);
  return { tag, vr, value: await bytes.read(length, what) };
}

/** The transfer syntax UID the File Meta group names, without padding. */
export function metaTransferSyntax(elements: readonly MetaElement[]): string | undefined {
  const element = elements.find(({ tag }) => tag === TRANSFER_SYNTAX);
  return (
    element &&
    Buffer.from(element.value)
      .toString('latin1')
      .replace(/[\0 ]+$/, '')
  );
}

/**
 * Preamble (zeros), "DICM" and the File Meta group with (0002,0010) set to `transferSyntax` and
 * (0002,0000) recomputed; the other elements are kept as they were.
 */
export function encodeFileMeta(elements: readonly MetaElement[], transferSyntax: string): Uint8Array {
  const uid = Buffer.from(transferSyntax.length % 2 === 1 ? `${transferSyntax}\0` : transferSyntax, 'latin1');
  const kept = elements.filter(({ tag }) => tag !== GROUP_LENGTH && tag !== TRANSFER_SYNTAX);
  const body = [...kept, { tag: TRANSFER_SYNTAX, vr: 'UI', value: uid }].sort((a, b) => a.tag - b.tag).map(encode);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(body.reduce((sum, part) => sum + part.byteLength, 0));
  const groupLength = encode({ tag: GROUP_LENGTH, vr: 'UL', value: length });
  return Buffer.concat([Buffer.alloc(PREAMBLE), Buffer.from('DICM', 'latin1'), groupLength, ...body]);
}

function encode({ tag, vr, value }: MetaElement): Buffer {
  const long = hasLongLength(vr);
  const header = Buffer.alloc(long ? 12 : 8);
  header.writeUInt16LE(tag >>> 16, 0);
  header.writeUInt16LE(tag & 0xffff, 2);
  header.write(vr, 4, 'latin1');
  if (long) header.writeUInt32LE(value.byteLength, 8);
  else header.writeUInt16LE(value.byteLength, 6);
  return Buffer.concat([header, value]);
}
