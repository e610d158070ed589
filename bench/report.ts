/** Turns measured runs into the figures printed and saved: medians, rates and the raw ratio. */
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { median, MiB } from './measure.js';
import type { BenchSettings } from './settings.js';

export interface ServerRun {
  readonly seconds: number;
  readonly baselineRssBytes: number;
  readonly peakRssBytes: number;
}

export interface WorkloadResult {
  readonly id: string;
  readonly title: string;
  readonly method: string;
  readonly instances: number;
  /** Instance bytes (multipart framing not counted), the same for the server and the raw upload. */
  readonly bytes: number;
  readonly concurrency: number;
  /** Medians over the repetitions. */
  readonly serverSeconds: number;
  readonly rawSeconds: number;
  readonly instancesPerSecond: number;
  readonly mibPerSecond: number;
  readonly rawMibPerSecond: number;
  /** Server MiB/s ÷ raw MiB/s. */
  readonly ratio: number;
  /** Highest server RSS during the timed part of any repetition. */
  readonly serverPeakRssBytes: number;
  readonly runs: { readonly server: readonly ServerRun[]; readonly rawSeconds: readonly number[] };
}

export function summarize(
  workload: { id: string; title: string; method: string; concurrency: number },
  instances: number,
  bytes: number,
  server: readonly ServerRun[],
  rawSeconds: readonly number[],
): WorkloadResult {
  const serverSeconds = median(server.map((run) => run.seconds));
  const rawMedian = median(rawSeconds);
  const mibPerSecond = bytes / MiB / serverSeconds;
  const rawMibPerSecond = bytes / MiB / rawMedian;
  return {
    ...workload,
    instances,
    bytes,
    serverSeconds,
    rawSeconds: rawMedian,
    instancesPerSecond: instances / serverSeconds,
    mibPerSecond,
    rawMibPerSecond,
    ratio: mibPerSecond / rawMibPerSecond,
    serverPeakRssBytes: Math.max(...server.map((run) => run.peakRssBytes)),
    runs: { server, rawSeconds },
  };
}

export interface BenchReport {
  readonly finishedAt: string;
  readonly machine: {
    readonly node: string;
    readonly platform: string;
    readonly cpus: number;
    readonly memoryMiB: number;
  };
  /** The server code measured: figures only compare across runs of the same source. */
  readonly source: SourceState;
  readonly settings: BenchSettings;
  readonly notes: readonly string[];
  readonly workloads: readonly WorkloadResult[];
  /** The server process that took the large instance: idle after start, and its peak during the upload. */
  readonly largeUpload: { readonly baselineRssMiB: number; readonly peakRssMiB: number } | undefined;
}

export interface SourceState {
  readonly commit: string | undefined;
  /** `git status --porcelain` lines for the server's code, when it differs from the commit. */
  readonly uncommitted: readonly string[];
}

/** Read at the start of a run (the server children load src/ as it is then). */
export function sourceState(repoRoot: string): SourceState {
  const git = (...args: string[]): string =>
    execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const commit = git('rev-parse', '--short', 'HEAD').trim();
    const status = git('status', '--porcelain', '--', 'src', 'package.json', 'package-lock.json');
    return { commit, uncommitted: status.split('\n').filter((line) => line.trim() !== '') };
  } catch {
    return { commit: undefined, uncommitted: [] };
  }
}

export function benchReport(
  source: SourceState,
  settings: BenchSettings,
  notes: readonly string[],
  workloads: readonly WorkloadResult[],
  largeId: string,
): BenchReport {
  const large = workloads.find((workload) => workload.id === largeId)?.runs.server[0];
  return {
    finishedAt: new Date().toISOString(),
    machine: {
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      cpus: cpus().length,
      memoryMiB: Math.round(totalmem() / MiB),
    },
    source,
    settings,
    notes,
    workloads,
    largeUpload: large && {
      baselineRssMiB: round(large.baselineRssBytes / MiB, 1),
      peakRssMiB: round(large.peakRssBytes / MiB, 1),
    },
  };
}

function round(value: number, digits: number): number {
  return Number(value.toFixed(digits));
}

const COLUMNS = ['workload', 'count', 'MiB', 's', 'inst/s', 'MiB/s', 'raw MiB/s', 'ratio', 'srv peak RSS MiB'];

export function formatReport(report: BenchReport): string {
  const rows = report.workloads.map((w) => [
    `${w.id} ${w.title}`,
    String(w.instances),
    (w.bytes / MiB).toFixed(1),
    w.serverSeconds.toFixed(3),
    w.instancesPerSecond.toFixed(1),
    w.mibPerSecond.toFixed(1),
    w.rawMibPerSecond.toFixed(1),
    w.ratio.toFixed(2),
    (w.serverPeakRssBytes / MiB).toFixed(0),
  ]);
  const widths = COLUMNS.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  const { machine, largeUpload, source } = report;
  const changes = source.uncommitted.length > 0 ? ` + ${source.uncommitted.length} uncommitted change(s)` : '';
  return [
    `DICOMweb STOW-RS bench — Node ${machine.node}, ${machine.platform}, ${machine.cpus} CPUs, ${machine.memoryMiB} MiB`,
    `source: commit ${source.commit ?? 'unknown'}${changes}`,
    '',
    line(COLUMNS),
    line(widths.map((width) => '-'.repeat(width))),
    ...rows.map(line),
    '',
    largeUpload
      ? `server RSS: ${largeUpload.baselineRssMiB} MiB idle after start; peak ${largeUpload.peakRssMiB} MiB during the large upload`
      : 'server RSS: no large upload measured',
    '',
    ...report.workloads.map((w) => `${w.id}: ${w.method}.`),
    ...report.notes.map((note) => `- ${note}`),
  ].join('\n');
}
