/**
 * What one server feature costs a STOW: the same server stores fresh small instances with the
 * feature on and off (a bench-only environment switch on the server child), runs taking turns
 * (ABBA), single-part and multipart; the difference in median request latency per instance is the
 * price. The change feed write (section f) and the event publisher (section e) are priced so.
 */
import { buildInstance, newInstanceUids } from '../support/dicom-builder.js';
import { type BenchContext, freshStorage, withServer } from './context.js';
import { watchOtherLoad } from './machine-load.js';
import { median, timed, timedPool } from './measure.js';
import { timedResult, type SectionResult, type TargetCheck, type TimedResult } from './report.js';
import type { ServerChild, ServerStorage } from './server-child.js';
import { stow } from './stow-client.js';
import { multipartRequest, type StowRequest } from './workloads.js';

/** Instances per run: small (64×64×16 bit), so the index and feed writes, not bytes, dominate. */
export const COST_INSTANCES = 300;
const PIXEL_BYTES = 64 * 64 * 2;
const BATCH = 10;

export type Mode = 'with' | 'without';

export interface StowCostSpec {
  /** Section id, the prefix of its timing ids (`f` → fa-with, fb-without…). */
  readonly id: string;
  /** Label of its container and table. */
  readonly storageLabel: string;
  /** What is priced, after "with" / "without": "the change feed write". */
  readonly feature: string;
  /** The server child's environment in each mode. */
  readonly env: (mode: Mode) => Record<string, string>;
  /** How the server differs in the mode that is not the default, for the method text. */
  readonly switchNote: string;
  /** Runs after each run's requests, with the server still up (e.g. waits for its background work). */
  readonly afterRun?: ((mode: Mode, server: ServerChild, storage: ServerStorage) => Promise<void>) | undefined;
  /** A limit on the relative added latency (0.1: 10 %), checked on the median request latency. */
  readonly maxAddedShare?: number | undefined;
  readonly note: string;
}

function requests(multipart: boolean): StowRequest[] {
  const { studyInstanceUid, seriesInstanceUid } = newInstanceUids();
  const files = Array.from({ length: COST_INSTANCES }, () =>
    buildInstance({ ...newInstanceUids(studyInstanceUid, seriesInstanceUid), pixelBytes: PIXEL_BYTES }),
  );
  if (!multipart)
    return files.map((bytes) => ({ body: { kind: 'buffer', bytes }, contentType: 'application/dicom', instances: 1 }));
  const batches: StowRequest[] = [];
  for (let i = 0; i < files.length; i += BATCH) batches.push(multipartRequest(files.slice(i, i + BATCH)));
  return batches;
}

export async function stowCostSection(context: BenchContext, spec: StowCostSpec): Promise<SectionResult> {
  const { concurrency } = context.settings;
  // An even number of runs per mode (ABBA…), at least 4: one run is a few seconds, and Azurite's
  // periodic database save (every 5 s on disk) lands in some runs and not others.
  const readRepeats = Math.max(4, context.settings.readRepeats + (context.settings.readRepeats % 2));
  const storage = freshStorage(context.target, spec.storageLabel);
  const timings: TimedResult[] = [];
  const checks: TargetCheck[] = [];
  for (const multipart of [false, true]) {
    const label = multipart ? `multipart ×${BATCH}` : 'single-part';
    const seconds: Record<Mode, number[]> = { with: [], without: [] };
    // Each request's latency too: its median shrugs off the runs an Azurite pause lands in.
    const latencies: Record<Mode, number[]> = { with: [], without: [] };
    const otherLoad = watchOtherLoad();
    for (let run = 0; run < readRepeats; run++) {
      // ABBA order, so drift over the runs (a growing table) does not favour one mode.
      const order: Mode[] = run % 2 === 0 ? ['with', 'without'] : ['without', 'with'];
      for (const mode of order) {
        await withServer(
          storage,
          concurrency,
          async (server, agent) => {
            const url = `${server.baseUrl}/v2/studies`;
            await stow(agent, url, requests(false)[0] as StowRequest); // warm-up: connections, JIT
            const timedStow = async (request: StowRequest): Promise<void> => {
              const { ms } = await timed(() => stow(agent, url, request));
              latencies[mode].push(ms);
            };
            seconds[mode].push(await timedPool(requests(multipart), concurrency, timedStow));
            await spec.afterRun?.(mode, server, storage);
          },
          spec.env(mode),
        );
      }
    }
    const share = otherLoad();
    const rate = (mode: Mode) => COST_INSTANCES / median(seconds[mode]);
    const perRequest = multipart ? BATCH : 1;
    const [withMs, withoutMs] = [median(latencies.with), median(latencies.without)];
    const costMs = (withMs - withoutMs) / perRequest;
    context.progress(
      `${spec.id} ${label}: ${rate('with').toFixed(1)} inst/s with ${spec.feature}, ${rate('without').toFixed(1)} without`,
    );
    for (const mode of ['with', 'without'] as const) {
      timings.push(
        timedResult(
          {
            id: `${spec.id}${multipart ? 'b' : 'a'}-${mode}`,
            title: `STOW ${label}, ${mode} ${spec.feature}`,
            method: `${COST_INSTANCES} fresh instances (64×64×16 bit) in ${label} requests, ${concurrency} clients, ${readRepeats} runs per mode taking turns (ABBA), each against a fresh server process over the same container and table; ${spec.switchNote}; p50/p95 = request latency, rate = instances ÷ median run wall time`,
          },
          latencies[mode],
          undefined,
          share,
          { value: rate(mode), unit: 'inst/s' },
        ),
      );
    }
    const added = withMs / withoutMs - 1;
    checks.push({
      name: `${spec.id} ${label}: ${spec.feature} per instance`,
      value: `${costMs.toFixed(1)} ms per instance, ${(added * 100).toFixed(1)} % (median request latency ${withMs.toFixed(1)} vs ${withoutMs.toFixed(1)} ms${multipart ? ` per ${BATCH} instances` : ''}); throughput ${rate('with').toFixed(1)} vs ${rate('without').toFixed(1)} inst/s`,
      target:
        spec.maxAddedShare === undefined
          ? 'reported (no target)'
          : `at most +${(spec.maxAddedShare * 100).toFixed(0)} % median latency`,
      met: spec.maxAddedShare === undefined ? undefined : added <= spec.maxAddedShare,
    });
  }
  return { workloads: [], timings, qido: [], checks, notes: [spec.note] };
}
