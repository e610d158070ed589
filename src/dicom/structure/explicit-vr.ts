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
 * length (PS3.5 7.1.2). A VR of two uppercase letters that DICOM does not define gets 12, as in
 * dcmtk: every VR added since 1993 has the 32-bit form, so a future VR will too. Bytes that are not
 * two uppercase letters have no slot and are rejected by the callers (dcmtk guesses a 16-bit length;
 * dicom-parser reads every VR it does not list, OV, SV and UV included, with one): they mean a wrong
 * transfer syntax or a walk that has lost its footing, and a guess would only move the error.
 */
export const EXPLICIT_HEADER_SIZE = new Uint8Array(26 * 26).fill(12);
for (const vr of SHORT_LENGTH_VRS) EXPLICIT_HEADER_SIZE[vrIndex(vr)] = 8;
for (const vr of LONG_LENGTH_VRS) EXPLICIT_HEADER_SIZE[vrIndex(vr)] = 12;

export const VR_SQ = vrIndex('SQ');
export const VR_UN = vrIndex('UN');
export const VR_OB = vrIndex('OB');
export const VR_OW = vrIndex('OW');

/** The VR slot of two bytes, or -1 when they are not two uppercase letters. */
export function vrSlot(first: number, second: number): number {
  const a = first - 65;
  const b = second - 65;
  return a < 0 || a > 25 || b < 0 || b > 25 ? -1 : a * 26 + b;
}
