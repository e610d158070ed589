/** A frame could not be decoded or encoded: corrupt data, or a layout the codec does not take. */
export class CodecError extends Error {
  override readonly name = 'CodecError';
}
