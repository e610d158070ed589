import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { afterAll, beforeAll, inject } from 'vitest';
import { createApp } from '../../src/app.js';
import type { AuditSink } from '../../src/http/audit.js';
import { azuriteConnectionString } from '../../src/config.js';
import type { AppConfig } from '../../src/http/context.js';
import { createNodeServer, listen } from '../../src/host/node-host.js';
import type { SecurityOptions } from '../../src/security/security-options.js';
import type { BlockUploadOptions } from '../../src/storage/azure-blob-store.js';
import { openAzureStorage, type StorageConfig } from '../../src/storage/azure-storage.js';
import type { Storage } from '../../src/storage/ports.js';

export const defaultAppConfig: AppConfig = {
  publicBaseUrl: undefined,
  maxHeaderBytes: 8 * 1024 * 1024,
  emptySearchStatus: 200,
};

/** Storage config for this test file's own container and table in the shared Azurite. */
export function uniqueStorageConfig(): StorageConfig {
  const { blobPort, tablePort } = inject('azurite');
  const suffix = randomBytes(5).toString('hex');
  return {
    target: { kind: 'connection-string', connectionString: azuriteConnectionString(blobPort, tablePort) },
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
export function useTestServer(config: Partial<AppConfig> = {}): () => TestServer {
  let server: TestServer | undefined;
  beforeAll(async () => {
    server = await startTestServer(config);
  });
  afterAll(async () => {
    await server?.close();
  });
  return () => {
    if (!server) throw new Error('the test server has not started');
    return server;
  };
}
