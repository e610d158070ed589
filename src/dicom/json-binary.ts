/** Binary numeric VRs and the byte size of one value. */
export const NUMBER_SIZES: Readonly<Record<string, number>> = {
  US: 2,
  SS: 2,
  UL: 4,
  SL: 4,
  FL: 4,
  FD: 8,
  SV: 8,
  UV: 8,
};

/** Reads one value of a numeric VR; 64-bit integers stay bigints until the caller decides. */
function readValue(view: DataView, vr: string, offset: number, littleEndian: boolean): number | bigint {
  switch (vr) {
    case 'US':
      return view.getUint16(offset, littleEndian);
    case 'SS':
      return view.getInt16(offset, littleEndian);
    case 'UL':
      return view.getUint32(offset, littleEndian);
    case 'SL':
      return view.getInt32(offset, littleEndian);
    case 'FL':
      return view.getFloat32(offset, littleEndian);
    case 'FD':
      return view.getFloat64(offset, littleEndian);
    case 'SV':
      return view.getBigInt64(offset, littleEndian);
    default:
      return view.getBigUint64(offset, littleEndian);
  }
}

/**
 * The values of a binary numeric element. SV/UV beyond 2^53 become decimal strings (F.2.3.1) so no
 * precision is lost; NaN and infinities, which JSON numbers cannot hold, become "NaN", "Infinity"
 * and "-Infinity" as the Azure DICOM service and fo-dicom emit them. A trailing partial value (odd
 * length) is ignored.
 */
export function numberValues(bytes: Uint8Array, vr: string, littleEndian: boolean): (number | string)[] {
  const size = NUMBER_SIZES[vr] ?? 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values: (number | string)[] = [];
  for (let offset = 0; offset + size <= bytes.byteLength; offset += size) {
    const value = readValue(view, vr, offset, littleEndian);
    if (typeof value === 'bigint') {
      const number = Number(value);
      values.push(Number.isSafeInteger(number) ? number : value.toString());
    } else values.push(Number.isFinite(value) ? value : String(value));
  }
  return values;
}

/** AT values: (group, element) pairs of 16-bit numbers, as eight uppercase hex digits. */
export function attributeTagValues(bytes: Uint8Array, littleEndian: boolean): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hex = (offset: number) => view.getUint16(offset, littleEndian).toString(16).toUpperCase().padStart(4, '0');
  const values: string[] = [];
  for (let offset = 0; offset + 4 <= bytes.byteLength; offset += 4) values.push(hex(offset) + hex(offset + 2));
  return values;
}

export function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
