/** Reads a stream to its end, discarding the bytes (the rest of a rejected part, an epilogue). */
export async function drain(source: AsyncIterable<unknown>): Promise<void> {
  const iterator = source[Symbol.asyncIterator]();
  while (!(await iterator.next()).done) {
    // discard
  }
}

/** An async iterable of one item (a request body that is a single instance, an upload session's file). */
export async function* just<T>(item: T): AsyncGenerator<T> {
  await Promise.resolve();
  yield item;
}
