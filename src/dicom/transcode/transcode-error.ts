/** Why a stored instance could not be transcoded: an unsupported syntax pair or malformed input. */
export class TranscodeError extends Error {
  override readonly name = 'TranscodeError';
}

/** "(7FE0,0010)" for a tag held as one 32-bit number. */
export function formatTag(tag: number): string {
  const hex = tag.toString(16).toUpperCase().padStart(8, '0');
  return `(${hex.slice(0, 4)},${hex.slice(4)})`;
}
