/**
 * UID syntax (PS3.5 §9.1): 1 to 64 characters, digit components separated by single dots.
 * Leading zeros inside a component are tolerated because real modalities emit them and the
 * Azure service accepts them; anything else (letters, `/`, `..`, empty) is rejected, so a UID
 * that passes is safe to use in a blob name or a table key.
 */
const UID_SHAPE = /^[0-9]+(\.[0-9]+)*$/;

export const MAX_UID_LENGTH = 64;

export function isValidUid(value: string | undefined): boolean {
  return value !== undefined && value.length > 0 && value.length <= MAX_UID_LENGTH && UID_SHAPE.test(value);
}
