/**
 * `npm run bench`: STOW-RS throughput and server memory, against its own Azurite (on disk, in a
 * temp directory) and the server in a child process, each workload next to a raw SDK upload of
 * the same bytes into the same Azurite. Writes bench/results/latest.json.
 *
 * Knobs: BENCH_SERIES (instances per CT series, 200), BENCH_LARGE_MB (Pixel Data of the large
 * instance in MiB, 1024), BENCH_REPEATS (runs of the tutorial workloads, 5), BENCH_CONCURRENCY (4).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { azuriteConnectionString } from '../src/config.js';
import { startAzurite, type AzuriteProcess } from '../src/host/azurite.js';
import { timedPool } from './measure.js';
import { containerContents, uploadRaw } from './raw-upload.js';
import { benchReport, formatReport, sourceState, summarize, type ServerRun, type WorkloadResult } from './report.js';
import { killServerChildren, startServerChild } from './server-child.js';
import { readSettings } from './settings.js';
import { stow } from './stow-client.js';
import {
  bodySize,
  LARGE_WORKLOAD,
  warmUpRequest,
  workloadPlans,
  type PreparedWorkload,
  type WorkloadPlan,
} from './workloads.js';

const RESULTS = join(import.meta.dirname, 'results', 'latest.json');

const NOTES = [
  'Every server run is a fresh server process with a fresh container and table; one 1 KiB instance is stored first (untimed) to warm connections and JIT, then the peak RSS is reset. With repetitions, server and raw take turns going first.',
  'raw = the same instance bytes, one blob each, same client concurrency, BlockBlobClient.uploadStream with the server’s block size and blocks in flight (4 MiB × 4), into the same Azurite; no index rows, no HTTP hop through the server.',
  'MiB/s counts instance bytes only (multipart framing excluded), so server and raw move the same bytes; inst/s and MiB/s use the median seconds.',
  'Azurite (on disk), the server and the load generator share this machine’s CPUs; the server runs under the tsx loader (about 20 MiB of its RSS).',
];

interface Target {
  readonly connectionString: string;
  readonly blobs: BlobServiceClient;
}

const suffix = (): string => randomBytes(4).toString('hex');

async function expectContents(target: Target, container: string, count: number, bytes: number): Promise<void> {
  const found = await containerContents(target.blobs.getContainerClient(container));
  if (found.count !== count || found.bytes !== bytes) {
    throw new Error(`${container} holds ${found.count} blobs of ${found.bytes} bytes, not ${count} of ${bytes}.`);
  }
}

async function throughServer(
  plan: WorkloadPlan,
  work: PreparedWorkload,
  target: Target,
  run: number,
): Promise<ServerRun> {
  const container = `bench-${plan.id}-${run}-${suffix()}`;
  const table = `bench${plan.id}r${run}${suffix()}`;
  const server = await startServerChild({ connectionString: target.connectionString, container, table });
  const agent = new Agent({ keepAlive: true, maxSockets: plan.concurrency });
  try {
    const url = `${server.baseUrl}/v2/studies`;
    const warmUp = warmUpRequest();
    await stow(agent, url, warmUp);
    await server.resetPeak();
    const seconds = await timedPool(work.requests, plan.concurrency, (request) => stow(agent, url, request));
    const memory = await server.memory();
    const bytes = work.instances.reduce((sum, body) => sum + bodySize(body), bodySize(warmUp.body));
    await expectContents(target, container, work.instances.length + 1, bytes);
    return { seconds, baselineRssBytes: server.baselineRssBytes, peakRssBytes: memory.peakRssBytes };
  } finally {
    agent.destroy();
    await server.stop();
  }
}

async function straightToAzurite(
  plan: WorkloadPlan,
  work: PreparedWorkload,
  target: Target,
  run: number,
): Promise<number> {
  const name = `raw-${plan.id}-${run}-${suffix()}`;
  const container = target.blobs.getContainerClient(name);
  await container.create();
  const warmUp = warmUpRequest().body;
  await uploadRaw(container, 'warm-up', warmUp);
  const blobs = work.instances.map((body, i) => ({ body, name: `instance-${i}.dcm` }));
  const seconds = await timedPool(blobs, plan.concurrency, (blob) => uploadRaw(container, blob.name, blob.body));
  const bytes = work.instances.reduce((sum, body) => sum + bodySize(body), bodySize(warmUp));
  await expectContents(target, name, blobs.length + 1, bytes);
  return seconds;
}

async function measure(plan: WorkloadPlan, target: Target): Promise<WorkloadResult> {
  process.stderr.write(`${plan.id}: preparing ${plan.title}\n`);
  const work = await plan.prepare();
  try {
    const server: ServerRun[] = [];
    const raw: number[] = [];
    for (let run = 1; run <= plan.repeats; run++) {
      // Alternate which goes first, so neither always meets an Azurite the other just filled.
      if (run % 2 === 1) {
        server.push(await throughServer(plan, work, target, run));
        raw.push(await straightToAzurite(plan, work, target, run));
      } else {
        raw.push(await straightToAzurite(plan, work, target, run));
        server.push(await throughServer(plan, work, target, run));
      }
      const last = server.at(-1);
      process.stderr.write(
        `${plan.id} run ${run}/${plan.repeats}: server ${last?.seconds.toFixed(3) ?? '?'} s, raw ${raw.at(-1)?.toFixed(3) ?? '?'} s\n`,
      );
    }
    const bytes = work.instances.reduce((sum, body) => sum + bodySize(body), 0);
    return summarize(plan, work.instances.length, bytes, server, raw);
  } finally {
    await work.dispose();
  }
}

async function main(): Promise<void> {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 22) throw new Error(`The bench needs Node 22 (npm run bench uses it), not ${process.version}.`);
  const settings = readSettings();
  const source = sourceState(join(import.meta.dirname, '..'));
  const tempDir = await mkdtemp(join(tmpdir(), 'dicomweb-bench-'));
  let azurite: AzuriteProcess | undefined;
  let cleaned: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaned ??= (async () => {
      killServerChildren();
      await azurite?.stop();
      await rm(tempDir, { recursive: true, force: true });
    })());
  // Whatever ends the run (Ctrl-C, a crash) goes through cleanup, which waits for Azurite: it
  // takes seconds to stop while a client still holds a keep-alive connection.
  const abort = (why: string, exitCode: number): void => {
    process.stderr.write(`${why}: stopping the bench.\n`);
    void cleanup().finally(() => process.exit(exitCode));
  };
  process.once('SIGINT', () => {
    abort('SIGINT', 130);
  });
  process.once('SIGTERM', () => {
    abort('SIGTERM', 143);
  });
  process.on('uncaughtException', (error) => {
    abort(`uncaught ${String(error)}`, 1);
  });
  process.on('unhandledRejection', (error) => {
    abort(`unhandled ${String(error)}`, 1);
  });
  // A reader that goes away (`| head`) must not kill the run half-way; latest.json is still written.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  // Last resort for an exit that skipped cleanup: no child outlives the bench.
  process.once('exit', () => {
    killServerChildren();
    void azurite?.stop();
  });

  try {
    azurite = await startAzurite({ location: join(tempDir, 'azurite') });
    const connectionString = azuriteConnectionString(azurite.blobPort, azurite.tablePort);
    const target: Target = { connectionString, blobs: BlobServiceClient.fromConnectionString(connectionString) };
    const plans = workloadPlans(settings, tempDir);
    const results: WorkloadResult[] = [];
    for (const plan of plans) results.push(await measure(plan, target));
    const report = benchReport(source, settings, NOTES, results, LARGE_WORKLOAD);
    console.log(formatReport(report));
    await mkdir(join(RESULTS, '..'), { recursive: true });
    await writeFile(RESULTS, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\nResults written to ${RESULTS}`);
  } finally {
    await cleanup();
  }
}

main().catch((error: unknown) => {
  console.error('bench failed:', error);
  process.exitCode = 1;
});
