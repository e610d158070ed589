/**
 * Runs fuzz cases against the app over in-memory storage (no Azurite) and checks the server's
 * promises for each: no 5xx; a status of 200, 202 or 409 (400 only for a broken envelope); and an
 * instance visible only when the stored blob's bytes parse completely with dicom-parser (see
 * oracle.ts). Every case is fixed by the run seed and its index, so a failure can be replayed.
 */
import { createApp } from '../../src/app.js';
import { createMemoryStorage, type MemoryStorage } from '../../src/storage/memory-storage.js';
import type { InstanceKey, InstanceRecord } from '../../src/storage/ports.js';
import { dicomParts, multipartBody } from '../../support/multipart.js';
import { mutate, truncateAt, type Mutant, type MutationKind } from './mutations.js';
import { parseFully } from './oracle.js';
import { caseSeed, mulberry32, type Rng } from './prng.js';
import { companionInstance, loadSeeds, type Seed } from './seeds.js';

export type ViolationCategory =
  'serverError' | 'unexpectedStatus' | 'malformedVisible' | 'inconsistent' | 'leftover' | 'hang';

export interface Violation {
  readonly category: ViolationCategory;
  readonly message: string;
}

export interface FuzzCase {
  readonly runSeed: number;
  readonly index: number;
  readonly seed: Seed;
  readonly mutant: Mutant;
  readonly envelope: 'single' | 'multipart';
  /** In a multipart body: whether the valid companion instance comes first. */
  readonly companionFirst: boolean;
  /** Sizes of the body's chunks as the stream hands them over; empty for the whole body at once. */
  readonly chunkSizes: readonly number[];
}

export interface CaseOutcome {
  readonly status: number;
  /** The mutated instance is visible. */
  readonly accepted: boolean;
  /** dicom-parser accepts the mutated bytes (the server may still reject them: it is stricter). */
  readonly parserAccepts: boolean;
  /** The first FailureReason of the response, if any. */
  readonly failureReason: number | undefined;
  readonly violations: readonly Violation[];
}

export interface KindCounts {
  cases: number;
  rejected: number;
  accepted: number;
}

export interface Counts {
  cases: number;
  serverErrors: number;
  unexpectedStatus: number;
  malformedVisible: number;
  inconsistent: number;
  leftover: number;
  hang: number;
  rejected: number;
  accepted: number;
  /** Rejected by the server though dicom-parser takes them (the server is stricter). */
  stricterThanParser: number;
  statuses: Record<string, number>;
  failureReasons: Record<string, number>;
  byKind: Partial<Record<MutationKind | 'sweep', KindCounts>>;
}

export function emptyCounts(): Counts {
  return {
    cases: 0,
    serverErrors: 0,
    unexpectedStatus: 0,
    malformedVisible: 0,
    inconsistent: 0,
    leftover: 0,
    hang: 0,
    rejected: 0,
    accepted: 0,
    stricterThanParser: 0,
    statuses: {},
    failureReasons: {},
    byKind: {},
  };
}

export type SweepMode = 'none' | 'generated' | 'all';

export interface RunOptions {
  readonly seed: number;
  /** Random cases after the sweep. */
  readonly count: number;
  /** Truncate every seed (generated ones, or all) at every element boundary first. */
  readonly sweep: SweepMode;
  /** Only this case index (a replay). */
  readonly only?: number | undefined;
  readonly seeds?: readonly Seed[];
  readonly timeoutMs?: number;
  /** False runs the server without its structure check (the benchmark's baseline), to see the oracle bite. */
  readonly validateStructure?: boolean;
  readonly onViolation?: (report: string) => void;
  readonly onProgress?: (done: number, total: number, counts: Counts) => void;
}

export interface RunSummary {
  readonly counts: Counts;
  readonly sweepCases: number;
  readonly milliseconds: number;
  readonly reports: readonly string[];
}

const COMPANION = companionInstance(1);

/**
 * The cases of a run, without running them: first every element-boundary truncation of the
 * sweep's seeds (in seed order), then `count` random mutations.
 */
export class CasePlan {
  readonly sweep: readonly { readonly seed: Seed; readonly position: number }[];
  readonly total: number;
  private readonly weights: number;

  constructor(
    readonly runSeed: number,
    readonly seeds: readonly Seed[],
    count: number,
    sweep: SweepMode,
  ) {
    const swept = sweep === 'none' ? [] : sweep === 'all' ? seeds : seeds.filter((seed) => seed.generated);
    this.sweep = swept.flatMap((seed) => elementBoundaries(seed).map((position) => ({ seed, position })));
    this.total = this.sweep.length + count;
    this.weights = seeds.reduce((sum, seed) => sum + seed.weight, 0);
  }

  build(index: number): FuzzCase {
    const rng = mulberry32(caseSeed(this.runSeed, index));
    const swept = this.sweep[index];
    let seed: Seed;
    let mutant: Mutant;
    if (swept) {
      seed = swept.seed;
      mutant = truncateAt(seed, swept.position, 'element boundary');
    } else {
      seed = this.pickSeed(rng);
      mutant = mutate(seed, rng);
    }
    const envelope = rng.chance(0.25) ? 'multipart' : 'single';
    return {
      runSeed: this.runSeed,
      index,
      seed,
      mutant,
      envelope,
      companionFirst: rng.chance(0.5),
      chunkSizes: chunking(rng, mutant.bytes.length + (envelope === 'multipart' ? COMPANION.length + 512 : 0)),
    };
  }

  private pickSeed(rng: Rng): Seed {
    let roll = rng.next() * this.weights;
    for (const seed of this.seeds) {
      roll -= seed.weight;
      if (roll < 0) return seed;
    }
    const last = this.seeds[this.seeds.length - 1];
    if (!last) throw new Error('no seeds');
    return last;
  }
}

/** Where elements, items and delimiters start and end (not the whole file). */
function elementBoundaries(seed: Seed): number[] {
  const layout = seed.layout;
  const at = new Set<number>([layout.metaEnd]);
  for (const node of layout.nodes) {
    at.add(node.offset);
    at.add(node.end);
  }
  at.delete(layout.logical.length);
  return [...at].sort((a, b) => a - b);
}

/** Half the bodies arrive whole; the rest in chunks of random sizes, tiny ones included. */
function chunking(rng: Rng, size: number): number[] {
  if (rng.chance(0.5)) return [];
  const big = size > 256 * 1024;
  const sizes: number[] = [];
  let left = size;
  const tiny = rng.chance(0.3);
  while (left > 0 && sizes.length < 100_000) {
    const next = big ? rng.range(16 * 1024, 256 * 1024) : tiny ? rng.range(1, 64) : rng.range(1, 8192);
    sizes.push(next);
    left -= next;
  }
  return sizes;
}

function bodyStream(body: Uint8Array, sizes: readonly number[]): ReadableStream<Uint8Array> {
  let at = 0;
  let chunk = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= body.length) {
        controller.close();
        return;
      }
      const size = sizes[chunk] ?? body.length - at;
      chunk += 1;
      controller.enqueue(body.slice(at, at + size));
      at += size;
    },
  });
}

/** The app over fresh in-memory storage, as test/helpers/memory-app.ts builds it, but quiet and logging 500s. */
export function fuzzApp(errors: string[] = [], validateStructure = true) {
  const storage = createMemoryStorage();
  const app = createApp({
    storage,
    config: { publicBaseUrl: undefined, maxHeaderBytes: 1 << 20, emptySearchStatus: 200, validateStructure },
    log: (message, error) =>
      errors.push(`${message}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`),
    audit: () => undefined,
  });
  return { storage, app };
}

type Json = Record<string, { Value?: Record<string, { Value?: unknown[] }>[] } | undefined>;

export async function runCase(fuzzCase: FuzzCase, timeoutMs = 30_000, validateStructure = true): Promise<CaseOutcome> {
  const errors: string[] = [];
  const { storage, app } = fuzzApp(errors, validateStructure);
  const mutant = fuzzCase.mutant.bytes;
  const multipart = fuzzCase.envelope === 'multipart';
  const boundary = `fuzz-${fuzzCase.runSeed.toString(16)}-${fuzzCase.index.toString(16)}-e1f7a9c3b5d2`;
  const parts = multipart ? (fuzzCase.companionFirst ? [COMPANION, mutant] : [mutant, COMPANION]) : [mutant];
  const body = multipart ? multipartBody(dicomParts(parts), boundary) : mutant;
  const contentType = multipart
    ? `multipart/related; type="application/dicom"; boundary=${boundary}`
    : 'application/dicom';
  const violations: Violation[] = [];
  const parserAccepts = parseFully(mutant).ok;

  const request = new Request('http://localhost:7071/v2/studies', {
    method: 'POST',
    headers: { 'content-type': contentType, accept: 'application/dicom+json' },
    body: fuzzCase.chunkSizes.length === 0 ? (body as Uint8Array<ArrayBuffer>) : bodyStream(body, fuzzCase.chunkSizes),
    duplex: 'half',
  } as RequestInit);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => {
      resolve('timeout');
    }, timeoutMs);
  });
  let answered: { status: number; text: string } | 'timeout';
  try {
    answered = await Promise.race([
      app.handle(request).then(async (response) => ({ status: response.status, text: await response.text() })),
      timeout,
    ]);
  } catch (error) {
    violations.push({ category: 'serverError', message: `app.handle threw: ${String(error)}` });
    return { status: 0, accepted: false, parserAccepts, failureReason: undefined, violations };
  } finally {
    clearTimeout(timer);
  }
  if (answered === 'timeout') {
    violations.push({ category: 'hang', message: `no response within ${timeoutMs} ms` });
    return { status: 0, accepted: false, parserAccepts, failureReason: undefined, violations };
  }
  const { status, text } = answered;

  if (status >= 500) {
    violations.push({
      category: 'serverError',
      message: `status ${status}: ${text.slice(0, 200)} ${errors.join(' | ')}`,
    });
  } else if (![200, 202, 409].includes(status) && !(multipart && status === 400)) {
    violations.push({ category: 'unexpectedStatus', message: `status ${status}: ${text.slice(0, 300)}` });
  }
  const json = text.startsWith('{') ? (JSON.parse(text) as Json) : undefined;
  const first = json?.['00081198']?.Value?.[0]?.['00081197']?.Value?.[0];
  const failureReason = typeof first === 'number' ? first : undefined;
  const referenced = json?.['00081199']?.Value?.length ?? 0;

  const visible = await visibleInstances(storage);
  let accepted = false;
  let companionStored = false;
  for (const record of visible) {
    const stored = await storage.blobs.readSmall(record.blobName);
    if (!stored) {
      violations.push({ category: 'inconsistent', message: `visible instance ${record.sopInstanceUid} has no blob` });
      continue;
    }
    const verdict = parseFully(stored);
    if (!verdict.ok) {
      violations.push({
        category: 'malformedVisible',
        message: `visible instance ${record.sopInstanceUid} (${stored.length} bytes): ${verdict.reason}`,
      });
    }
    if (Buffer.compare(stored, mutant) === 0) accepted = true;
    else if (Buffer.compare(stored, COMPANION) === 0) companionStored = true;
    else
      violations.push({
        category: 'inconsistent',
        message: `blob of ${record.sopInstanceUid} is none of the parts sent`,
      });
  }
  if (status === 409 && visible.length > 0) {
    violations.push({ category: 'inconsistent', message: `409 with ${visible.length} instance(s) visible` });
  }
  if ((status === 200 || status === 202) && referenced !== visible.length) {
    violations.push({
      category: 'inconsistent',
      message: `the response lists ${referenced} stored, ${visible.length} visible`,
    });
  }
  if (multipart && status !== 400 && !companionStored) {
    violations.push({
      category: 'inconsistent',
      message: `the valid companion part was not stored (status ${status})`,
    });
  }
  const kept = new Set(visible.flatMap((record) => [record.blobName, record.blobName.replace(/\.dcm$/, '.json')]));
  for await (const blob of storage.blobs.list('')) {
    if (blob.name.endsWith('/metadata.log') || kept.has(blob.name)) continue;
    violations.push({ category: 'leftover', message: `blob ${blob.name} left without a visible instance` });
  }
  return { status, accepted, parserAccepts, failureReason, violations };
}

/** Every visible instance: found from the stored blobs and from the index's study list. */
async function visibleInstances(storage: MemoryStorage): Promise<InstanceRecord[]> {
  const keys = new Map<string, InstanceKey>();
  const add = (key: InstanceKey) =>
    keys.set(`${key.studyInstanceUid}|${key.seriesInstanceUid}|${key.sopInstanceUid}`, key);
  for await (const blob of storage.blobs.list('')) {
    const { study, series, sop } = blob.metadata;
    if (study && series && sop) add({ studyInstanceUid: study, seriesInstanceUid: series, sopInstanceUid: sop });
  }
  for await (const pointer of storage.index.follow({ kind: 'recent' })) {
    for (const record of await storage.index.listInstances(pointer.studyInstanceUid)) add(record);
  }
  const records: InstanceRecord[] = [];
  for (const key of keys.values()) {
    const record = await storage.index.getInstance(key);
    if (record) records.push(record);
  }
  return records;
}

export function describeCase(fuzzCase: FuzzCase): string {
  const chunks = fuzzCase.chunkSizes.length === 0 ? 'whole body' : `${fuzzCase.chunkSizes.length} chunks`;
  const envelope =
    fuzzCase.envelope === 'single'
      ? 'single-part application/dicom'
      : `multipart, companion ${fuzzCase.companionFirst ? 'first' : 'second'}`;
  return (
    `case ${fuzzCase.index} (run seed ${fuzzCase.runSeed}, case seed ${caseSeed(fuzzCase.runSeed, fuzzCase.index)}): ` +
    `${fuzzCase.seed.name}, ${fuzzCase.mutant.kind}: ${fuzzCase.mutant.detail}; ${envelope}, ${chunks}, ` +
    `${fuzzCase.mutant.bytes.length} bytes`
  );
}

function tally(counts: Counts, fuzzCase: FuzzCase, outcome: CaseOutcome, swept: boolean): void {
  counts.cases += 1;
  const kind = swept ? 'sweep' : fuzzCase.mutant.kind;
  const byKind = (counts.byKind[kind] ??= { cases: 0, rejected: 0, accepted: 0 });
  byKind.cases += 1;
  if (outcome.accepted) {
    counts.accepted += 1;
    byKind.accepted += 1;
  } else {
    counts.rejected += 1;
    byKind.rejected += 1;
    if (outcome.parserAccepts) counts.stricterThanParser += 1;
  }
  counts.statuses[outcome.status] = (counts.statuses[outcome.status] ?? 0) + 1;
  if (outcome.failureReason !== undefined) {
    const reason = String(outcome.failureReason);
    counts.failureReasons[reason] = (counts.failureReasons[reason] ?? 0) + 1;
  }
  const seen = new Set(outcome.violations.map((violation) => violation.category));
  if (seen.has('serverError')) counts.serverErrors += 1;
  if (seen.has('unexpectedStatus')) counts.unexpectedStatus += 1;
  if (seen.has('malformedVisible')) counts.malformedVisible += 1;
  if (seen.has('inconsistent')) counts.inconsistent += 1;
  if (seen.has('leftover')) counts.leftover += 1;
  if (seen.has('hang')) counts.hang += 1;
}

export function violationCount(counts: Counts): number {
  return (
    counts.serverErrors +
    counts.unexpectedStatus +
    counts.malformedVisible +
    counts.inconsistent +
    counts.leftover +
    counts.hang
  );
}

export async function runFuzz(options: RunOptions): Promise<RunSummary> {
  const started = Date.now();
  const seeds = options.seeds ?? loadSeeds();
  const plan = new CasePlan(options.seed, seeds, options.count, options.sweep);
  const counts = emptyCounts();
  const reports: string[] = [];
  const indices = options.only !== undefined ? [options.only] : Array.from({ length: plan.total }, (_, i) => i);
  for (const [done, index] of indices.entries()) {
    const fuzzCase = plan.build(index);
    const outcome = await runCase(fuzzCase, options.timeoutMs, options.validateStructure);
    tally(counts, fuzzCase, outcome, index < plan.sweep.length);
    if (outcome.violations.length > 0) {
      const report =
        `${describeCase(fuzzCase)}\n  status ${outcome.status}\n` +
        outcome.violations.map((violation) => `  ${violation.category}: ${violation.message}`).join('\n');
      reports.push(report);
      options.onViolation?.(report);
    }
    options.onProgress?.(done + 1, indices.length, counts);
  }
  return { counts, sweepCases: plan.sweep.length, milliseconds: Date.now() - started, reports };
}

export function formatCounts(counts: Counts): string {
  const kinds = Object.entries(counts.byKind)
    .map(
      ([kind, c]) =>
        `  ${kind.padEnd(17)} ${String(c.cases).padStart(7)} cases  ${String(c.rejected).padStart(7)} rejected  ${String(c.accepted).padStart(7)} accepted`,
    )
    .join('\n');
  return [
    `cases ${counts.cases}: 5xx ${counts.serverErrors}, malformed visible ${counts.malformedVisible}, ` +
      `rejected ${counts.rejected}, accepted ${counts.accepted}`,
    `other violations: unexpected status ${counts.unexpectedStatus}, inconsistent ${counts.inconsistent}, ` +
      `leftover blobs ${counts.leftover}, hangs ${counts.hang}`,
    `rejected though dicom-parser takes them (server stricter): ${counts.stricterThanParser}`,
    `statuses ${JSON.stringify(counts.statuses)}, first FailureReason ${JSON.stringify(counts.failureReasons)}`,
    kinds,
  ].join('\n');
}
