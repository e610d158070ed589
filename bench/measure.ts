import { performance } from 'node:perf_hooks';

/** `mapPool` without results: returns the wall time in seconds. */
export async function timedPool<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<number> {
  const { ms } = await timed(() => mapPool(items, concurrency, work));
  return ms / 1000;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) throw new RangeError('median of nothing');
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export const MiB = 1024 * 1024;

/** Nearest-rank percentile (p in 0–100) of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError('percentile of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/**
 * Runs the server's and the raw ceiling's turn of repetition `run` (from 0), alternating which
 * goes first, so neither always meets an Azurite the other just filled.
 */
export async function takingTurns(run: number, server: () => Promise<void>, raw: () => Promise<void>): Promise<void> {
  const [first, second] = run % 2 === 0 ? [server, raw] : [raw, server];
  await first();
  await second();
}

/** Milliseconds that `work` took, with its result. */
export async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await work();
  return { ms: performance.now() - started, value };
}

/**
 * The bench's one worker pool: runs `work` over `items` with at most `concurrency` in flight, each
 * worker taking the next item when its previous one is done (as independent clients would), and
 * returns the results in order. No item is started once `Date.now()` reaches `deadline`; the
 * results of items not started are left empty.
 */
export async function mapPool<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
  deadline = Number.POSITIVE_INFINITY,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < items.length && Date.now() < deadline; index = next++) {
      results[index] = await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}
