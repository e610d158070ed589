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
  /** BENCH_ONLY: section ids to run (all when undefined: a1,a2,b1,b2,c,w,cf,f,e,v,q,qs,l,u,us,cc,tc,r,bu; la only when named), e.g. "c" for the large upload alone. */
  readonly only: readonly string[] | undefined;
  /** BENCH_SERVER: the server child as compiled JS (`js`, built first) or under the tsx loader. */
  readonly serverRuntime: 'js' | 'tsx';
  /** BENCH_READ_REPEATS: runs of the series retrieve (w1), server and raw taking turns. */
  readonly readRepeats: number;
  /** BENCH_FRAME_REQUESTS: timed frame requests per instance (w2). */
  readonly frameRequests: number;
  /** BENCH_LOAD_INSTANCES: small instances the archive load (l) stores, in studies of 5. */
  readonly loadInstances: number;
  /** BENCH_SESSION_MB: the instance the upload session section (us) uploads, in MiB. */
  readonly sessionMiB: number;
  /** BENCH_STUDY_INSTANCES: instances of the big study (w4 metadata, d2 DELETE). */
  readonly bigStudyInstances: number;
  /** BENCH_METADATA_RUNS: timed study metadata requests (w4). */
  readonly metadataRuns: number;
  /** BENCH_QIDO_STUDIES: data set sizes for QIDO, ascending, each loaded on top of the last. */
  readonly qidoStudies: readonly number[];
  /** BENCH_QIDO_RUNS: timed runs of each query at each size. */
  readonly qidoRuns: number;
  /** BENCH_QIDO_QUERY_SECONDS: time budget of one query's runs at one size (at least 5 runs). */
  readonly qidoQuerySeconds: number;
  /** BENCH_QIDO_LOAD_SECONDS: loading stops after this long in all, and the sizes shrink to what fit. */
  readonly qidoLoadSeconds: number;
  /**
   * BENCH_QIDO_LOAD: `bulk` (default: the store layer into memory, its rows then written in
   * entity-group transactions), `store` (the store layer over Azure storage in-process) or `http`
   * (POST to the server).
   */
  readonly qidoLoad: 'bulk' | 'store' | 'http';
  /**
   * BENCH_QIDO_SCALE: data set sizes of the QIDO scale section (qs), ascending, each stored on top
   * of the last into the production Table adapters over the in-memory table ("none": skip).
   */
  readonly qidoScale: readonly number[];
  /**
   * BENCH_QIDO_SCALE_AZURITE: sizes at which qs stores the same studies into Azurite and runs the
   * same requests, to compare the counts ("none": skip).
   */
  readonly qidoScaleAzurite: readonly number[];
  /** BENCH_QIDO_SCALE_LOAD_SECONDS: qs stops storing after this long in all and measures what was stored. */
  readonly qidoScaleLoadSeconds: number;
  /**
   * BENCH_AZURITE: `disk` (default, as `npm start` runs it) or `memory` (--inMemoryPersistence:
   * Azurite then never pauses to save its whole database, which at 100k studies takes seconds).
   */
  readonly azurite: 'disk' | 'memory';
  /** BENCH_ARCHIVE_INSTANCES: small images the local archive section (la) loads through STOW, in studies of 5. */
  readonly archiveInstances: number;
  /** BENCH_ARCHIVE_REQUESTS: rounds of la's timed requests (each request once a round). */
  readonly archiveRequests: number;
  /** BENCH_ARCHIVE_LOAD_SECONDS: la stops loading after this long and measures what was stored. */
  readonly archiveLoadSeconds: number;
  /** BENCH_ARCHIVE_MAX_RSS_MB: la stops loading once its Azurite's RSS passes this (a shared machine). */
  readonly archiveMaxRssMiB: number;
  /**
   * BENCH_STORAGE_LATENCY_MS: each direction of every storage connection (raw and server alike)
   * held this long by a proxy (bench/latency-proxy.ts), as a network between them would; 0: none.
   */
  readonly storageLatencyMs: number;
  /**
   * BENCH_CLIENT_LATENCY_MS (section u): each direction of every connection a client opens (the
   * CLI and the bare STOW client to the server, the raw uploader to storage, the pass-through's
   * client to it) held this long by a proxy, as the network between a user and Azure would be;
   * the server's own storage connections are not (BENCH_STORAGE_LATENCY_MS sets those); 0: none.
   */
  readonly clientLatencyMs: number;
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

function choice<T extends string>(name: string, options: readonly T[], fallback: T): T {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if ((options as readonly string[]).includes(raw)) return raw as T;
  throw new Error(`${name} must be one of ${options.join(', ')}, not "${raw}".`);
}

/** A comma-separated list of positive integers, sorted ascending. */
function sizes(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const values = raw.split(',').map((part) => Number(part.trim()));
  if (values.some((value) => !Number.isInteger(value) || value <= 0)) {
    throw new Error(`${name} must be positive integers separated by commas, e.g. "1000,10000", not "${raw}".`);
  }
  return [...new Set(values)].sort((a, b) => a - b);
}

function idList(raw: string | undefined): string[] | undefined {
  const ids = (raw ?? '')
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '');
  return ids.length > 0 ? ids : undefined;
}

export function readSettings(): BenchSettings {
  return {
    seriesInstances: positiveInt('BENCH_SERIES', 200),
    // Pixel Data has a 32-bit length: at most 4 GiB - 2 bytes.
    largeMiB: positiveInt('BENCH_LARGE_MB', 1024, 4095),
    tutorialRepeats: positiveInt('BENCH_REPEATS', 5),
    concurrency: positiveInt('BENCH_CONCURRENCY', 4),
    only: idList(process.env['BENCH_ONLY']),
    serverRuntime: choice('BENCH_SERVER', ['js', 'tsx'] as const, 'js'),
    readRepeats: positiveInt('BENCH_READ_REPEATS', 3),
    frameRequests: positiveInt('BENCH_FRAME_REQUESTS', 50),
    loadInstances: positiveInt('BENCH_LOAD_INSTANCES', 10_000),
    // Past 4 GiB the instance is encapsulated (support/large-instance.ts); the 5 GiB by default.
    sessionMiB: positiveInt('BENCH_SESSION_MB', 5120),
    bigStudyInstances: positiveInt('BENCH_STUDY_INSTANCES', 1000),
    metadataRuns: positiveInt('BENCH_METADATA_RUNS', 30),
    qidoStudies: sizes('BENCH_QIDO_STUDIES', [1000, 10000]),
    qidoRuns: positiveInt('BENCH_QIDO_RUNS', 30),
    qidoQuerySeconds: positiveInt('BENCH_QIDO_QUERY_SECONDS', 12),
    qidoLoadSeconds: positiveInt('BENCH_QIDO_LOAD_SECONDS', 360),
    qidoLoad: choice('BENCH_QIDO_LOAD', ['bulk', 'store', 'http'] as const, 'bulk'),
    qidoScale:
      process.env['BENCH_QIDO_SCALE'] === 'none' ? [] : sizes('BENCH_QIDO_SCALE', [1000, 10000, 100000, 1000000]),
    qidoScaleAzurite:
      process.env['BENCH_QIDO_SCALE_AZURITE'] === 'none' ? [] : sizes('BENCH_QIDO_SCALE_AZURITE', [1000, 10000]),
    qidoScaleLoadSeconds: positiveInt('BENCH_QIDO_SCALE_LOAD_SECONDS', 3600),
    azurite: choice('BENCH_AZURITE', ['disk', 'memory'] as const, 'disk'),
    archiveInstances: positiveInt('BENCH_ARCHIVE_INSTANCES', 100_000),
    archiveRequests: positiveInt('BENCH_ARCHIVE_REQUESTS', 100),
    archiveLoadSeconds: positiveInt('BENCH_ARCHIVE_LOAD_SECONDS', 3600),
    archiveMaxRssMiB: positiveInt('BENCH_ARCHIVE_MAX_RSS_MB', 3584),
    storageLatencyMs: process.env['BENCH_STORAGE_LATENCY_MS'] ? positiveInt('BENCH_STORAGE_LATENCY_MS', 0, 1000) : 0,
    clientLatencyMs: process.env['BENCH_CLIENT_LATENCY_MS'] ? positiveInt('BENCH_CLIENT_LATENCY_MS', 0, 1000) : 0,
  };
}
