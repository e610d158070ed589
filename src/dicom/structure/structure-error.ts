/**
 * Why a Part 10 file is not structurally whole: where its bytes stop making sense as preamble,
 * File Meta group and data set. `offset` is a byte offset in the file or, for a deflated data set,
 * in the inflated data set (the message says which); `tag` is the element concerned, as "(gggg,eeee)".
 */
export class StructureError extends Error {
  override readonly name = 'StructureError';

  constructor(
    message: string,
    readonly offset: number,
    readonly tag: string | undefined,
  ) {
    super(message);
  }
}
