/**
 * Section `u`: the `dicomweb upload` CLI (compiled, its own process, default batching and
 * concurrency) loading the 200-instance CT series from a folder into a fresh server, beside the
 * same files put straight into Azurite with the SDK (read from disk, one blob each, same
 * concurrency) in the same run. The CLI's time is the whole process, from spawn to exit. A third
 * figure, the bench's own STOW client sending the same batches from memory, is the server's
 * ceiling for any client: what the CLI adds is the gap between it and the CLI. A fourth, a
 * pass-through server that only puts each request body into a blob (bench/pass-through.ts), is
 * the ceiling of any server in front of storage on this machine.
 *
 * Every path is timed warm. A server that has been up a while has compiled its STOW path; a fresh
 * one runs its first few hundred instances about 30 % slower (V8 still interpreting and
 * compiling), which one tiny request does not change. So before its timed pass each path takes one
 * untimed pass of the same shape: the server a series of other UIDs in the same batches, raw and
 * the pass-through the same files under other names. The CLI process itself stays cold: a user
 * starts it for each folder. The first pass after the server starts is reported as the cold figure.
 */
import { execFile, spawn } from 'node:child_process';
import { Agent } from 'node:http';
import { createRequire } from 'node:module';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BlobServiceClient } from '@azure/storage-blob';
import { type BenchContext, freshStorage, suffix, withServer } from './context.js';
import { startLatencyProxy } from './latency-proxy.js';
import { type CpuRole, watchCpuByRole, watchOtherLoad } from './machine-load.js';
import { median, MiB, takingTurns, timed, timedPool } from './measure.js';
import { passThroughPut, startPassThrough } from './pass-through.js';
import { containerContents, uploadRaw } from './raw-upload.js';
import type { SectionResult } from './report.js';
import { stow } from './stow-client.js';
import { multipartRequest, syntheticSeries, warmUpRequest } from './workloads.js';
import { batchFiles, DEFAULT_BATCH_BYTES, DEFAULT_BATCH_INSTANCES } from '../src/client/upload.js';

const REPO_ROOT = join(import.meta.dirname, '..');
const CLI_TSCONFIG = join(import.meta.dirname, 'tsconfig.cli.json');
const CLI_JS = join(REPO_ROOT, 'dist', 'bench-cli', 'src', 'cli', 'main.js');
const TSX_LOADER = join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');
/** The CLI's default concurrency (src/cli/upload-command.ts), which the raw uploads use too. */
const CONCURRENCY = 4;
const TARGET_RATIO = 0.8;

/**
 * Runs `work` with the port a client should connect to for `port`: through a latency proxy of its
 * own when BENCH_CLIENT_LATENCY_MS is set (the network between a user and Azure), else `port`.
 */
async function throughClientNetwork<T>(
  latencyMs: number,
  port: number,
  work: (port: number) => Promise<T>,
): Promise<T> {
  if (latencyMs === 0) return work(port);
  const proxy = await startLatencyProxy(latencyMs, [port]);
  try {
    return await work(proxy.ports[0] ?? port);
  } finally {
    await proxy.stop();
  }
}

function withPort(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.port = String(port);
  return parsed.origin;
}

async function compileCli(): Promise<void> {
  const tsc = join(createRequire(import.meta.url).resolve('typescript/package.json'), '..', 'bin', 'tsc');
  await promisify(execFile)(process.execPath, [tsc, '-p', CLI_TSCONFIG], { cwd: REPO_ROOT });
}

/** Runs the CLI to the end; fails unless it stored every file. */
function runCli(args: readonly string[], runtime: 'js' | 'tsx', files: number): Promise<void> {
  const entry =
    runtime === 'js' ? [CLI_JS] : ['--import', `file://${TSX_LOADER}`, join(REPO_ROOT, 'src', 'cli', 'main.ts')];
  const child = spawn(process.execPath, [...entry, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0 && new RegExp(`^stored\\s+${files}\\s`, 'm').test(stdout)) resolve();
      else reject(new Error(`dicomweb upload exited ${code}:\n${stdout}\n${stderr}`));
    });
  });
}

export async function cliUploadSection(context: BenchContext): Promise<SectionResult> {
  const { seriesInstances, serverRuntime, clientLatencyMs } = context.settings;
  const clientUrl = <T>(baseUrl: string, work: (url: string) => Promise<T>): Promise<T> =>
    throughClientNetwork(clientLatencyMs, Number(new URL(baseUrl).port), (port) => work(withPort(baseUrl, port)));
  if (serverRuntime === 'js') {
    context.progress('u: compiling the CLI (tsc → dist/bench-cli)');
    await compileCli();
  }
  const folder = join(context.tempDir, 'cli-series');
  await mkdir(folder, { recursive: true });
  const series = syntheticSeries(seriesInstances);
  const paths = await Promise.all(
    series.map(async (bytes, i) => {
      const path = join(folder, `slice-${String(i + 1).padStart(4, '0')}.dcm`);
      await writeFile(path, bytes);
      return path;
    }),
  );
  const bytes = series.reduce((sum, file) => sum + file.byteLength, 0);
  // At least 4 runs, an even number, server and raw taking turns going first.
  const repeats = Math.max(4, context.settings.readRepeats + (context.settings.readRepeats % 2));
  const cliSeconds: number[] = [];
  const rawSeconds: number[] = [];
  const stowSeconds: number[] = [];
  const hopSeconds: number[] = [];
  const coldSeconds: number[] = [];
  const batchesOf = (files: readonly Buffer[]) =>
    batchFiles(
      files.map((file) => ({ file, size: file.byteLength })),
      DEFAULT_BATCH_BYTES,
      DEFAULT_BATCH_INSTANCES,
    ).map((batch) => multipartRequest(batch.map(({ file }) => file)));
  const batches = batchesOf(series);
  // The warm-up: a series of the same shape with other UIDs (each run's storage is fresh).
  const warmUpBatches = batchesOf(syntheticSeries(seriesInstances));
  const warmUp = async (agent: Agent, url: string): Promise<number> => {
    await stow(agent, url, warmUpRequest());
    return timedPool(warmUpBatches, CONCURRENCY, (request) => stow(agent, url, request));
  };
  const otherLoad = watchOtherLoad();
  // CPU milliseconds by process role, per path and run: where each path's time goes.
  const cpu = new Map<string, Map<CpuRole, number>[]>();
  const counting = async <T>(path: string, work: () => Promise<T>): Promise<T> => {
    const used = watchCpuByRole();
    const value = await work();
    cpu.set(path, [...(cpu.get(path) ?? []), used()]);
    return value;
  };
  const throughCli = async (run: number): Promise<void> => {
    await withServer(freshStorage(context.target, `u${run}`), CONCURRENCY, async (server, agent) => {
      await warmUp(agent, `${server.baseUrl}/v2/studies`); // the server's JIT, not the CLI's
      const state = join(context.tempDir, `cli-state-${suffix()}.jsonl`);
      const { ms } = await clientUrl(server.baseUrl, (baseUrl) =>
        counting('CLI', () =>
          timed(() =>
            runCli(
              ['--url', `${baseUrl}/v2`, 'upload', folder, '--no-progress', '--state', state],
              serverRuntime,
              series.length,
            ),
          ),
        ),
      );
      cliSeconds.push(ms / 1000);
    });
    // The same batches through the bench's bare HTTP client, against another fresh server.
    await withServer(freshStorage(context.target, `us${run}`), CONCURRENCY, async (server, agent) => {
      await clientUrl(server.baseUrl, async (baseUrl) => {
        const url = `${baseUrl}/v2/studies`;
        coldSeconds.push(await warmUp(agent, url));
        stowSeconds.push(
          await counting('bare STOW', () => timedPool(batches, CONCURRENCY, (request) => stow(agent, url, request))),
        );
      });
    });
  };
  const straightToAzurite = async (run: number): Promise<void> => {
    const name = `raw-u${run}-${suffix()}`;
    await context.target.blobs.getContainerClient(name).create();
    await clientUrl(context.target.blobs.url, async (blobOrigin) => {
      // The raw uploader's own client, reaching storage at `blobOrigin` (the proxy, if any).
      const blobEndpoint = `BlobEndpoint=${blobOrigin}${new URL(context.target.blobs.url).pathname.replace(/\/$/, '')}`;
      const blobs = BlobServiceClient.fromConnectionString(
        context.target.connectionString.replace(/BlobEndpoint=[^;]*/, blobEndpoint),
      );
      const container = blobs.getContainerClient(name);
      const rawPass = (prefix: string) =>
        timedPool(paths, CONCURRENCY, async (path) => {
          const file = await readFile(path);
          await uploadRaw(container, `${prefix}${path.slice(folder.length + 1)}`, { kind: 'buffer', bytes: file });
        });
      await rawPass('warm-up/');
      rawSeconds.push(await counting('raw', () => rawPass('')));
      const { instances } = await containerContents(container);
      if (instances.count !== 2 * series.length) throw new Error(`raw run ${run} holds ${instances.count} blobs`);
    });
    // The same files, one request each, through a server process that only stores the body.
    const hop = await startPassThrough(context.target.connectionString, `hop-u${run}-${suffix()}`, REPO_ROOT);
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    try {
      await clientUrl(hop.baseUrl, async (baseUrl) => {
        const hopPass = (prefix: string) =>
          timedPool(paths, CONCURRENCY, async (path) => {
            await passThroughPut(agent, `${baseUrl}/${prefix}${path.slice(folder.length + 1)}`, await readFile(path));
          });
        await hopPass('warm-up-');
        hopSeconds.push(await counting('pass-through', () => hopPass('')));
      });
    } finally {
      agent.destroy();
      await hop.stop();
    }
  };
  try {
    for (let run = 0; run < repeats; run++) {
      await takingTurns(
        run,
        () => throughCli(run),
        () => straightToAzurite(run),
      );
      context.progress(
        `u run ${run + 1}/${repeats}: CLI ${cliSeconds.at(-1)?.toFixed(2)} s, bare STOW ${stowSeconds.at(-1)?.toFixed(2)} s, raw ${rawSeconds.at(-1)?.toFixed(2)} s, pass-through ${hopSeconds.at(-1)?.toFixed(2)} s`,
      );
    }
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
  const share = otherLoad();
  const cliRate = bytes / MiB / median(cliSeconds);
  const rawRate = bytes / MiB / median(rawSeconds);
  const stowRate = bytes / MiB / median(stowSeconds);
  const hopRate = bytes / MiB / median(hopSeconds);
  const coldRate = bytes / MiB / median(coldSeconds);
  const ratio = cliRate / rawRate;
  const load = share === undefined ? '?' : `${(share * 100).toFixed(0)} %`;
  return {
    workloads: [],
    timings: [],
    qido: [],
    checks: [
      {
        name: `u: dicomweb upload of a ${seriesInstances}-instance CT series (${(bytes / MiB).toFixed(0)} MiB) vs raw Blob upload`,
        value: `${cliRate.toFixed(1)} vs ${rawRate.toFixed(1)} MiB/s = ${ratio.toFixed(2)}× (medians of ${repeats} runs; CLI ${median(cliSeconds).toFixed(2)} s, raw ${median(rawSeconds).toFixed(2)} s; other load ${load})`,
        target: `≥ ${TARGET_RATIO}× raw`,
        met: ratio >= TARGET_RATIO,
      },
      {
        name: 'u: the same batches through the bench’s bare STOW client (the server’s ceiling for any client)',
        value: `${stowRate.toFixed(1)} MiB/s = ${(stowRate / rawRate).toFixed(2)}× raw; the CLI reaches ${(cliRate / stowRate).toFixed(2)}× of it (median ${median(stowSeconds).toFixed(2)} s)`,
        target: 'reported (no target)',
        met: undefined,
      },
      {
        name: 'u: bare STOW, the first pass after the server starts (its warm-up: V8 still compiling)',
        value: `${coldRate.toFixed(1)} MiB/s = ${(coldRate / rawRate).toFixed(2)}× raw (median ${median(coldSeconds).toFixed(2)} s)`,
        target: 'reported (no target)',
        met: undefined,
      },
      {
        name: 'u: the same files through a pass-through server (one Put Blob per request body, nothing else: the hop ceiling)',
        value: `${hopRate.toFixed(1)} MiB/s = ${(hopRate / rawRate).toFixed(2)}× raw; the CLI reaches ${(cliRate / hopRate).toFixed(2)}× of it, bare STOW ${(stowRate / hopRate).toFixed(2)}× (median ${median(hopSeconds).toFixed(2)} s)`,
        target: 'reported (no target)',
        met: undefined,
      },
    ],
    notes: [
      ...(clientLatencyMs > 0
        ? [
            `u: every client's connections (the CLI's and the bare STOW client's to the server, raw's to storage, the pass-through's client's to it) crossed a proxy holding each chunk ${clientLatencyMs} ms each way (BENCH_CLIENT_LATENCY_MS: the user's network to Azure); the server's own storage connections did not${context.settings.storageLatencyMs > 0 ? ` (they crossed the storage proxy, ${context.settings.storageLatencyMs} ms each way, as raw's did too)` : ''}.`,
          ]
        : []),
      `u: CPU ms per instance, medians of the runs (client = the CLI process or the bench's own client; server = our server or the pass-through; Azurite = the storage emulator): ${cpuSplit(cpu, series.length)}.`,
      `u: the CLI runs as its own process (${serverRuntime === 'js' ? 'compiled into dist/bench-cli' : 'under tsx'}) with its defaults (${CONCURRENCY} requests at once, files batched up to ${DEFAULT_BATCH_BYTES / MiB} MiB / ${DEFAULT_BATCH_INSTANCES} per request), timed from spawn to exit, against a fresh server process and container per run, each warmed by one untimed pass of another series of the same shape; raw reads each file and puts it as one blob with the SDK, ${CONCURRENCY} at once, into a fresh container of the same Azurite; no index rows, no HTTP hop through the server, warmed by one untimed pass of the same files under other names (the pass-through likewise). Bare STOW: the bench’s node:http client sends the same batches from memory to a fresh server, same concurrency, after the same warm-up.`,
    ],
  };
}

/** Each path's median CPU ms per instance by process ("client", "server", "Azurite"). */
function cpuByPath(
  cpu: ReadonlyMap<string, readonly Map<CpuRole, number>[]>,
  instances: number,
): Map<string, Map<string, number>> {
  const label: Partial<Record<CpuRole, string>> = {
    reaped: 'client',
    bench: 'client',
    server: 'server',
    azurite: 'Azurite',
  };
  const paths = new Map<string, Map<string, number>>();
  for (const [path, runs] of cpu) {
    const totals = new Map<string, number[]>();
    for (const run of runs) {
      const byLabel = new Map<string, number>();
      for (const [role, ms] of run) {
        const name = label[role] ?? 'other';
        byLabel.set(name, (byLabel.get(name) ?? 0) + ms);
      }
      for (const [name, ms] of byLabel) totals.set(name, [...(totals.get(name) ?? []), ms]);
    }
    paths.set(path, new Map([...totals].map(([name, values]) => [name, median(values) / instances])));
  }
  return paths;
}

/**
 * "CLI: client 4.1, server 6.0, Azurite 3.2; raw: …", then what each path's busiest process
 * allows: with a core per process (as on Azure, where storage is not on the server's machine),
 * a pipelined path goes no faster than its busiest process, so raw's busiest ÷ the CLI's busiest
 * is the ratio this machine's two shared cores cannot show. Derived, not measured.
 */
function cpuSplit(cpu: ReadonlyMap<string, readonly Map<CpuRole, number>[]>, instances: number): string {
  const paths = cpuByPath(cpu, instances);
  const split = [...paths]
    .map(([path, byName]) => `${path}: ${[...byName].map(([name, ms]) => `${name} ${ms.toFixed(2)}`).join(', ')}`)
    .join('; ');
  const busiest = (path: string) => Math.max(0, ...(paths.get(path)?.values() ?? []));
  const raw = busiest('raw');
  const bound = ['CLI', 'bare STOW', 'pass-through']
    .filter((path) => busiest(path) > 0)
    .map((path) => `${path} ${(raw / busiest(path)).toFixed(2)}×`)
    .join(', ');
  return `${split}. Busiest process's CPU, raw ÷ path (a core per process; derived): ${bound}`;
}
