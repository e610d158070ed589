/** What bench/server.ts and the bench that controls it agree on (kept apart so importing it starts nothing). */
export interface MemoryReport {
  readonly rssBytes: number;
  /** Highest RSS since start or the last reset (the kernel's VmHWM on Linux, else sampled every 50 ms). */
  readonly peakRssBytes: number;
  readonly baselineRssBytes: number;
  readonly heapUsedBytes: number;
  readonly externalBytes: number;
  readonly arrayBuffersBytes: number;
}

/** The one JSON line the server prints on stdout once it listens. */
export interface ServerReady {
  readonly port: number;
  readonly pid: number;
  /** RSS once storage is open and the server listens, before any request. */
  readonly baselineRssBytes: number;
}

export const MEMORY_PATH = '/__bench/memory';
export const RESET_PEAK_PATH = '/__bench/memory/reset-peak';
