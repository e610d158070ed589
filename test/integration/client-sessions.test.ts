import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlockBlobClient } from '@azure/storage-blob';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DicomwebClient, scanPaths, type DicomFile } from '../../src/client/index.js';
import { blockId } from '../../src/storage/keys.js';
import { largeInstance, FRAME_BYTES } from '../../support/large-instance.js';
import { runCli } from '../helpers/cli.js';
import { serveStorage, startTestServer, type TestServer } from '../helpers/server.js';
import { createMemoryStorage } from '../../src/storage/memory-storage.js';

const MiB = 1024 * 1024;
let server: TestServer;
let work: string;
beforeAll(async () => {
  server = await startTestServer();
  work = mkdtempSync(join(tmpdir(), 'dicomweb-sessions-'));
});
afterAll(async () => {
  await server.close();
  rmSync(work, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** A generated multi-frame instance of about `mib` MiB written to a file; its UIDs and bytes. */
async function largeFile(path: string, mib: number) {
  const instance = largeInstance(Math.ceil((mib * MiB) / FRAME_BYTES));
  const bytes = instance.bytes(0, instance.size);
  writeFileSync(path, bytes);
  const [file] = await scanDicom(path);
  return { instance, bytes, path, file: file as DicomFile };
}

async function scanDicom(path: string): Promise<DicomFile[]> {
  const files: DicomFile[] = [];
  for await (const found of scanPaths([path])) if (found.kind === 'dicom') files.push(found);
  return files;
}

async function retrieved(client: DicomwebClient, key: ReturnType<typeof largeInstance>['key']): Promise<Buffer> {
  const stream = await client.retrieveInstance({
    study: key.studyInstanceUid,
    series: key.seriesInstanceUid,
    instance: key.sopInstanceUid,
  });
  return Buffer.from(await new Response(stream).arrayBuffer());
}

/** A client whose requests to this server are listed, method and path. */
function countingClient(): { client: DicomwebClient; requests: string[] } {
  const requests: string[] = [];
  const client = new DicomwebClient({
    baseUrl: `${server.baseUrl}/v2`,
    fetch: (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      requests.push(`${init?.method ?? 'GET'} ${new URL(url).pathname}`);
      return fetch(input, init);
    },
  });
  return { client, requests };
}

describe('the client and CLI with upload sessions', () => {
  it('sends a file at or above the threshold through a session (blocks to storage), smaller ones by STOW', async () => {
    const large = await largeFile(join(work, 'large.dcm'), 5);
    const small = await largeFile(join(work, 'small.dcm'), 0.5);
    const { client, requests } = countingClient();
    const staged = vi.spyOn(BlockBlobClient.prototype, 'stageBlock');
    const outcomes = await client.upload([large.file, small.file], {
      largeInstances: client.sessions({ threshold: 1 * MiB, blockBytes: 1 * MiB }),
    });
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['stored', 'stored']);
    expect(staged).toHaveBeenCalledTimes(Math.ceil(large.bytes.length / MiB));
    expect(requests.filter((request) => request.includes('upload-sessions'))).toEqual([
      'POST /v2/upload-sessions',
      expect.stringMatching(/^POST \/v2\/upload-sessions\/[0-9a-f]{32}\/commit$/),
    ]);
    expect(requests).toContain('POST /v2/studies');
    expect((await retrieved(client, large.instance.key)).equals(large.bytes)).toBe(true);
  });

  it('resumes a session an interrupted run opened, sending only the blocks it does not hold', async () => {
    const large = await largeFile(join(work, 'resumed.dcm'), 5);
    const { client } = countingClient();
    // An earlier run opened the session and sent the first two 1 MiB blocks.
    const opened = (await (
      await fetch(`${server.baseUrl}/v2/upload-sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ size: large.bytes.length }),
      })
    ).json()) as { url: string; uploadUrl: string };
    const blob = new BlockBlobClient(opened.uploadUrl);
    for (const index of [0, 1]) {
      await blob.stageBlock(blockId(index), large.bytes.subarray(index * MiB, (index + 1) * MiB), MiB);
    }
    const staged = vi.spyOn(BlockBlobClient.prototype, 'stageBlock');
    const [outcome] = await client.upload([large.file], {
      largeInstances: client.sessions({ threshold: MiB, blockBytes: MiB, resumeFrom: () => opened.url }),
    });
    expect(outcome?.status).toBe('stored');
    expect(staged).toHaveBeenCalledTimes(Math.ceil(large.bytes.length / MiB) - 2);
    expect((await retrieved(client, large.instance.key)).equals(large.bytes)).toBe(true);
    expect((await fetch(opened.url)).status).toBe(404);
  });

  it('falls back to one STOW request per large file where the server has no upload sessions', async () => {
    // The in-memory storage cannot sign upload URLs: the session routes answer 501.
    const bare = await serveStorage(createMemoryStorage());
    try {
      const large = await largeFile(join(work, 'fallback.dcm'), 3);
      const client = new DicomwebClient({ baseUrl: `${bare.baseUrl}/v2` });
      const [outcome] = await client.upload([large.file], { largeInstances: client.sessions({ threshold: MiB }) });
      expect(outcome?.status).toBe('stored');
      expect((await retrieved(client, large.instance.key)).equals(large.bytes)).toBe(true);
    } finally {
      await bare.close();
    }
  });

  it('the CLI sends large files through sessions and resumes the one its record names', async () => {
    const folder = mkdtempSync(join(work, 'cli-'));
    const large = await largeFile(join(folder, 'big.dcm'), 6);
    const state = join(work, 'cli-state.jsonl');
    // The record an interrupted run left: the session it opened for big.dcm (nothing sent yet).
    const opened = (await (
      await fetch(`${server.baseUrl}/v2/upload-sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ size: large.bytes.length }),
      })
    ).json()) as { url: string };
    writeFileSync(
      state,
      `${JSON.stringify({ path: large.file.path, size: large.file.size, mtimeMs: large.file.mtimeMs, session: opened.url })}\n`,
    );
    const run = await runCli(
      [
        '--url',
        `${server.baseUrl}/v2`,
        'upload',
        folder,
        '--session-mb',
        '1',
        '--state',
        state,
        '--json',
        '--no-progress',
      ],
      { cwd: work },
    );
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { files: { status: string }[] };
    expect(result.files.map((file) => file.status)).toEqual(['stored']);
    // The recorded session was the one committed (it is gone), and the record is cleared.
    expect((await fetch(opened.url)).status).toBe(404);
    expect(existsSync(state) ? readFileSync(state, 'utf8') : '').toBe('');
    const client = new DicomwebClient({ baseUrl: `${server.baseUrl}/v2` });
    expect((await retrieved(client, large.instance.key)).equals(large.bytes)).toBe(true);
  });
});
