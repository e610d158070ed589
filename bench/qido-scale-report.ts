/** The QIDO scale section's (qs) results and their table: operations and entities read, not time. */

export interface ScaleQueryResult {
  readonly id: string;
  readonly title: string;
  readonly path: string;
  /** offset + limit. */
  readonly page: number;
  readonly results: number;
  readonly operations: number;
  readonly byKind: Readonly<Record<string, number>>;
  readonly entitiesRead: number;
}

export interface ScaleLoad {
  readonly studies: number;
  readonly instances: number;
  readonly seconds: number;
  /** Storage operations of the STOWs that loaded them, per instance (the meter was on). */
  readonly operationsPerInstance: number;
  readonly tableRows: number;
  /** After the load, with a collection first when `--expose-gc` allows one. */
  readonly heapUsedMiB: number;
  /** Highest heap (JS objects and Buffers) seen while loading, sampled every second. */
  readonly peakHeapMiB: number;
  readonly peakRssMiB: number;
}

export interface ScaleResult {
  /**
   * `memory`: the production adapters over the in-memory table; `azurite`: the same adapters over
   * Azurite, holding a copy of the in-memory table's rows at that size (load.seconds: the copy).
   */
  readonly storage: 'memory' | 'azurite';
  readonly load: ScaleLoad;
  readonly queries: readonly ScaleQueryResult[];
}

/** Entities a bounded path may read beyond its page: the few series, instance and mark rows of one answer. */
export const BOUND_SLACK = 32;

const compact = (n: number): string => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n));

function pad(cells: readonly (readonly string[])[]): string[] {
  const widths = (cells[0] ?? []).map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells.map((row) =>
    row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  '),
  );
}

/** One row per query shape: operations / entities read (results) at each size of the in-memory runs, then the verdict. */
export function scaleRows(results: readonly ScaleResult[]): string[] {
  const memory = results.filter((result) => result.storage === 'memory');
  const first = memory[0];
  if (!first) return [];
  const header = [
    'shape',
    ...memory.map((result) => `${compact(result.load.studies)}: ops/read (hits)`),
    `≤ page+${BOUND_SLACK}`,
    'grows with N',
  ];
  const rows = first.queries.map((query) => {
    const at = memory.map((result) => result.queries.find((candidate) => candidate.id === query.id));
    const reads = at.map((q) => q?.entitiesRead ?? 0);
    const last = at.at(-1);
    const bounded = at.every((q) => q !== undefined && q.entitiesRead <= q.page + BOUND_SLACK);
    // Each size is several times the last: a read that still grows over the last step grows with N.
    const before = reads.length > 1 ? (reads.at(-2) ?? 0) : Number.POSITIVE_INFINITY;
    const grows = (reads.at(-1) ?? 0) > 2 * Math.max(before, (last?.page ?? 0) + BOUND_SLACK);
    return [
      `${query.id} ${query.title}`,
      ...at.map((q) => (q ? `${q.operations}/${q.entitiesRead} (${q.results})` : '-')),
      bounded ? 'yes' : 'no',
      grows ? 'YES' : 'no',
    ];
  });
  const loads = memory.map(
    (result) =>
      `${compact(result.load.studies)}: ${result.load.instances} instances in ${result.load.seconds.toFixed(0)} s (${result.load.operationsPerInstance.toFixed(1)} ops/instance), ${result.load.tableRows} table rows, heap ${result.load.heapUsedMiB.toFixed(0)} MiB (peak ${result.load.peakHeapMiB.toFixed(0)}, RSS ${result.load.peakRssMiB.toFixed(0)})`,
  );
  return [
    'QIDO-RS at scale, in storage operations (production Table adapters over the in-memory table; per request: operations/entities read (results))',
    ...pad([header, ...rows]),
    ...loads,
    ...azuriteRows(results),
  ];
}

/** The Azurite runs next to the in-memory runs of the same size: equal counts, or what differs. */
function azuriteRows(results: readonly ScaleResult[]): string[] {
  const lines: string[] = [];
  for (const real of results.filter((result) => result.storage === 'azurite')) {
    const fake = results.find((result) => result.storage === 'memory' && result.load.studies === real.load.studies);
    if (!fake) {
      lines.push(`Azurite at ${compact(real.load.studies)}: no in-memory run of that size to compare with`);
      continue;
    }
    const differences = real.queries.flatMap((query) => {
      const other = fake.queries.find((candidate) => candidate.id === query.id);
      const same =
        other !== undefined &&
        other.entitiesRead === query.entitiesRead &&
        other.results === query.results &&
        JSON.stringify(other.byKind) === JSON.stringify(query.byKind);
      return same
        ? []
        : [
            `${query.id}: Azurite ${JSON.stringify(query.byKind)} read ${query.entitiesRead}, memory ${JSON.stringify(other?.byKind)} read ${other?.entitiesRead ?? '-'}`,
          ];
    });
    lines.push(
      `Azurite at ${compact(real.load.studies)} (the in-memory table's ${real.load.tableRows} rows copied in ${real.load.seconds.toFixed(0)} s): ${differences.length === 0 ? `every shape's operations by kind, entities read and results equal the in-memory run's` : `${differences.length} shape(s) differ: ${differences.join('; ')}`}`,
    );
  }
  return lines;
}
