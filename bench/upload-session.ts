/**
 * Section us: one large instance (BENCH_SESSION_MB, 5 GiB by default) through an upload session,
 * beside the raw floor of the same client putting the same blocks straight into a blob; the
 * client's and the server's peak RSS; and resume: a client killed halfway, then a second one that
 * sends only what the session does not list (bytes sent again, against one block per stream).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import {
  BlobSASPermissions,
  SASProtocol,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../src/config.js';
import { newInstanceUids } from '../support/dicom-builder.js';
import { FRAME_BYTES } from '../support/large-instance.js';
import { freshStorage, suffix, withServer, type BenchContext } from './context.js';
import type { SectionResult } from './report.js';
import { benchRuntime, REPO_ROOT } from './server-child.js';
import type { SessionClientJob, SessionClientLine } from './session-client.js';

const MiB = 1024 * 1024;
const BLOCK_BYTES = 8 * MiB;
const PARALLEL = 4;
/**
 * The (#16) target is memory on both sides; throughput it asks "beside raw", without a
 * ratio, so the ratio is reported, not judged. (An earlier 0.8 here was the CLI's target, copied.)
 * The session's time includes the commit, which reads the whole blob back through the server to
 * validate it: inside one region on Azure, where Azurite on this machine's disk is slower.
 */
const TARGET_RSS_BYTES = 200 * MiB;

interface ClientRun {
  readonly lines: SessionClientLine[];
  readonly result: Extract<SessionClientLine, { seconds: number }> | undefined;
}

/** Runs the client; `killWhen` sees every line and may end the process (SIGKILL) early. */
function runClient(job: SessionClientJob, killWhen?: (line: SessionClientLine) => boolean): Promise<ClientRun> {
  const script =
    benchRuntime() === 'js'
      ? [join(REPO_ROOT, 'dist', 'bench-server', 'bench', 'session-client.js')]
      : ['--import', 'tsx', join(REPO_ROOT, 'bench', 'session-client.ts')];
  const child = spawn(process.execPath, [...script, JSON.stringify(job)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: SessionClientLine[] = [];
  let pending = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    pending += text;
    for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
      const line = JSON.parse(pending.slice(0, end)) as SessionClientLine;
      pending = pending.slice(end + 1);
      lines.push(line);
      if (killWhen?.(line)) child.kill('SIGKILL');
    }
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', () => {
      const last = lines.at(-1);
      resolve({ lines, result: last && 'seconds' in last ? last : undefined });
    });
  });
}

function rawBlobUrl(context: BenchContext, container: string, blob: string): string {
  const sas = generateBlobSASQueryParameters(
    {
      containerName: container,
      blobName: blob,
      permissions: BlobSASPermissions.parse('cw'),
      expiresOn: new Date(Date.now() + 6 * 3_600_000),
      protocol: SASProtocol.HttpsAndHttp,
    },
    new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
  ).toString();
  return `${context.target.blobs.getContainerClient(container).getBlobClient(blob).url}?${sas}`;
}

const mibPerSecond = (bytes: number, seconds: number) => bytes / MiB / seconds;

export async function uploadSessionSection(context: BenchContext): Promise<SectionResult> {
  const frames = Math.ceil((context.settings.sessionMiB * MiB) / FRAME_BYTES);
  const job = (mode: SessionClientJob['mode'], url: string, framesOf = frames): SessionClientJob => ({
    mode,
    frames: framesOf,
    key: newInstanceUids(),
    blockBytes: BLOCK_BYTES,
    parallel: PARALLEL,
    url,
  });
  context.progress(`us: a ${context.settings.sessionMiB} MiB instance through an upload session, and raw`);

  let server: { run: ClientRun; peakRssBytes: number } | undefined;
  await withServer(freshStorage(context.target, 'session'), PARALLEL, async (child) => {
    await child.resetPeak();
    const run = await runClient(job('session', `${child.baseUrl}/v2`));
    server = { run, peakRssBytes: (await child.memory()).peakRssBytes };
  });
  const container = `bench-rawsession-${suffix()}`;
  await context.target.blobs.getContainerClient(container).create();
  const raw = await runClient(job('raw', rawBlobUrl(context, container, 'instance.dcm')));
  await context.target.blobs.getContainerClient(container).delete();

  // Resume: a quarter of the size is enough to kill the first client halfway through.
  const resumeFrames = Math.max(8, Math.ceil(frames / 4));
  let resent: { again: number; size: number; status: number } | undefined;
  await withServer(freshStorage(context.target, 'resume'), PARALLEL, async (child) => {
    const first = job('session', `${child.baseUrl}/v2`, resumeFrames);
    const pixels = resumeFrames * FRAME_BYTES;
    const killed = await runClient(first, (line) => 'acked' in line && line.acked >= pixels / 2);
    const opened = killed.lines.find((line) => 'session' in line);
    const startedFirst = Math.max(0, ...killed.lines.map((line) => ('started' in line ? line.started : 0)));
    if (!opened || !('session' in opened)) throw new Error('the killed client never opened its session');
    const second = await runClient({ ...first, mode: 'resume', url: opened.session.url });
    const result = second.result;
    if (!result) throw new Error('the resuming client did not finish');
    // Bytes the two clients sent beyond the file's size were sent twice.
    resent = { again: startedFirst + result.bytesSent - result.size, size: result.size, status: result.status };
  });

  const session = server?.run.result;
  if (!server || !session || !raw.result) throw new Error('the upload session bench did not finish');
  const bytes = frames * FRAME_BYTES;
  const ratio = raw.result.seconds / session.seconds;
  const worst = Math.max(session.peakRssBytes, server.peakRssBytes);
  const allowedAgain = PARALLEL * BLOCK_BYTES;
  const line = (label: string, seconds: number) =>
    `${label}: ${seconds.toFixed(1)} s, ${mibPerSecond(bytes, seconds).toFixed(0)} MiB/s`;
  return {
    workloads: [],
    timings: [],
    qido: [],
    checks: [
      {
        name: `us ${context.settings.sessionMiB} MiB upload session vs raw blocks`,
        value: `${mibPerSecond(bytes, session.seconds).toFixed(0)} vs ${mibPerSecond(bytes, raw.result.seconds).toFixed(0)} MiB/s, ratio ${ratio.toFixed(2)} (commit answered ${session.status})`,
        target: 'reported beside raw; the commit must answer 200',
        met: session.status === 200 ? undefined : false,
      },
      {
        name: 'us peak RSS, client and server',
        value: `client ${(session.peakRssBytes / MiB).toFixed(0)} MiB, server ${(server.peakRssBytes / MiB).toFixed(0)} MiB`,
        target: `≤ ${TARGET_RSS_BYTES / MiB} MiB each`,
        met: worst <= TARGET_RSS_BYTES,
      },
      {
        name: 'us resume after the client was killed halfway',
        value: resent
          ? `${(resent.again / MiB).toFixed(1)} MiB sent again of ${(resent.size / MiB).toFixed(0)} MiB (commit ${resent.status})`
          : 'not measured',
        target: `≤ ${PARALLEL} blocks of ${BLOCK_BYTES / MiB} MiB (${allowedAgain / MiB} MiB)`,
        met: resent ? resent.again <= allowedAgain && resent.status === 200 : undefined,
      },
    ],
    notes: [
      `us: ${line('session (open, blocks to the upload URL, commit)', session.seconds)}, of which the commit ${session.commitSeconds.toFixed(1)} s; ${line('raw (the same blocks and block list, no server)', raw.result.seconds)}; ${PARALLEL} parallel ${BLOCK_BYTES / MiB} MiB blocks`,
    ],
  };
}
