/** Transfer syntaxes whose header this server can read, with how their data set is encoded. */
export interface TransferSyntaxInfo {
  readonly uid: string;
  readonly name: string;
  readonly explicitVr: boolean;
  readonly littleEndian: boolean;
  readonly deflated: boolean;
  /** Pixel data is encapsulated (compressed) in fragments. */
  readonly encapsulated: boolean;
}

function ts(uid: string, name: string, explicitVr: boolean, littleEndian = true, deflated = false): TransferSyntaxInfo {
  return { uid, name, explicitVr, littleEndian, deflated, encapsulated: false };
}

const NATIVE: TransferSyntaxInfo[] = [
  ts('1.2.840.10008.1.2', 'Implicit VR Little Endian', false),
  ts('1.2.840.10008.1.2.1', 'Explicit VR Little Endian', true),
  ts('1.2.840.10008.1.2.1.99', 'Deflated Explicit VR Little Endian', true, true, true),
  ts('1.2.840.10008.1.2.2', 'Explicit VR Big Endian', true, false),
];

const BY_UID = new Map(NATIVE.map((info) => [info.uid, info]));

/**
 * Every transfer syntax under 1.2.840.10008.1.2.4 (JPEG family, JPEG-LS, JPEG 2000, MPEG, HEVC, HTJ2K)
 * and 1.2.840.10008.1.2.5 (RLE) encodes its data set as explicit VR little endian with encapsulated
 * pixel data, so the header is readable whatever the codec.
 */
const RLE_LOSSLESS = '1.2.840.10008.1.2.5';
const ENCAPSULATED_ROOT = '1.2.840.10008.1.2.4.';

export function transferSyntaxInfo(uid: string): TransferSyntaxInfo | undefined {
  const known = BY_UID.get(uid);
  if (known) return known;
  if (uid === RLE_LOSSLESS || uid.startsWith(ENCAPSULATED_ROOT)) {
    return { uid, name: 'Encapsulated', explicitVr: true, littleEndian: true, deflated: false, encapsulated: true };
  }
  return undefined;
}
