/**
 * What the change feed write costs a STOW: the same server with its change feed (the default) and
 * without it (BENCH_CHANGE_FEED=off replaces the append with a no-op).
 */
import type { BenchContext } from './context.js';
import type { SectionResult } from './report.js';
import { stowCostSection } from './stow-cost.js';

export function changeFeedCostSection(context: BenchContext): Promise<SectionResult> {
  return stowCostSection(context, {
    id: 'f',
    storageLabel: 'feedcost',
    feature: 'the change feed write',
    env: (mode): Record<string, string> => (mode === 'without' ? { BENCH_CHANGE_FEED: 'off' } : {}),
    switchNote: 'BENCH_CHANGE_FEED=off makes the server’s change feed append a no-op',
    note: `f: cost per instance = (median request latency with − without) ÷ instances per request: how much longer an instance takes to store because its change feed entry is written. Single-part requests append one entry per request (one transaction); a multipart request appends all its entries in one group (a transaction per 33 entries). Throughput differences between runs are mostly Azurite's periodic database save landing in some runs.`,
  });
}
