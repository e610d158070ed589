/**
 * UID syntax (PS3.5 §9.1): 1 to 64 characters, components of digits separated by single dots,
 * and no component starts with 0 unless it is "0" itself. The Azure service tolerates leading
 * zeros; we do not, because two spellings of one number (`1.02` and `1.2`) would name two objects
 * a receiving PACS may treat as one. A UID that passes is safe in a blob name or a table key.
 */
const UID_SHAPE = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;

export const MAX_UID_LENGTH = 64;

export function isValidUid(value: string | undefined): boolean {
  return value !== undefined && value.length > 0 && value.length <= MAX_UID_LENGTH && UID_SHAPE.test(value);
}

/** Why a value is not a UID, for an error message a person can act on. */
export function uidProblem(value: string): string {
  if (value.length === 0) return 'it is empty';
  if (value.length > MAX_UID_LENGTH) return `it is ${value.length} characters long (at most ${MAX_UID_LENGTH})`;
  if (/[^0-9.]/.test(value)) return 'it may contain only digits and dots';
  if (/^\.|\.$|\.\./.test(value)) return 'it has an empty component';
  return 'a component starts with 0 (PS3.5 §9.1 allows no leading zeros)';
}
