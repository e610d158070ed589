/**
 * Large files through upload sessions (docs/conformance.md "Upload sessions"): the file's blocks
 * go straight to Blob Storage through the session's upload URL, several at once, each read from
 * disk when it is sent (memory: one block per stream); a session already holding some blocks (an
 * interrupted run) gets only the missing ones; the commit returns STOW's answer for the file.
 */
import { open } from 'node:fs/promises';
import type { DicomJsonDataset } from './dicom-json.js';
import type { DicomFile } from './scan.js';
import { storeResult, type InstanceOutcome } from './stow-result.js';
import type { Transport } from './transport.js';
import type { LargeInstanceUploader } from './upload.js';

const MiB = 1024 * 1024;

export interface SessionUploadOptions {
  /** Files of at least this many bytes use a session (default 64 MiB; Azure takes 127 MiB per request). */
  readonly threshold?: number;
  /** Bytes per block (default 8 MiB, at most 50,000 blocks per file). */
  readonly blockBytes?: number;
  /** Blocks in flight at once per file (default 4). */
  readonly parallel?: number;
  /** The session URL an earlier, interrupted run opened for this file, to resume it. */
  readonly resumeFrom?: (file: DicomFile) => string | undefined;
  /** Called once a session is open, so a caller can record it for a later resume. */
  readonly onSession?: (file: DicomFile, sessionUrl: string) => void | Promise<void>;
  /** How to send a file when the server has no upload sessions (404, 405, 501): e.g. one STOW request. */
  readonly fallback?: LargeInstanceUploader['upload'];
}

/** Answers of a server without upload sessions (another DICOMweb server, or no way to sign URLs). */
const NO_SESSIONS = new Set([404, 405, 501]);

interface SessionState {
  readonly url: string;
  readonly uploadUrl: string;
  readonly blocks: readonly { readonly id: string; readonly size: number }[];
}

/**
 * Block ids: base64 of a zero-padded index, so they sort like their positions (the server's order).
 * The server's own copy is storage/keys.ts blockId; the client imports no server code, so it keeps this one.
 */
const blockId = (index: number) => Buffer.from(index.toString().padStart(6, '0')).toString('base64');

async function existing(transport: Transport, url: string, signal: AbortSignal): Promise<SessionState | undefined> {
  const response = await transport.send(url, { signal, accept: (status) => status === 200 || status === 404 });
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined; // committed, abandoned or expired: start afresh
  }
  return (await response.json()) as SessionState;
}

/** A new session for `file`, or undefined when the server has none (NO_SESSIONS). */
async function opened(
  transport: Transport,
  file: DicomFile,
  study: string | undefined,
  signal: AbortSignal,
): Promise<SessionState | undefined> {
  const response = await transport.send('/upload-sessions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: () => JSON.stringify({ size: file.size, ...(study === undefined ? {} : { studyInstanceUid: study }) }),
    signal,
    accept: (status) => status === 201 || NO_SESSIONS.has(status),
  });
  if (response.status !== 201) {
    await response.body?.cancel();
    return undefined;
  }
  const session = (await response.json()) as Omit<SessionState, 'blocks'>;
  return { ...session, blocks: [] };
}

/** Sends the blocks `state` does not hold yet, `parallel` at once; calls onBytes as each is sent. */
async function sendBlocks(
  file: DicomFile,
  state: SessionState,
  blockBytes: number,
  parallel: number,
  signal: AbortSignal,
  onBytes: (bytes: number) => void,
): Promise<void> {
  const count = Math.ceil(file.size / blockBytes);
  const held = new Map(state.blocks.map((block) => [block.id, block.size]));
  // Loaded on first use: the storage SDK is most of the client's start-up time, and only uploads
  // above the session threshold need it.
  const { BlockBlobClient } = await import('@azure/storage-blob');
  const blob = new BlockBlobClient(state.uploadUrl);
  const handle = await open(file.path, 'r');
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let index = next++; index < count; index = next++) {
        signal.throwIfAborted();
        const offset = index * blockBytes;
        const length = Math.min(blockBytes, file.size - offset);
        if (held.get(blockId(index)) === length) {
          onBytes(length);
          continue;
        }
        const block = Buffer.allocUnsafe(length);
        const { bytesRead } = await handle.read(block, 0, length, offset);
        if (bytesRead !== length) throw new Error(`${file.path} changed while it was uploaded (it is shorter).`);
        await blob.stageBlock(blockId(index), block, length, { abortSignal: signal });
        onBytes(length);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, count)) }, worker));
  } finally {
    await handle.close();
  }
}

/** The LargeInstanceUploader for `uploadFiles`: files at or above the threshold go through a session. */
export function sessionUploader(transport: Transport, options: SessionUploadOptions = {}): LargeInstanceUploader {
  const blockBytes = options.blockBytes ?? 8 * MiB;
  return {
    threshold: options.threshold ?? 64 * MiB,
    async upload(file, context): Promise<InstanceOutcome> {
      const { signal, onBytes, study } = context;
      const earlier = options.resumeFrom?.(file);
      let state = earlier === undefined ? undefined : await existing(transport, earlier, signal);
      if (!state) {
        state = await opened(transport, file, study, signal);
        if (!state) {
          if (options.fallback) return options.fallback(file, context);
          throw new Error(`${transport.baseUrl} has no upload sessions, and ${file.path} needs one.`);
        }
        await options.onSession?.(file, state.url);
      }
      await sendBlocks(file, state, blockBytes, options.parallel ?? 4, signal, onBytes);
      const response = await transport.send(`${state.url}/commit`, {
        method: 'POST',
        headers: { accept: 'application/dicom+json' },
        signal,
        accept: (status) => status === 200 || status === 202 || status === 409,
      });
      const text = await response.text();
      const result = storeResult(
        response.status,
        text.trim() === '' ? undefined : (JSON.parse(text) as DicomJsonDataset),
      );
      return (
        result.instances[0] ?? {
          status: 'failed',
          sopInstanceUid: file.meta.sopInstanceUid,
          comments: [`The session's commit answered ${response.status} without naming the instance.`],
        }
      );
    },
  };
}
