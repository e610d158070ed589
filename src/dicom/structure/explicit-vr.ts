import { LONG_LENGTH_VRS, SHORT_LENGTH_VRS } from '../transcode/vr-encoding.js';

/** A VR's slot in EXPLICIT_HEADER_SIZE, from its two letters' offsets from 'A' (each 0-25). */
export function vrIndex(vr: string): number {
  return (vr.charCodeAt(0) - 65) * 26 + (vr.charCodeAt(1) - 65);
}

/** The VR at a slot, for messages. */
export function vrName(index: number): string {
  return String.fromCharCode(65 + Math.floor(index / 26), 65 + (index % 26));
}

/**
 * Explicit VR header size per VR slot: 8 for a 16-bit length, 12 for 2 reserved bytes and a 32-bit
 * length (PS3.5 7.1.2); 0 for two letters DICOM does not define. An unknown VR is refused, not
 * guessed: PS3.5 lets a reader assume a future VR has the 32-bit form (dcmtk does), dicom-parser
 * assumes the 16-bit form, so a stored file with one would read differently in different viewers;
 * in practice it means a damaged byte, a wrong transfer syntax or a walk that lost its footing.
 */
export const EXPLICIT_HEADER_SIZE = new Uint8Array(26 * 26);
for (const vr of SHORT_LENGTH_VRS) EXPLICIT_HEADER_SIZE[vrIndex(vr)] = 8;
for (const vr of LONG_LENGTH_VRS) EXPLICIT_HEADER_SIZE[vrIndex(vr)] = 12;

export const VR_SQ = vrIndex('SQ');
export const VR_UN = vrIndex('UN');
export const VR_OB = vrIndex('OB');
export const VR_OW = vrIndex('OW');

/** The VR slot of two bytes, or -1 when they are not a VR that DICOM defines. */
export function vrSlot(first: number, second: number): number {
  const a = first - 65;
  const b = second - 65;
  if (a < 0 || a > 25 || b < 0 || b > 25) return -1;
  return EXPLICIT_HEADER_SIZE[a * 26 + b] === 0 ? -1 : a * 26 + b;
}
