/**
 * Code-unit order of two strings, for `Array.prototype.sort` (the order Table Storage sorts keys
 * in; ISO timestamps and fixed-width keys sort as they read). `compareText(b, a)` is newest or
 * largest first; chain with `||` for a tie-breaker.
 */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
