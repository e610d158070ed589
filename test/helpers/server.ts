import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { afterAll, beforeAll, inject } from 'vitest';
import { createApp } from '../../src/app.js';
import { decodeFrame } from '../../src/dicom/codecs/decode-frame.js';
import type { AuditRecord, AuditSink } from '../../src/http/audit.js';
import { azuriteConnectionString } from '../../src/config.js';
import type { AppConfig } from '../../src/http/context.js';
import { createNodeServer, listen } from '../../src/host/node-host.js';
import type { SecurityOptions } from '../../src/security/security-options.js';
import type { BlockUploadOptions } from '../../src/storage/azure-blob-store.js';
import { openAzureStorage, type StorageConfig } from '../../src/storage/azure-storage.js';
import type { Storage } from '../../src/storage/ports.js';
import type { StorageCounts } from '../../src/util/storage-meter.js';

export const defaultAppConfig: AppConfig = {
  publicBaseUrl: undefined,
  maxHeaderBytes: 8 * 1024 * 1024,
  emptySearchStatus: 200,
};

/** Storage config for this test file's own container and table in the shared Azurite. */
export function uniqueStorageConfig(): StorageConfig {
  const { blobPort, tablePort, queuePort } = inject('azurite');
  const suffix = randomBytes(5).toString('hex');
  return {
    target: {
      kind: 'connection-string',
      connectionString: azuriteConnectionString(blobPort, tablePort, '127.0.0.1', queuePort),
    },
    container: `test-${suffix}`,
    table: `test${suffix}`,
  };
}

export async function openTestStorage(
  uploads?: BlockUploadOptions,
): Promise<{ storage: Storage; config: StorageConfig }> {
  const config = uniqueStorageConfig();
  return { storage: await openAzureStorage(config, uploads), config };
}

export interface TestServer {
  readonly baseUrl: string;
  readonly storage: Storage;
  readonly storageConfig: StorageConfig;
  close(): Promise<void>;
}

/** Serves `storage` through the node host on port 0. */
export async function serveStorage(
  storage: Storage,
  config: Partial<AppConfig> = {},
  options: { security?: SecurityOptions; audit?: AuditSink } = {},
): Promise<{ baseUrl: string; close(): Promise<void> }> {
  const server: Server = createNodeServer(
    createApp({
      storage,
      config: { ...defaultAppConfig, ...config },
      log: () => undefined,
      audit: options.audit ?? (() => undefined),
      decodeFrame,
      ...(options.security ? { security: options.security } : {}),
    }),
  );
  const address = await listen(server, 0, '127.0.0.1');
  return {
    baseUrl: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** The node host on port 0 over this file's own container and table in Azurite. */
export async function startTestServer(
  config: Partial<AppConfig> = {},
  uploads?: BlockUploadOptions,
): Promise<TestServer> {
  const { storage, config: storageConfig } = await openTestStorage(uploads);
  return { ...(await serveStorage(storage, config)), storage, storageConfig };
}

/** Starts a test server before the suite's tests and stops it after them. */
/** A server for the file's tests, started before them and closed after them; the getter throws before it has started. */
function useServer<T extends { close(): Promise<void> }>(start: () => Promise<T>): () => T {
  let server: T | undefined;
  beforeAll(async () => {
    server = await start();
  });
  afterAll(async () => {
    await server?.close();
  });
  return () => {
    if (!server) throw new Error('the test server has not started');
    return server;
  };
}

export function useTestServer(config: Partial<AppConfig> = {}): () => TestServer {
  return useServer(() => startTestServer(config));
}

export interface MeteredCall {
  readonly status: number;
  readonly body: Buffer;
  /** The storage round trips the request made, from its audit record. */
  readonly storage: StorageCounts;
}

export interface MeteredServer extends TestServer {
  /** Sends one request, reads its whole response and returns the request's storage meter. */
  call(path: string, init?: RequestInit): Promise<MeteredCall>;
}

/** The node host over this file's own Azurite container and table, reading each request's meter from its audit record. */
export async function startMeteredServer(config: Partial<AppConfig> = {}): Promise<MeteredServer> {
  const { storage, config: storageConfig } = await openTestStorage();
  return { ...(await serveMetered(storage, config)), storage, storageConfig };
}

/**
 * Another app (its own process-level caches) over `storage`, metered like startMeteredServer's:
 * what a second Functions instance or a restarted host would do with the same data.
 */
export async function serveMetered(
  storage: Storage,
  config: Partial<AppConfig> = {},
): Promise<{ baseUrl: string; close(): Promise<void>; call: MeteredServer['call'] }> {
  const records = new Map<string, AuditRecord>();
  const served = await serveStorage(storage, config, {
    audit: (record) => {
      records.set(record.correlationId, record);
    },
  });
  return {
    ...served,
    async call(path, init = {}) {
      const correlationId = `meter-${randomBytes(8).toString('hex')}`;
      const headers = new Headers(init.headers);
      headers.set('x-correlation-id', correlationId);
      const response = await fetch(`${served.baseUrl}${path}`, { ...init, headers });
      const body = Buffer.from(await response.arrayBuffer());
      // The record is written when the response body has ended, just before its last bytes leave.
      for (let waited = 0; !records.has(correlationId) && waited < 2000; waited += 10) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const record = records.get(correlationId);
      if (!record) throw new Error(`no audit record for ${init.method ?? 'GET'} ${path}`);
      records.delete(correlationId);
      return { status: response.status, body, storage: record.storage };
    },
  };
}

export function useMeteredServer(config: Partial<AppConfig> = {}): () => MeteredServer {
  return useServer(() => startMeteredServer(config));
}
