/**
 * The upload-session bench's client, a process of its own so its memory is its own: uploads a
 * generated large instance in parallel blocks, through an upload session (`session`: open,
 * blocks to the upload URL, commit), again into a session it resumes (`resume`: only the blocks
 * the session does not list), or straight to a blob (`raw`: the same blocks and block list with
 * no server). Reports on stdout, one JSON line each: the session when opened, every block started
 * and acknowledged, and the result (seconds, bytes sent, peak RSS).
 */
import { BlockBlobClient } from '@azure/storage-blob';
import { blockId } from '../src/storage/keys.js';
import { largeInstance } from '../support/large-instance.js';

export interface SessionClientJob {
  readonly mode: 'session' | 'resume' | 'raw';
  readonly frames: number;
  readonly key: { studyInstanceUid: string; seriesInstanceUid: string; sopInstanceUid: string };
  readonly blockBytes: number;
  readonly parallel: number;
  /** session: the server's base URL (…/v2); resume: the session's URL; raw: a SAS URL of a blob. */
  readonly url: string;
}

export type SessionClientLine =
  | { readonly session: { readonly url: string; readonly uploadUrl: string } }
  | { readonly started: number; readonly acked: number }
  | {
      readonly seconds: number;
      /** Of `seconds`, the commit (the server's read and the storage-side copy). */
      readonly commitSeconds: number;
      /** The file's size, and the bytes this process sent of it. */
      readonly size: number;
      readonly bytesSent: number;
      readonly peakRssBytes: number;
      readonly status: number;
    };

const say = (line: SessionClientLine): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`);
};

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as SessionClientJob;
  let peakRssBytes = process.memoryUsage.rss();
  const sampler = setInterval(() => {
    peakRssBytes = Math.max(peakRssBytes, process.memoryUsage.rss());
  }, 50);
  const instance = largeInstance(job.frames, job.key);
  const blocks = Math.ceil(instance.size / job.blockBytes);
  const started = performance.now();

  let uploadUrl = job.url;
  let sessionUrl: string | undefined;
  let present = new Set<string>();
  if (job.mode === 'session') {
    const opened = await fetch(`${job.url}/upload-sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ size: instance.size }),
    });
    const session = (await opened.json()) as { url: string; uploadUrl: string };
    say({ session });
    uploadUrl = session.uploadUrl;
    sessionUrl = session.url;
  } else if (job.mode === 'resume') {
    sessionUrl = job.url;
    const state = (await (await fetch(sessionUrl)).json()) as { uploadUrl: string; blocks: { id: string }[] };
    present = new Set(state.blocks.map((block) => block.id));
    uploadUrl = state.uploadUrl;
  }

  const blob = new BlockBlobClient(uploadUrl);
  let next = 0;
  let sent = 0;
  let acked = 0;
  const worker = async (): Promise<void> => {
    while (next < blocks) {
      const index = next++;
      if (present.has(blockId(index))) continue;
      const offset = index * job.blockBytes;
      const part = instance.bytes(offset, Math.min(job.blockBytes, instance.size - offset));
      sent += part.length;
      say({ started: sent, acked });
      await blob.stageBlock(blockId(index), part, part.length);
      acked += part.length;
      say({ started: sent, acked });
    }
  };
  await Promise.all(Array.from({ length: job.parallel }, worker));

  let status = 201;
  const committing = performance.now();
  if (sessionUrl) {
    const committed = await fetch(`${sessionUrl}/commit`, {
      method: 'POST',
      headers: { accept: 'application/dicom+json' },
    });
    status = committed.status;
    await committed.arrayBuffer();
  } else {
    await blob.commitBlockList(Array.from({ length: blocks }, (_, i) => blockId(i)));
  }
  clearInterval(sampler);
  peakRssBytes = Math.max(peakRssBytes, process.memoryUsage.rss());
  const now = performance.now();
  say({
    seconds: (now - started) / 1000,
    commitSeconds: (now - committing) / 1000,
    size: instance.size,
    bytesSent: sent,
    peakRssBytes,
    status,
  });
}

main().catch((error: unknown) => {
  console.error('session client failed:', error);
  process.exitCode = 1;
});
