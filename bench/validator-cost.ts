/**
 * What the whole-stream structure check costs a STOW: the same server stores the same instances
 * with the check (the default) and without it (BENCH_VALIDATOR=off: the app's validateStructure
 * is false), runs taking turns, for the 1 GiB instance and the CT series; throughput and peak RSS.
 */
import { watchOtherLoad } from './machine-load.js';
import { median, MiB, takingTurns, timedPool } from './measure.js';
import type { SectionResult, TargetCheck } from './report.js';
import { freshStorage, withServer, type BenchContext } from './context.js';
import { stow } from './stow-client.js';
import { bodySize, LARGE_WORKLOAD, warmUpRequest, workloadPlans } from './workloads.js';

type Mode = 'on' | 'off';

/** The workloads the issue names: the 1 GiB instance and the 200-instance CT series (single-part). */
const WORKLOADS = [LARGE_WORKLOAD, 'b1'];
/** Throughput with the check must stay within 5 % of the same build without it. */
const TARGET_RATIO = 0.95;

export async function validatorCostSection(context: BenchContext): Promise<SectionResult> {
  const checks: TargetCheck[] = [];
  const notes: string[] = [];
  // At least 4 runs per mode, an even number, so ABBA evens out drift.
  const repeats = Math.max(4, context.settings.readRepeats + (context.settings.readRepeats % 2));
  for (const plan of workloadPlans(context.settings, context.tempDir).filter((each) => WORKLOADS.includes(each.id))) {
    const work = await plan.prepare();
    try {
      const bytes = work.instances.reduce((sum, body) => sum + bodySize(body), 0);
      const seconds: Record<Mode, number[]> = { on: [], off: [] };
      const peakRss: Record<Mode, number[]> = { on: [], off: [] };
      const otherLoad = watchOtherLoad();
      const runOnce = async (mode: Mode): Promise<void> => {
        const env: Record<string, string> = mode === 'off' ? { BENCH_VALIDATOR: 'off' } : {};
        await withServer(
          freshStorage(context.target, `v${plan.id}${mode}`),
          plan.concurrency,
          async (server, agent) => {
            const url = `${server.baseUrl}/v2/studies`;
            await stow(agent, url, warmUpRequest());
            await server.resetPeak();
            seconds[mode].push(
              await timedPool(work.requests, plan.concurrency, (request) => stow(agent, url, request)),
            );
            peakRss[mode].push((await server.memory()).peakRssBytes);
          },
          env,
        );
      };
      for (let run = 0; run < repeats; run++) {
        await takingTurns(
          run,
          () => runOnce('on'),
          () => runOnce('off'),
        );
        context.progress(
          `v ${plan.id} run ${run + 1}/${repeats}: with the check ${seconds.on.at(-1)?.toFixed(2)} s, without ${seconds.off.at(-1)?.toFixed(2)} s`,
        );
      }
      const share = otherLoad();
      const rate = (mode: Mode) => bytes / MiB / median(seconds[mode]);
      const ratio = rate('on') / rate('off');
      checks.push({
        name: `v ${plan.id} (${plan.title}): STOW with the structure check vs without`,
        value: `${rate('on').toFixed(1)} vs ${rate('off').toFixed(1)} MiB/s = ${ratio.toFixed(3)}; peak RSS ${(median(peakRss.on) / MiB).toFixed(0)} vs ${(median(peakRss.off) / MiB).toFixed(0)} MiB (medians of ${repeats} runs each, other load ${share === undefined ? '?' : `${(share * 100).toFixed(0)} %`})`,
        target: `≥ ${TARGET_RATIO} of without`,
        met: ratio >= TARGET_RATIO,
      });
    } finally {
      await work.dispose();
    }
  }
  notes.push(
    'v: each run is a fresh server process over a fresh container and table; "without" sets BENCH_VALIDATOR=off, which turns off only the whole-stream structure check (validateStructure: false); the modes take turns (ABBA).',
  );
  return { workloads: [], timings: [], qido: [], checks, notes };
}
