/** Reads a stream to its end, discarding the bytes (the rest of a rejected part, an epilogue). */
export async function drain(source: AsyncIterable<unknown>): Promise<void> {
  const iterator = source[Symbol.asyncIterator]();
  while (!(await iterator.next()).done) {
    // discard
  }
}
