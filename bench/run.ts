/**
 * `npm run bench`: STOW-RS throughput and server memory, WADO-RS retrieve and latency, the change
 * feed and DELETE, the cost of the change feed write and of the structure check, and QIDO-RS at
 * growing sizes — against its own Azurite (in a temp directory) and the server in child processes
 * (compiled first: see server-child.ts), each figure next to the same work done straight against
 * Azurite with the SDK. Writes bench/results/latest.json (BENCH_RESULTS: elsewhere).
 *
 * Knobs (bench/settings.ts, defaults in brackets): BENCH_ONLY (ids: a1,a2,b1,b2,c STOW; w WADO;
 * cf change feed and DELETE; f change feed write cost; e event publishing cost; v structure check cost; q QIDO; qs QIDO
 * at scale in storage operations; l archive load; la
 * (only when named) the local archive: BENCH_ARCHIVE_INSTANCES (100000) through STOW into an in-memory Azurite, then p99 of each request; u the dicomweb CLI's upload; us upload session of
 * BENCH_SESSION_MB; cc codec choice; tc transcoding a JPEG 2000 series; r rendered and thumbnail resources; bu bulk update
 * of a BENCH_STUDY_INSTANCES study),
 * BENCH_SERVER (js | tsx), BENCH_AZURITE (disk | memory), BENCH_SERIES (200), BENCH_LARGE_MB
 * (1024), BENCH_REPEATS (5), BENCH_CONCURRENCY (4), BENCH_READ_REPEATS (3), BENCH_FRAME_REQUESTS
 * (50), BENCH_STUDY_INSTANCES (1000), BENCH_METADATA_RUNS (12), BENCH_QIDO_STUDIES ("1000,10000"),
 * BENCH_QIDO_RUNS (30), BENCH_QIDO_QUERY_SECONDS (12), BENCH_QIDO_LOAD_SECONDS (360),
 * BENCH_QIDO_LOAD (bulk | store | http: the loader of QIDO's studies), BENCH_QIDO_SCALE
 * ("1000,10000,100000,1000000"), BENCH_QIDO_SCALE_AZURITE ("1000,10000", or none),
 * BENCH_QIDO_SCALE_LOAD_SECONDS (3600), BENCH_ARCHIVE_REQUESTS (100), BENCH_ARCHIVE_LOAD_SECONDS (3600), BENCH_ARCHIVE_MAX_RSS_MB (3584), BENCH_STORAGE_LATENCY_MS (0: each direction of every storage connection held this long by bench/latency-proxy.ts), BENCH_CLIENT_LATENCY_MS (0: section u, each direction of every client's connection held this long), BENCH_LOAD_INSTANCES (10000), BENCH_SESSION_MB (5120), BENCH_MEMORY_TRACE (memory
 * lines from the server), BENCH_SERVER_LOG (its audit lines), BENCH_AZURITE_PROFILE (la: a directory for
 * Azurite's event-loop stalls, GC runs, CPU profile and per-request times; bench/azurite-profiler.cjs) with
 * BENCH_AZURITE_GC_SECONDS (la: the pause between Azurite's blob collections, 600 as published). The f, e and v sections set
 * BENCH_CHANGE_FEED=off, BENCH_EVENTS=on and BENCH_VALIDATOR=off on the server child themselves
 * (bench/server.ts).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { azuriteConnectionString } from '../src/config.js';
import { meterBlobs } from '../src/storage/azure-storage-meter.js';
import { StorageMeter, withStorageMeter } from '../src/util/storage-meter.js';
import { startAzurite, type AzuriteProcess } from '../src/host/azurite.js';
import { startLatencyProxy, type LatencyProxy } from './latency-proxy.js';
import { watchOtherLoad } from './machine-load.js';
import { takingTurns, timedPool } from './measure.js';
import { containerContents, uploadRaw, type ContainerContents } from './raw-upload.js';
import { archiveLoadSection } from './archive-load.js';
import { localArchiveSection } from './local-archive.js';
import { changeFeedSection } from './change-feed.js';
import { changeFeedCostSection } from './change-feed-cost.js';
import { cliUploadSection } from './cli-upload.js';
import { eventsCostSection } from './events-cost.js';
import { validatorCostSection } from './validator-cost.js';
import { freshStorage, suffix, type BenchContext, type Target } from './context.js';
import { qidoSection } from './qido.js';
import { qidoScaleSection } from './qido-scale.js';
import { uploadSessionSection } from './upload-session.js';
import { renderedSection } from './rendered.js';
import { bulkUpdateSection } from './bulk-update.js';
import {
  benchReport,
  emptySection,
  formatReport,
  sourceState,
  summarize,
  type SectionResult,
  type ServerRun,
  type WorkloadResult,
} from './report.js';
import { killServerChildren, prepareServer, startServerChild } from './server-child.js';
import { readSettings } from './settings.js';
import { stow } from './stow-client.js';
import { codecChoiceSection, transcodeSection } from './transcode.js';
import { loadReadData, wadoSection, type LargeStored } from './wado.js';
import {
  bodySize,
  LARGE_WORKLOAD,
  warmUpRequest,
  workloadPlans,
  type PreparedWorkload,
  type WorkloadPlan,
} from './workloads.js';

/** BENCH_RESULTS: where the JSON results go (default bench/results/latest.json). */
const RESULTS = process.env['BENCH_RESULTS'] ?? join(import.meta.dirname, 'results', 'latest.json');

const NOTES = [
  'Every server run is a fresh server process with a fresh container and table; one 1 KiB instance is stored first (untimed) to warm connections and JIT, then the peak RSS is reset. With repetitions, server and raw take turns going first.',
  'raw = the same instance bytes, one blob each, same client concurrency, written as the server writes them (one Put Blob under 4 MiB, else staged blocks of the server’s size and blocks in flight, 4 MiB × 4, and a block list), into the same Azurite; no index rows, no HTTP hop through the server. ops/inst and ops/req: storage operations per instance or request, the server’s from its audit records (the storage meter), raw’s counted by the same meter on the bench’s own client.',
  'MiB/s counts instance bytes only (multipart framing excluded), so server and raw move the same bytes; inst/s and MiB/s use the median seconds.',
  'other load = CPU time of processes outside the bench (and its Azurite and server) as a share of the machine during the workload; more than a few % means the figures are disturbed.',
];

const AZURITE_NOTES = {
  disk: 'Azurite (on disk, as npm start runs it: it saves its whole database every 5 s), the server and the load generator share this machine’s CPUs.',
  memory:
    'Azurite in memory (BENCH_AZURITE=memory: no periodic save of its database), the server and the load generator share this machine’s CPUs.',
} as const;

const RUNTIME_NOTES = {
  js: 'The server child runs the compiled JS (tsc with the build settings into dist/bench-server, at the start of the run): its RSS is the server’s own. BENCH_SERVER=tsx runs it under the tsx loader instead, which adds about 30–40 MiB of RSS.',
  tsx: 'The server child runs under the tsx loader (BENCH_SERVER=tsx): about 30–40 MiB of its RSS is tsx’s, not the server’s.',
} as const;

/** Fails unless the container holds exactly the expected instance blobs; returns what else it holds. */
async function expectInstances(
  target: Target,
  container: string,
  count: number,
  bytes: number,
): Promise<ContainerContents['others']> {
  const { instances, others } = await containerContents(target.blobs.getContainerClient(container));
  if (instances.count !== count || instances.bytes !== bytes) {
    throw new Error(
      `${container} holds ${instances.count} instance blobs of ${instances.bytes} bytes, not ${count} of ${bytes}.`,
    );
  }
  return others;
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
    await server.takeStorage(); // not the warm-up's
    const seconds = await timedPool(work.requests, plan.concurrency, (request) => stow(agent, url, request));
    const storage = await server.takeStorage();
    const memory = await server.memory();
    const bytes = work.instances.reduce((sum, body) => sum + bodySize(body), bodySize(warmUp.body));
    const others = await expectInstances(target, container, work.instances.length + 1, bytes);
    return {
      seconds,
      container,
      table,
      baselineRssBytes: server.baselineRssBytes,
      peakRssBytes: memory.peakRssBytes,
      otherBlobs: others.count,
      otherBlobBytes: others.bytes,
      storage,
    };
  } finally {
    agent.destroy();
    await server.stop();
  }
}

/** Seconds, and the storage operations the raw uploads made (the floor). */
async function straightToAzurite(
  plan: WorkloadPlan,
  work: PreparedWorkload,
  target: Target,
  run: number,
): Promise<{ seconds: number; operations: number }> {
  const name = `raw-${plan.id}-${run}-${suffix()}`;
  const container = target.blobs.getContainerClient(name);
  await container.create();
  const warmUp = warmUpRequest().body;
  await uploadRaw(container, 'warm-up', warmUp);
  const blobs = work.instances.map((body, i) => ({ body, name: `instance-${i}.dcm` }));
  const meter = new StorageMeter();
  const seconds = await withStorageMeter(meter, () =>
    timedPool(blobs, plan.concurrency, (blob) => uploadRaw(container, blob.name, blob.body)),
  );
  const bytes = work.instances.reduce((sum, body) => sum + bodySize(body), bodySize(warmUp));
  await expectInstances(target, name, blobs.length + 1, bytes);
  return { seconds, operations: meter.counts().operations };
}

async function measure(
  plan: WorkloadPlan,
  target: Target,
): Promise<{ result: WorkloadResult; keys: PreparedWorkload['keys'] }> {
  process.stderr.write(`${plan.id}: preparing ${plan.title}\n`);
  const otherLoad = watchOtherLoad();
  const work = await plan.prepare();
  try {
    const server: ServerRun[] = [];
    const raw: number[] = [];
    let rawOperations: number | undefined;
    for (let run = 1; run <= plan.repeats; run++) {
      await takingTurns(
        run - 1,
        async () => void server.push(await throughServer(plan, work, target, run)),
        async () => {
          const measured = await straightToAzurite(plan, work, target, run);
          raw.push(measured.seconds);
          rawOperations ??= measured.operations;
        },
      );
      const last = server.at(-1);
      process.stderr.write(
        `${plan.id} run ${run}/${plan.repeats}: server ${last?.seconds.toFixed(3) ?? '?'} s, raw ${raw.at(-1)?.toFixed(3) ?? '?'} s\n`,
      );
    }
    const bytes = work.instances.reduce((sum, body) => sum + bodySize(body), 0);
    return {
      result: summarize(plan, work.instances.length, bytes, server, raw, otherLoad(), rawOperations),
      keys: work.keys,
    };
  } finally {
    await work.dispose();
  }
}

async function main(): Promise<void> {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 22) throw new Error(`The bench needs Node 22 (npm run bench uses it), not ${process.version}.`);
  const startedAt = performance.now();
  const settings = readSettings();
  const source = sourceState(join(import.meta.dirname, '..'));
  const tempDir = await mkdtemp(join(tmpdir(), 'dicomweb-bench-'));
  let azurite: AzuriteProcess | undefined;
  let latency: LatencyProxy | undefined;
  let cleaned: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaned ??= (async () => {
      killServerChildren();
      await latency?.stop();
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
    void latency?.stop();
    void azurite?.stop();
  });

  try {
    if (settings.serverRuntime === 'js') process.stderr.write('building the server (tsc → dist/bench-server)\n');
    await prepareServer(settings.serverRuntime);
    azurite = await startAzurite({ location: join(tempDir, 'azurite'), inMemory: settings.azurite === 'memory' });
    const direct = [azurite.blobPort, azurite.tablePort, azurite.queuePort];
    if (settings.storageLatencyMs > 0) latency = await startLatencyProxy(settings.storageLatencyMs, direct);
    const [blobPort, tablePort, queuePort] = latency?.ports ?? direct;
    // The queue too: section e publishes events to it.
    const connectionString = azuriteConnectionString(blobPort ?? 0, tablePort ?? 0, '127.0.0.1', queuePort);
    const blobs = BlobServiceClient.fromConnectionString(connectionString);
    // The raw floors' storage operations are counted as the server's are (only inside a meter's scope).
    meterBlobs(blobs);
    const target: Target = { connectionString, blobs };
    const wants = (id: string): boolean => !settings.only || settings.only.includes(id);
    const context: BenchContext = {
      settings,
      target,
      tempDir,
      progress: (line) => process.stderr.write(`[${((performance.now() - startedAt) / 1000).toFixed(0)} s] ${line}\n`),
    };
    const plans = workloadPlans(settings, tempDir).filter((plan) => wants(plan.id));
    const stowResults: WorkloadResult[] = [];
    let large: LargeStored | undefined;
    for (const plan of plans) {
      const { result, keys } = await measure(plan, target);
      stowResults.push(result);
      const run = result.runs.server[0];
      const key = keys?.[0];
      if (plan.id === LARGE_WORKLOAD && run?.container && run.table && key) {
        const storage = { connectionString, container: run.container, table: run.table };
        large = { storage, key, bytes: result.bytes };
      }
    }
    const sections: SectionResult[] = [{ ...emptySection(), workloads: stowResults }];
    if (wants('w') || wants('cf')) {
      const loaded = await loadReadData(context, freshStorage(target, 'read'), {
        series: wants('w'),
        frames: wants('w'),
        bigStudy: true,
      });
      sections.push({ ...emptySection(), timings: loaded.timings });
      if (wants('w')) sections.push(await wadoSection(context, loaded.data, large));
      if (wants('cf')) sections.push(await changeFeedSection(context, loaded.data));
    }
    if (wants('f')) sections.push(await changeFeedCostSection(context));
    if (wants('e')) sections.push(await eventsCostSection(context));
    if (wants('v')) sections.push(await validatorCostSection(context));
    if (wants('q')) sections.push(await qidoSection(context));
    if (wants('qs')) sections.push(await qidoScaleSection(context));
    if (wants('l')) sections.push(await archiveLoadSection(context));
    // Opt-in (tens of minutes and GiBs of Azurite at its default size): only when BENCH_ONLY names it.
    if (settings.only?.includes('la')) sections.push(await localArchiveSection(context));
    if (wants('us')) sections.push(await uploadSessionSection(context));
    if (wants('u')) sections.push(await cliUploadSection(context));
    if (wants('cc')) sections.push(await codecChoiceSection(context));
    if (wants('tc')) sections.push(await transcodeSection(context));
    if (wants('r')) sections.push(await renderedSection(context));
    if (wants('bu')) sections.push(await bulkUpdateSection(context));
    const report = benchReport(
      source,
      settings,
      [...NOTES, AZURITE_NOTES[settings.azurite], RUNTIME_NOTES[settings.serverRuntime]],
      sections,
      LARGE_WORKLOAD,
      (performance.now() - startedAt) / 1000,
    );
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
