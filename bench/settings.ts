/** The bench's knobs, read once from the environment so a quick run is one variable away. */
export interface BenchSettings {
  /** Instances in each synthetic CT series (b). */
  readonly seriesInstances: number;
  /** Pixel Data of the large instance (c), in MiB. */
  readonly largeMiB: number;
  /** Repetitions of the tutorial workloads (a), each against a fresh server and container. */
  readonly tutorialRepeats: number;
  /** Client connections in the series workloads (b). */
  readonly concurrency: number;
}

function positiveInt(name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0 || value > max) {
    throw new Error(`${name} must be an integer from 1 to ${max}, not "${raw}".`);
  }
  return value;
}

export function readSettings(): BenchSettings {
  return {
    seriesInstances: positiveInt('BENCH_SERIES', 200),
    // Pixel Data has a 32-bit length: at most 4 GiB - 2 bytes.
    largeMiB: positiveInt('BENCH_LARGE_MB', 1024, 4095),
    tutorialRepeats: positiveInt('BENCH_REPEATS', 5),
    concurrency: positiveInt('BENCH_CONCURRENCY', 4),
  };
}
