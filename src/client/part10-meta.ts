/**
 * The DICOM Part 10 file check the CLI makes before sending a file (PS3.10 §7.1): a 128-byte
 * preamble, `DICM`, then the File Meta Information group (0002), always explicit VR little
 * endian. Its Media Storage SOP Instance UID names the instance before the server answers, so
 * the answer can be matched back to the file, and a download can name its files.
 */
export interface FileMeta {
  readonly sopClassUid?: string | undefined;
  readonly sopInstanceUid?: string | undefined;
  readonly transferSyntaxUid?: string | undefined;
}

export type MetaCheck =
  { readonly ok: true; readonly meta: FileMeta } | { readonly ok: false; readonly reason: string };

/** Bytes to read from a file's start to see its meta group (a larger group is cut short). */
export const META_PROBE_BYTES = 16 * 1024;

const PREAMBLE = 128;
const LONG_VRS = new Set(['OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'SQ', 'UC', 'UN', 'UR', 'UT']);

function uid(bytes: Uint8Array): string {
  return Buffer.from(bytes)
    .toString('latin1')
    .replace(/[\0 ]+$/, '');
}

/** Reads the meta group from the start of a file (`META_PROBE_BYTES` or all of a smaller file). */
export function readFileMeta(head: Uint8Array): MetaCheck {
  const bytes = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (bytes.length < PREAMBLE + 4) return { ok: false, reason: `too short for DICOM (${bytes.length} bytes)` };
  if (bytes.toString('latin1', PREAMBLE, PREAMBLE + 4) !== 'DICM') {
    return { ok: false, reason: 'no DICM prefix after the 128-byte preamble (not a DICOM Part 10 file)' };
  }
  const found: Record<string, string> = {};
  let at = PREAMBLE + 4;
  while (at + 8 <= bytes.length && bytes.readUInt16LE(at) === 0x0002) {
    const element = bytes.readUInt16LE(at + 2);
    const vr = bytes.toString('latin1', at + 4, at + 6);
    const long = LONG_VRS.has(vr);
    if (long && at + 12 > bytes.length) break;
    const length = long ? bytes.readUInt32LE(at + 8) : bytes.readUInt16LE(at + 6);
    const start = at + (long ? 12 : 8);
    if (length === 0xffffffff || start + length > bytes.length) break;
    if (vr === 'UI') found[element.toString(16).padStart(4, '0')] = uid(bytes.subarray(start, start + length));
    at = start + length;
  }
  return {
    ok: true,
    meta: { sopClassUid: found['0002'], sopInstanceUid: found['0003'], transferSyntaxUid: found['0010'] },
  };
}
