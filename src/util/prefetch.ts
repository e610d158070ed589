/**
 * A byte source whose first chunk is already being fetched: the blob request (its round trip
 * and the first bytes) overlaps the part being sent before it. `close()` releases it if the
 * response ends before it is read.
 */
export interface Prefetched extends AsyncIterable<Uint8Array> {
  close(): Promise<void>;
  /** Settles with the first chunk: true when it came (or the source was empty), false when it failed. */
  ready(): Promise<boolean>;
}

export function prefetch(source: AsyncIterable<Uint8Array>): Prefetched {
  const iterator = source[Symbol.asyncIterator]();
  const first = iterator.next();
  // Its error is delivered (and logged, see streamOf) when the part is read; until then it must
  // not count as unhandled, and a part never read (the response ended first) has no one to tell.
  first.catch(() => undefined);
  let started = false;
  return {
    async *[Symbol.asyncIterator]() {
      started = true;
      try {
        for (let next = await first; !next.done; next = await iterator.next()) yield next.value;
      } finally {
        await iterator.return?.();
      }
    },
    async close() {
      if (!started) await iterator.return?.();
    },
    ready: () =>
      first.then(
        () => true,
        () => false,
      ),
  };
}
