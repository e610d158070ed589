declare module 'dicom-character-set' {
  export function convertBytes(
    specificCharacterSet: string | undefined,
    bytes: Uint8Array,
    options?: { vr?: string },
  ): string;
}
