/** Turns measured runs into the figures printed and saved: medians, rates and the raw ratio. */
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { median, MiB, percentile } from './measure.js';
import { scaleRows, type ScaleResult } from './qido-scale-report.js';
import type { BenchSettings } from './settings.js';
import type { StorageTally } from './server-child.js';

export interface ServerRun {
  readonly seconds: number;
  /** Where the run's data is (the large instance is read back later). */
  readonly container?: string;
  readonly table?: string;
  readonly baselineRssBytes: number;
  readonly peakRssBytes: number;
  /** Blobs besides the instances (warm-up included) that the server wrote, e.g. metadata sidecars. */
  readonly otherBlobs: number;
  readonly otherBlobBytes: number;
  /** Storage operations of the timed requests, from the server's audit records (the storage meter). */
  readonly storage?: StorageTally | undefined;
}

/** Storage operations per instance or request, the server's beside the raw floor's, as measured. */
export interface OperationsFigure {
  readonly server: number;
  readonly raw?: number | undefined;
  /** The server's, by kind (docs/storage.md "Operations per request"). */
  readonly byKind: Readonly<Record<string, number>>;
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
  /** Share of the machine's CPU used by unrelated processes meanwhile (Linux), 0–1. */
  readonly otherCpuShare: number | undefined;
  /** Storage operations per instance (first repetition), server and raw. */
  readonly operations?: OperationsFigure | undefined;
  readonly runs: { readonly server: readonly ServerRun[]; readonly rawSeconds: readonly number[] };
}

/**
 * A latency figure (or a one-off duration): p50 and p95 over `runs` timed requests, next to the
 * same work done straight against Azurite with the SDK when there is such a ceiling.
 */
export interface TimedResult {
  readonly id: string;
  readonly title: string;
  readonly method: string;
  readonly runs: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly raw?: { readonly p50Ms: number; readonly p95Ms: number } | undefined;
  /** Items per second, where that is the figure (change feed entries/s, instances deleted/s). */
  readonly rate?: { readonly value: number; readonly unit: string } | undefined;
  readonly otherCpuShare: number | undefined;
  readonly samplesMs: readonly number[];
  readonly rawSamplesMs?: readonly number[] | undefined;
  /** Storage operations per request, server and raw. */
  readonly operations?: OperationsFigure | undefined;
}

/** One QIDO query at one data set size. */
export interface QidoQueryResult {
  readonly id: string;
  readonly title: string;
  /** Path and query string after the base URL. */
  readonly query: string;
  /** Matches returned (checked against the data set), and the candidate rows the access path gave. */
  readonly results: number;
  readonly candidates: number;
  /** Timed runs (server and raw each). */
  readonly runs: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly rawP50Ms: number;
  readonly rawP95Ms: number;
  readonly samplesMs: readonly number[];
  readonly rawSamplesMs: readonly number[];
}

export interface QidoResult {
  /** Studies asked for, and those in the table when measured (fewer if loading ran out of time). */
  readonly requested: number;
  readonly studies: number;
  readonly load: { readonly seconds: number; readonly studiesPerSecond: number; readonly loaded: number };
  readonly otherCpuShare: number | undefined;
  readonly queries: readonly QidoQueryResult[];
}

/** A figure next to its target, printed in the targets block. */
export interface TargetCheck {
  readonly name: string;
  readonly value: string;
  readonly target: string;
  /** Undefined when it could not be measured. */
  readonly met: boolean | undefined;
}

/** What a section adds to the report. */
export interface SectionResult {
  readonly workloads: readonly WorkloadResult[];
  readonly timings: readonly TimedResult[];
  readonly qido: readonly QidoResult[];
  /** QIDO at scale in storage operations (bench/qido-scale.ts). */
  readonly qidoScale?: readonly ScaleResult[];
  readonly checks: readonly TargetCheck[];
  readonly notes: readonly string[];
}

export const emptySection = (): SectionResult => ({ workloads: [], timings: [], qido: [], checks: [], notes: [] });

export function timedResult(
  head: { id: string; title: string; method: string },
  samplesMs: readonly number[],
  rawSamplesMs: readonly number[] | undefined,
  otherCpuShare: number | undefined,
  rate?: { value: number; unit: string },
  operations?: OperationsFigure,
): TimedResult {
  return {
    ...head,
    operations,
    runs: samplesMs.length,
    p50Ms: median(samplesMs),
    p95Ms: percentile(samplesMs, 95),
    raw:
      rawSamplesMs && rawSamplesMs.length > 0
        ? { p50Ms: median(rawSamplesMs), p95Ms: percentile(rawSamplesMs, 95) }
        : undefined,
    rate,
    otherCpuShare,
    samplesMs,
    rawSamplesMs,
  };
}

export function summarize(
  workload: { id: string; title: string; method: string; concurrency: number },
  instances: number,
  bytes: number,
  server: readonly ServerRun[],
  rawSeconds: readonly number[],
  otherCpuShare: number | undefined,
  rawOperations?: number,
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
    otherCpuShare,
    operations: perItem(server[0]?.storage, instances, rawOperations),
    runs: { server, rawSeconds },
  };
}

/** A tally's operations per item (instance or request), beside the raw floor's total for as many. */
export function perItem(
  tally: StorageTally | undefined,
  items: number,
  rawOperations?: number,
): OperationsFigure | undefined {
  if (!tally || items === 0) return undefined;
  const byKind = Object.fromEntries(
    Object.entries(tally.byKind).map(([kind, count]) => [kind, Number((count / items).toFixed(2))]),
  );
  return {
    server: Number((tally.operations / items).toFixed(2)),
    raw: rawOperations === undefined ? undefined : Number((rawOperations / items).toFixed(2)),
    byKind,
  };
}

/** "2.3 (raw 1.0)": a figure's operations per item. */
export function operationsCell(figure: OperationsFigure | undefined): string {
  if (!figure) return '-';
  return figure.raw === undefined
    ? figure.server.toFixed(1)
    : `${figure.server.toFixed(1)} (raw ${figure.raw.toFixed(1)})`;
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
  readonly timings: readonly TimedResult[];
  readonly qido: readonly QidoResult[];
  readonly qidoScale: readonly ScaleResult[];
  readonly checks: readonly TargetCheck[];
  /** Wall time of the whole run, build and Azurite start included. */
  readonly totalSeconds: number;
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
  sections: readonly SectionResult[],
  largeId: string,
  totalSeconds: number,
): BenchReport {
  const workloads = sections.flatMap((section) => section.workloads);
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
    notes: [...sections.flatMap((section) => section.notes), ...notes],
    workloads,
    largeUpload: large && {
      baselineRssMiB: round(large.baselineRssBytes / MiB, 1),
      peakRssMiB: round(large.peakRssBytes / MiB, 1),
    },
    timings: sections.flatMap((section) => section.timings),
    qido: sections.flatMap((section) => section.qido),
    qidoScale: sections.flatMap((section) => section.qidoScale ?? []),
    checks: sections.flatMap((section) => section.checks),
    totalSeconds: round(totalSeconds, 1),
  };
}

function round(value: number, digits: number): number {
  return Number(value.toFixed(digits));
}

/** Blobs the server wrote beside the instances are part of its work; say so. */
function sideBlobs(workload: WorkloadResult): string {
  const run = workload.runs.server[0];
  if (!run || run.otherBlobs === 0) return '';
  return ` The server also wrote ${run.otherBlobs} other blobs (${(run.otherBlobBytes / 1024).toFixed(0)} KiB) per run.`;
}

const COLUMNS = [
  'workload',
  'count',
  'MiB',
  's',
  'inst/s',
  'MiB/s',
  'raw MiB/s',
  'ratio',
  'srv peak RSS MiB',
  'ops/inst',
  'other load',
];

/** Columns padded to their widest cell; the first `left` are left-aligned, the others right-aligned. */
function table(header: readonly string[], rows: readonly (readonly string[])[], left = 1): string[] {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i < left ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)];
}

const share = (value: number | undefined): string => (value === undefined ? 'n/a' : `${(value * 100).toFixed(0)}%`);
const ms = (value: number | undefined): string =>
  value === undefined ? '-' : value >= 100 ? value.toFixed(0) : value.toFixed(1);
const times = (value: number): string => `${value.toFixed(value >= 10 ? 0 : 2)}×`;

function timingRows(timings: readonly TimedResult[]): string[] {
  return table(
    ['measure', 'runs', 'p50 ms', 'p95 ms', 'raw p50', 'raw p95', 'p50 ×raw', 'rate', 'ops/req', 'other load'],
    timings.map((t) => [
      `${t.id} ${t.title}`,
      String(t.runs),
      ms(t.p50Ms),
      t.runs > 1 ? ms(t.p95Ms) : '-',
      ms(t.raw?.p50Ms),
      t.raw && t.runs > 1 ? ms(t.raw.p95Ms) : '-',
      t.raw ? times(t.p50Ms / t.raw.p50Ms) : '-',
      t.rate ? `${t.rate.value.toFixed(t.rate.value >= 100 ? 0 : 1)} ${t.rate.unit}` : '-',
      operationsCell(t.operations),
      share(t.otherCpuShare),
    ]),
  );
}

/** One row per query: p50/p95 (server and raw) at each data set size, and how p95 grew. */
function qidoRows(results: readonly QidoResult[]): string[] {
  if (results.length === 0) return [];
  const header = ['query'];
  for (const result of results) {
    const n = `${result.studies / 1000}k`;
    header.push(`${n} hits/cand`, 'runs', `${n} p50`, `${n} p95`, `${n} raw p50`, `${n} raw p95`);
  }
  const first = results[0] as QidoResult;
  const last = results.at(-1) as QidoResult;
  const growing = results.length > 1;
  if (growing) header.push('p95 growth', 'raw growth');
  const rows = first.queries.map((query) => {
    const cells = [`${query.id} ${query.title}`];
    for (const result of results) {
      const q = result.queries.find((candidate) => candidate.id === query.id);
      cells.push(
        q ? `${q.results}/${q.candidates}` : '-',
        q ? String(q.runs) : '-',
        ms(q?.p50Ms),
        ms(q?.p95Ms),
        ms(q?.rawP50Ms),
        ms(q?.rawP95Ms),
      );
    }
    if (growing) {
      const end = last.queries.find((candidate) => candidate.id === query.id);
      cells.push(end ? times(end.p95Ms / query.p95Ms) : '-', end ? times(end.rawP95Ms / query.rawP95Ms) : '-');
    }
    return cells;
  });
  const sizes = results.map(
    (r) =>
      `${r.studies} studies (loaded ${r.load.loaded} in ${r.load.seconds.toFixed(0)} s, ${r.load.studiesPerSecond.toFixed(0)}/s; other load ${share(r.otherCpuShare)})`,
  );
  return [`QIDO-RS (ms): ${sizes.join('; ')}`, ...table(header, rows)];
}

function checkRows(checks: readonly TargetCheck[]): string[] {
  if (checks.length === 0) return [];
  return [
    'targets:',
    ...table(
      ['figure', 'value', 'target', 'met'],
      checks.map((c) => [c.name, c.value, c.target, c.met === undefined ? 'n/a' : c.met ? 'yes' : 'NO']),
      4,
    ),
  ];
}

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
    operationsCell(w.operations),
    share(w.otherCpuShare),
  ]);
  const { machine, largeUpload, source } = report;
  const changes = source.uncommitted.length > 0 ? ` + ${source.uncommitted.length} uncommitted change(s)` : '';
  const blocks: string[][] = [
    [
      `DICOMweb bench (STOW-RS, WADO-RS, change feed, QIDO-RS) — Node ${machine.node}, ${machine.platform}, ${machine.cpus} CPUs, ${machine.memoryMiB} MiB`,
      `source: commit ${source.commit ?? 'unknown'}${changes}; server as ${report.settings.serverRuntime === 'js' ? 'compiled JS (node dist/bench-server)' : 'TypeScript under tsx'}; ${report.totalSeconds.toFixed(0)} s in all`,
    ],
    table(COLUMNS, rows),
    [
      largeUpload
        ? `server RSS: ${largeUpload.baselineRssMiB} MiB idle after start; peak ${largeUpload.peakRssMiB} MiB during the large upload`
        : 'server RSS: no large upload measured',
    ],
  ];
  if (report.timings.length > 0) blocks.push(timingRows(report.timings));
  const qido = qidoRows(report.qido);
  if (qido.length > 0) blocks.push(qido);
  const scale = scaleRows(report.qidoScale);
  if (scale.length > 0) blocks.push(scale);
  const checks = checkRows(report.checks);
  if (checks.length > 0) blocks.push(checks);
  blocks.push([
    ...report.workloads.map((w) => `${w.id}: ${w.method}.${sideBlobs(w)}`),
    ...report.timings.map((t) => `${t.id}: ${t.method}.`),
    ...report.notes.map((note) => `- ${note}`),
  ]);
  return blocks.map((block) => block.join('\n')).join('\n\n');
}
