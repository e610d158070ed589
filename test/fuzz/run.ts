/**
 * The long fuzz run: `npm run fuzz -- --seed 123 --count 100000`, with optional
 * `--sweep all|generated|none` (default all), `--case N`, `--no-azure` and `--no-structure-check`
 * (the server without its structure check, to see the oracle bite). Prints each violation with its
 * seed and mutation as it happens, the counts at the end, and exits 1 on any violation. `--case N`
 * replays one case of a run (give the same --seed, --count, --sweep and --no-azure).
 */
import { formatCounts, runFuzz, violationCount, type SweepMode } from './harness.js';
import { loadSeeds } from './seeds.js';

function argument(name: string): string | undefined {
  const args = process.argv.slice(2);
  const at = args.indexOf(`--${name}`);
  if (at >= 0) return args[at + 1];
  return args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
}

function integer(name: string, fallback: number): number {
  const text = argument(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${name} needs a non-negative integer, not ${text}`);
  return value;
}

const seed = integer('seed', 1);
const count = integer('count', 20_000);
const sweep = (argument('sweep') ?? 'all') as SweepMode;
if (!['all', 'generated', 'none'].includes(sweep)) throw new Error(`--sweep is all, generated or none, not ${sweep}`);
const onlyText = argument('case');
const only = onlyText === undefined ? undefined : integer('case', 0);
const azureSamples = !process.argv.includes('--no-azure');
const validateStructure = !process.argv.includes('--no-structure-check');

const seeds = loadSeeds({ azureSamples });
console.log(
  `fuzz: seed ${seed}, ${only === undefined ? `${count} random cases after the ${sweep} sweep` : `case ${only} only`}, ` +
    `${seeds.length} seeds${azureSamples ? '' : ' (no Azure samples)'}`,
);
let lastReport = Date.now();
const summary = await runFuzz({
  seed,
  count,
  sweep,
  only,
  seeds,
  validateStructure,
  onViolation: (report) => {
    console.log(
      `\nVIOLATION ${report}\n  replay: npm run fuzz -- --seed ${seed} --count ${count} --sweep ${sweep}${azureSamples ? '' : ' --no-azure'} --case ${report.match(/^case (\d+)/)?.[1] ?? '?'}`,
    );
  },
  onProgress: (done, total, counts) => {
    if (Date.now() - lastReport < 10_000) return;
    lastReport = Date.now();
    console.log(
      `  ${done}/${total}: rejected ${counts.rejected}, accepted ${counts.accepted}, violations ${violationCount(counts)}`,
    );
  },
});
console.log(`\n${formatCounts(summary.counts)}`);
console.log(`sweep cases ${summary.sweepCases}; ${(summary.milliseconds / 1000).toFixed(1)} s`);
const violations = violationCount(summary.counts);
if (violations > 0) {
  console.log(`${violations} case(s) broke a promise.`);
  process.exit(1);
}
