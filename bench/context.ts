/** What the bench's sections share: the Azurite they all use, the settings, and small helpers. */
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import type { BlobServiceClient } from '@azure/storage-blob';
import { multipartRequest } from './workloads.js';
import { startServerChild, type ServerChild, type ServerStorage } from './server-child.js';
import type { BenchSettings } from './settings.js';
import { stow } from './stow-client.js';
import { timedPool } from './measure.js';

export interface Target {
  readonly connectionString: string;
  readonly blobs: BlobServiceClient;
}

export interface BenchContext {
  readonly settings: BenchSettings;
  readonly target: Target;
  readonly tempDir: string;
  /** A progress line on stderr (stdout is the report). */
  progress(line: string): void;
}

export const suffix = (): string => randomBytes(4).toString('hex');

/** A fresh container and table name pair for one section's data. */
export function freshStorage(target: Target, label: string): ServerStorage {
  const id = suffix();
  return {
    connectionString: target.connectionString,
    container: `bench-${label}-${id}`,
    table: `bench${label.replace(/[^a-z0-9]/gi, '')}${id}`,
  };
}

/** Starts a server over `storage`, runs `work` with it and a keep-alive agent, then stops it. */
export async function withServer<T>(
  storage: ServerStorage,
  sockets: number,
  work: (server: ServerChild, agent: Agent) => Promise<T>,
  extraEnv: Record<string, string> = {},
): Promise<T> {
  const server = await startServerChild(storage, extraEnv);
  const agent = new Agent({ keepAlive: true, maxSockets: sockets });
  try {
    return await work(server, agent);
  } finally {
    agent.destroy();
    await server.stop();
  }
}

/** STOWs `files` through the server in multipart requests of `batch`, `concurrency` at once; seconds. */
export function stowAll(
  agent: Agent,
  baseUrl: string,
  files: readonly Buffer[],
  batch: number,
  concurrency: number,
): Promise<number> {
  const requests = [];
  for (let i = 0; i < files.length; i += batch) requests.push(multipartRequest(files.slice(i, i + batch)));
  return timedPool(requests, concurrency, (request) => stow(agent, `${baseUrl}/v2/studies`, request));
}
