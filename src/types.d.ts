declare module 'dicom-character-set' {
  export function convertBytes(
    specificCharacterSet: string | undefined,
    bytes: Uint8Array,
    options?: { vr?: string },
  ): string;
}

declare module 'jpeg-lossless-decoder-js' {
  /** JPEG lossless (process 14) decoder; `numBytes` is bytes per sample (1 or 2). */
  export class Decoder {
    decode(buffer: ArrayBuffer, offset: number, length: number, numBytes: number): Uint8Array | Uint16Array;
  }
}
