/**
 * A k-way merge of streams each already in `compare` order: yields the least head each time, and
 * asks a stream for its next item only when its head has been taken, so a stream that pages
 * (src/storage/table-query.ts queryRows) reads further only as far as the merge gets.
 */
export async function* mergeSorted<T>(
  streams: readonly AsyncIterator<T>[],
  compare: (a: T, b: T) => number,
): AsyncGenerator<T> {
  const heads = await Promise.all(streams.map((stream) => stream.next()));
  for (;;) {
    let best = -1;
    let bestValue: T | undefined;
    for (const [i, head] of heads.entries()) {
      if (head.done) continue;
      if (best < 0 || compare(head.value, bestValue as T) < 0) {
        best = i;
        bestValue = head.value;
      }
    }
    const stream = streams[best];
    if (best < 0 || !stream) return;
    yield bestValue as T;
    heads[best] = await stream.next();
  }
}
