/**
 * Section la: the local default holding a real archive (issue #15). Its own Azurite in memory with
 * the LokiJS preload, as `DICOMWEB_AZURITE_MEMORY=true npm start` runs it, and the server over it;
 * BENCH_ARCHIVE_INSTANCES small images (64×64 16-bit, so frames exist) loaded through STOW in
 * studies of 5 with varied patients, names, dates and modalities, 4 clients; then, against that
 * archive, the requests a user makes, taking turns, each timed: STOW of one instance into a new
 * study, QIDO by PatientID, by PatientName and the worklist, study metadata, a frame, and DELETE
 * of a 5-instance study. Target: p99 ≤ 1 s each. Azurite's RSS and CPU share are read from /proc.
 * BENCH_AZURITE_PROFILE=<dir> profiles Azurite (bench/azurite-profiler.cjs), and
 * BENCH_AZURITE_GC_SECONDS shortens the pause between its blob collections so a run sees several.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { azuriteConnectionString } from '../src/config.js';
import { startAzurite } from '../src/host/azurite.js';
import { suffix, withServer, type BenchContext } from './context.js';
import { multiFrameInstance, qidoAttributes, qidoStudy, type QidoStudy } from './datasets.js';
import { call, expectStatus, getJson } from './http-client.js';
import { watchOtherLoad } from './machine-load.js';
import { mapPool, MiB, percentile, timed } from './measure.js';
import { timedResult, type SectionResult, type TimedResult } from './report.js';
import { stow } from './stow-client.js';
import { multipartRequest } from './workloads.js';

const PER_STUDY = 5;
const TARGET_P99_MS = 1000;
const FRAMES_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';
const CT_IMAGE = '1.2.840.10008.5.1.4.1.1.2';
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** Study `i`'s five 64×64 16-bit CT images, with the QIDO data set's patient and study attributes. */
function studyFiles(study: QidoStudy, i: number): Buffer[] {
  return Array.from(
    { length: PER_STUDY },
    (_, k) =>
      multiFrameInstance({ ...study.key, sopInstanceUid: `${study.key.seriesInstanceUid}.${k + 1}` }, 1, 64, 64, {
        '00080016': { vr: 'UI', value: CT_IMAGE },
        ...qidoAttributes(study, i),
        '00200013': { vr: 'IS', value: String(k + 1) },
      }).bytes,
  );
}

/** The Azurite child this section started: the bench's child whose command line names its blob port. */
function azuritePid(blobPort: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (parent === process.pid && args.includes('--inMemoryPersistence') && args.includes(String(blobPort))) {
        return Number(entry);
      }
    } catch {
      // a process that ended meanwhile
    }
  }
  return undefined;
}

/** Polls `done` every 100 ms, for up to a minute. */
async function waitFor(done: () => boolean): Promise<void> {
  for (let wait = 0; wait < 600 && !done(); wait++) await new Promise((resolve) => setTimeout(resolve, 100));
}

/** The profiler's log (bench/azurite-profiler.cjs), empty until it writes one. */
function readLog(dir: string): string {
  return existsSync(join(dir, 'stalls.log')) ? readFileSync(join(dir, 'stalls.log'), 'utf8') : '';
}

interface ProcessSample {
  readonly rssBytes: number;
  readonly peakRssBytes: number;
  /** CPU seconds (user + system) so far. */
  readonly cpuSeconds: number;
}

function processSample(pid: number | undefined): ProcessSample | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
    return { rssBytes: kib('VmRSS') * 1024, peakRssBytes: kib('VmHWM') * 1024, cpuSeconds: ticks / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/** Azurite's CPU over a span of `seconds`, as a share of one core, with its RSS at the end. */
function usageLine(what: string, before: ProcessSample | undefined, after: ProcessSample | undefined, seconds: number) {
  if (!before || !after) return `${what}: Azurite's /proc figures unavailable`;
  const share = (after.cpuSeconds - before.cpuSeconds) / seconds;
  return `${what}: Azurite used ${(share * 100).toFixed(0)} % of one core, RSS ${(after.rssBytes / MiB).toFixed(0)} MiB (peak ${(after.peakRssBytes / MiB).toFixed(0)} MiB)`;
}

interface Probe {
  readonly id: string;
  readonly title: string;
  readonly method: string;
  /** The request of round `r`, timed; throws unless it answered as expected. */
  run(r: number): Promise<void>;
}

export async function localArchiveSection(context: BenchContext): Promise<SectionResult> {
  const { archiveInstances, archiveRequests, archiveLoadSeconds, archiveMaxRssMiB, concurrency } = context.settings;
  const studies = Math.max(2 * archiveRequests + 2, Math.round(archiveInstances / PER_STUDY));
  const root = `1.2.826.0.1.3680043.10.1234.${Date.now()}`;
  // BENCH_AZURITE_PROFILE=<dir>: Azurite's event-loop stalls, GC runs and a CPU profile of the
  // timed requests (bench/azurite-profiler.cjs), and requests.log, each timed request's start.
  const profileDir = process.env['BENCH_AZURITE_PROFILE'];
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const azurite = await startAzurite({
    location: join(context.tempDir, 'azurite-la'),
    inMemory: true,
    ...(profileDir && {
      nodeArgs: ['--require', join(import.meta.dirname, 'azurite-profiler.cjs')],
      env: {
        DICOMWEB_AZURITE_PROFILE_DIR: profileDir,
        DICOMWEB_AZURITE_GC_SECONDS: process.env['BENCH_AZURITE_GC_SECONDS'] ?? '',
      },
    }),
  });
  const pid = azuritePid(azurite.blobPort);
  const toggleProfile = (): void => {
    if (profileDir && pid !== undefined) process.kill(pid, 'SIGUSR2');
  };
  const connectionString = azuriteConnectionString(azurite.blobPort, azurite.tablePort, '127.0.0.1', azurite.queuePort);
  const storage = { connectionString, container: `archive-${suffix()}`, table: `archive${suffix()}` };
  try {
    return await withServer(storage, concurrency, async (server, agent) => {
      const base = `${server.baseUrl}/v2`;
      // The load: one multipart request per study, `concurrency` clients, built as sent.
      context.progress(`la: loading ${studies * PER_STUDY} instances (${studies} studies of ${PER_STUDY})`);
      const loadCpu = processSample(pid);
      const otherLoadDuringLoad = watchOtherLoad();
      const started = Date.now();
      const deadline = started + archiveLoadSeconds * 1000;
      let loaded = 0;
      let full = false;
      const step = Math.max(1, Math.round(studies / 20));
      const load = await timed(() =>
        mapPool(
          Array.from({ length: studies }, (_, i) => i),
          concurrency,
          async (i) => {
            // Past the RSS cap no further study starts: what is stored stays a prefix of the studies.
            if (full || (processSample(pid)?.rssBytes ?? 0) > archiveMaxRssMiB * MiB) {
              full = true;
              return false;
            }
            await stow(agent, `${base}/studies`, multipartRequest(studyFiles(qidoStudy(i, root), i)));
            loaded += 1;
            if (loaded % step === 0) {
              const now = processSample(pid);
              context.progress(
                `la: ${loaded * PER_STUDY} instances loaded (${((loaded * PER_STUDY * 1000) / (Date.now() - started)).toFixed(0)}/s so far), Azurite RSS ${((now?.rssBytes ?? 0) / MiB).toFixed(0)} MiB`,
              );
            }
            return true;
          },
          deadline,
        ),
      );
      // Studies stored: the pool starts none after the deadline, so the stored ones are a prefix.
      const stored = load.value.filter(Boolean).length;
      const loadSeconds = load.ms / 1000;
      const loadOther = otherLoadDuringLoad();
      const loadLine = usageLine('load', loadCpu, processSample(pid), loadSeconds);
      const loadRate = (stored * PER_STUDY) / loadSeconds;
      context.progress(`la: ${stored * PER_STUDY} instances in ${loadSeconds.toFixed(0)} s (${loadRate.toFixed(0)}/s)`);
      if (stored < 2 * archiveRequests + 2) throw new Error(`la: only ${stored} studies loaded, too few to measure`);

      // Reads use the first half of the stored studies; DELETEs take the last ones, one per round.
      const readStudy = (r: number): QidoStudy => qidoStudy((r * 7919) % Math.floor(stored / 2), root);
      const probes: Probe[] = [
        {
          id: 'la1',
          title: 'STOW of one instance, new study',
          method: 'POST /v2/studies, multipart/related with one 64×64 16-bit image of a study not yet stored',
          run: async (r) => {
            const i = stored + r;
            await stow(agent, `${base}/studies`, multipartRequest(studyFiles(qidoStudy(i, root), i).slice(0, 1)));
          },
        },
        {
          id: 'la2',
          title: 'QIDO by PatientID',
          method: 'GET /v2/studies?PatientID={a loaded patient} (2 studies each)',
          run: async (r) => {
            const { patientId } = readStudy(r);
            const hits = await getJson<unknown[]>(agent, `${base}/studies?PatientID=${patientId}`, 'QIDO PatientID');
            if (hits.length < 1) throw new Error(`QIDO PatientID=${patientId} found nothing`);
          },
        },
        {
          id: 'la3',
          title: 'QIDO by PatientName',
          method: 'GET /v2/studies?PatientName={a loaded patient’s full name} (names repeat: up to 100 hits)',
          run: async (r) => {
            const name = encodeURIComponent(readStudy(r).patientName);
            const hits = await getJson<unknown[]>(agent, `${base}/studies?PatientName=${name}`, 'QIDO PatientName');
            if (hits.length < 1) throw new Error(`QIDO PatientName=${name} found nothing`);
          },
        },
        {
          id: 'la4',
          title: 'QIDO worklist',
          method: 'GET /v2/studies?limit=25 (the newest 25 studies)',
          run: async () => {
            const hits = await getJson<unknown[]>(agent, `${base}/studies?limit=25`, 'QIDO worklist');
            if (hits.length !== 25) throw new Error(`the worklist gave ${hits.length} studies, not 25`);
          },
        },
        {
          id: 'la5',
          title: 'study metadata',
          method: 'GET /v2/studies/{a loaded study}/metadata (5 instances)',
          run: async (r) => {
            const uid = readStudy(r).key.studyInstanceUid;
            const instances = await getJson<unknown[]>(agent, `${base}/studies/${uid}/metadata`, 'study metadata');
            if (instances.length !== PER_STUDY) throw new Error(`metadata of ${uid}: ${instances.length} instances`);
          },
        },
        {
          id: 'la6',
          title: 'frame retrieval',
          method: `GET .../instances/{a loaded instance}/frames/1, Accept ${FRAMES_ACCEPT} (8 KiB frame)`,
          run: async (r) => {
            const { key } = readStudy(r);
            const url = `${base}/studies/${key.studyInstanceUid}/series/${key.seriesInstanceUid}/instances/${key.seriesInstanceUid}.${(r % PER_STUDY) + 1}/frames/1`;
            const answer = expectStatus(await call(agent, url, { headers: { accept: FRAMES_ACCEPT } }), 200, 'frame 1');
            if (answer.bytes < 64 * 64 * 2) throw new Error(`frame 1 answered ${answer.bytes} bytes`);
          },
        },
        {
          id: 'la7',
          title: 'DELETE of a 5-instance study',
          method: 'DELETE /v2/studies/{a loaded study} (a different one each round)',
          run: async (r) => {
            const uid = qidoStudy(stored - 1 - r, root).key.studyInstanceUid;
            expectStatus(await call(agent, `${base}/studies/${uid}`, { method: 'DELETE', keep: true }), 204, 'DELETE');
          },
        },
      ];
      context.progress(`la: ${archiveRequests} rounds of ${probes.length} requests against the archive`);
      const samples = probes.map((): number[] => []);
      const measureCpu = processSample(pid);
      const otherLoadDuringRequests = watchOtherLoad();
      // Starting the profiler stops Azurite for a moment (2 s at 100k instances): wait it out.
      const starts = (): number => (profileDir ? readLog(profileDir).split('profile start').length : 0);
      const before = starts();
      toggleProfile();
      await waitFor(() => profileDir === undefined || starts() > before);
      const requests = await timed(async () => {
        for (let r = 0; r < archiveRequests; r++) {
          for (const [p, probe] of probes.entries()) {
            const at = new Date().toISOString();
            const { ms } = await timed(() => probe.run(r));
            samples[p]?.push(ms);
            if (profileDir) appendFileSync(join(profileDir, 'requests.log'), `${at} ${probe.id} ${ms.toFixed(1)}\n`);
          }
        }
      });
      toggleProfile();
      // The profile is written a moment after the signal, and Azurite stops once the section ends.
      await waitFor(() => profileDir === undefined || existsSync(join(profileDir, 'azurite-1.cpuprofile')));
      const requestOther = otherLoadDuringRequests();
      const requestLine = usageLine('requests', measureCpu, processSample(pid), requests.ms / 1000);
      const timings: TimedResult[] = probes.map((probe, p) =>
        timedResult(probe, samples[p] ?? [], undefined, requestOther),
      );
      const p99 = (values: readonly number[]): number => percentile(values, 99);
      const ms = (value: number): string => value.toFixed(1);
      return {
        workloads: [],
        timings,
        qido: [],
        checks: [
          {
            name: `la archive load, ${stored * PER_STUDY} instances through STOW`,
            value: `${loadRate.toFixed(0)} inst/s (${loadSeconds.toFixed(0)} s)`,
            target: `${studies * PER_STUDY} loaded`,
            met: stored === studies,
          },
          ...timings.map((t) => ({
            name: `${t.id} ${t.title} at ${stored * PER_STUDY} instances`,
            value: `p50 ${ms(t.p50Ms)} / p95 ${ms(t.p95Ms)} / p99 ${ms(p99(t.samplesMs))} ms`,
            target: `p99 ≤ ${TARGET_P99_MS} ms`,
            met: p99(t.samplesMs) <= TARGET_P99_MS,
          })),
        ],
        notes: [
          `la: its own Azurite in memory with src/host/azurite-preload.cjs (as DICOMWEB_AZURITE_MEMORY=true npm start), ${stored * PER_STUDY} instances of 64×64 16-bit (${studies * PER_STUDY} asked; loading stops after BENCH_ARCHIVE_LOAD_SECONDS=${archiveLoadSeconds} or once Azurite's RSS passes BENCH_ARCHIVE_MAX_RSS_MB=${archiveMaxRssMiB}${full ? ', which it did' : ''}), one multipart request per 5-instance study, ${concurrency} clients: ${loadRate.toFixed(0)} inst/s; other load ${((loadOther ?? 0) * 100).toFixed(0)} % during the load.`,
          `la: ${archiveRequests} rounds, each request once per round in turn, one keep-alive connection; ${loadLine}; ${requestLine}; server RSS ${((await server.memory()).rssBytes / MiB).toFixed(0)} MiB.`,
          ...(profileDir
            ? [
                `la: Azurite profiled into ${profileDir} (BENCH_AZURITE_PROFILE), its blob collection every ${process.env['BENCH_AZURITE_GC_SECONDS'] || 600} s (BENCH_AZURITE_GC_SECONDS).`,
              ]
            : []),
        ],
      };
    });
  } finally {
    await azurite.stop();
  }
}
