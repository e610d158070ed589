/** How each VR is laid out in explicit VR data and how its values are byte-swapped (PS3.5 6.2, 7.1.2). */

/** VRs whose explicit header has 2 reserved bytes and a 32-bit length (PS3.5 Table 7.1-1). */
export const LONG_LENGTH_VRS: readonly string[] = 'OB OD OF OL OV OW SQ UC UN UR UT SV UV'.split(' ');
const LONG_LENGTH = new Set(LONG_LENGTH_VRS);

/** VRs with a 16-bit length in explicit VR. */
export const SHORT_LENGTH_VRS: readonly string[] =
  'AE AS AT CS DA DS DT FD FL IS LO LT PN SH SL SS ST TM UI UL US'.split(' ');

const KNOWN = new Set([...LONG_LENGTH, ...SHORT_LENGTH_VRS]);

/** Largest value a 16-bit length can hold: lengths are even, so 0xFFFF is never valid. */
export const MAX_SHORT_LENGTH = 0xfffe;

const SWAP_UNIT: Record<string, 2 | 4 | 8> = {
  US: 2,
  SS: 2,
  OW: 2,
  // An AT value is a group and an element number, each swapped on its own.
  AT: 2,
  UL: 4,
  SL: 4,
  FL: 4,
  OF: 4,
  OL: 4,
  FD: 8,
  OD: 8,
  SV: 8,
  UV: 8,
  OV: 8,
};

export function hasLongLength(vr: string): boolean {
  return LONG_LENGTH.has(vr);
}

export function isKnownVr(vr: string): boolean {
  return KNOWN.has(vr);
}

/** Bytes per swapped unit when the byte order changes; 1 for text, OB and UN, which stay as they are. */
export function swapUnit(vr: string): 1 | 2 | 4 | 8 {
  return SWAP_UNIT[vr] ?? 1;
}
