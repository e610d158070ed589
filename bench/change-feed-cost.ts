/**
 * What the change feed write costs a STOW: the same server stores fresh small instances with its
 * change feed (the default) and without it (BENCH_CHANGE_FEED=off replaces the append with a
 * no-op), runs taking turns, single-part and multipart; the difference per instance is the price.
 */
import { buildInstance, newInstanceUids } from '../support/dicom-builder.js';
import { type BenchContext, freshStorage, withServer } from './context.js';
import { watchOtherLoad } from './machine-load.js';
import { median, timed, timedPool } from './measure.js';
import { timedResult, type SectionResult, type TargetCheck, type TimedResult } from './report.js';
import { stow } from './stow-client.js';
import { multipartRequest, type StowRequest } from './workloads.js';

/** Instances per run: small (64×64×16 bit), so the index and feed writes, not bytes, dominate. */
const INSTANCES = 300;
const PIXEL_BYTES = 64 * 64 * 2;
const BATCH = 10;

type Mode = 'with' | 'without';

function requests(multipart: boolean): StowRequest[] {
  const { studyInstanceUid, seriesInstanceUid } = newInstanceUids();
  const files = Array.from({ length: INSTANCES }, () =>
    buildInstance({ ...newInstanceUids(studyInstanceUid, seriesInstanceUid), pixelBytes: PIXEL_BYTES }),
  );
  if (!multipart)
    return files.map((bytes) => ({ body: { kind: 'buffer', bytes }, contentType: 'application/dicom', instances: 1 }));
  const batches: StowRequest[] = [];
  for (let i = 0; i < files.length; i += BATCH) batches.push(multipartRequest(files.slice(i, i + BATCH)));
  return batches;
}

export async function changeFeedCostSection(context: BenchContext): Promise<SectionResult> {
  const { concurrency } = context.settings;
  // An even number of runs per mode (ABBA…), at least 4: one run is a few seconds, and Azurite's
  // periodic database save (every 5 s on disk) lands in some runs and not others.
  const readRepeats = Math.max(4, context.settings.readRepeats + (context.settings.readRepeats % 2));
  const storage = freshStorage(context.target, 'feedcost');
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
        const env: Record<string, string> = mode === 'without' ? { BENCH_CHANGE_FEED: 'off' } : {};
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
          },
          env,
        );
      }
    }
    const share = otherLoad();
    const rate = (mode: Mode) => INSTANCES / median(seconds[mode]);
    const perRequest = multipart ? BATCH : 1;
    const costMs = (median(latencies.with) - median(latencies.without)) / perRequest;
    context.progress(
      `f ${label}: ${rate('with').toFixed(1)} inst/s with the change feed, ${rate('without').toFixed(1)} without`,
    );
    for (const mode of ['with', 'without'] as const) {
      timings.push(
        timedResult(
          {
            id: `f${multipart ? 'b' : 'a'}-${mode}`,
            title: `STOW ${label}, ${mode} the change feed write`,
            method: `${INSTANCES} fresh instances (64×64×16 bit) in ${label} requests, ${concurrency} clients, ${readRepeats} runs per mode taking turns (ABBA), each against a fresh server process over the same container and table${mode === 'without' ? '; BENCH_CHANGE_FEED=off makes the server’s change feed append a no-op' : ''}; p50/p95 = request latency, rate = instances ÷ median run wall time`,
          },
          latencies[mode],
          undefined,
          share,
          { value: rate(mode), unit: 'inst/s' },
        ),
      );
    }
    checks.push({
      name: `f ${label}: change feed write per instance`,
      value: `${costMs.toFixed(1)} ms per instance (median request latency ${median(latencies.with).toFixed(1)} vs ${median(latencies.without).toFixed(1)} ms${multipart ? ` per ${BATCH} instances` : ''}); throughput ${rate('with').toFixed(1)} vs ${rate('without').toFixed(1)} inst/s`,
      target: 'reported (no target)',
      met: undefined,
    });
  }
  return {
    workloads: [],
    timings,
    qido: [],
    checks,
    notes: [
      `f: cost per instance = (median request latency with − without) ÷ instances per request: how much longer an instance takes to store because its change feed entry is written. Single-part requests append one entry per request (one transaction); a multipart request appends all its entries in one group (a transaction per 33 entries). Throughput differences between runs are mostly Azurite's periodic database save landing in some runs.`,
    ],
  };
}
