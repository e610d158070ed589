/**
 * `npm start`: runs the DICOMweb server locally. Without a storage account in the environment
 * it starts Azurite itself (data under DICOMWEB_DATA_DIR, default ./.data) and stops it on exit.
 */
import { resolve } from 'node:path';
import { azuriteConnectionString, readConfig, type StorageConfig } from '../config.js';
import { DEFAULT_ORPHAN_AGE_MS, sweepOrphans } from '../dicomweb/sweep-orphans.js';
import { sweepUploadSessions } from '../dicomweb/upload-session.js';
import { EXPIRY_SWEEP_INTERVAL_MS, sweepExpiredStudies } from '../dicomweb/expire-studies.js';
import { assertSafeToServe } from '../security/security-options.js';
import { startAzurite, type AzuriteProcess } from './azurite.js';
import { DEFAULT_EVENTS_QUEUE } from '../events/events-config.js';
import { composeService } from './compose.js';
import { createEventPublishing, startEventLoop } from './events.js';
import { createNodeServer, listen } from './node-host.js';
import { startOperationWorkers } from './operations.js';
import { migrateLocalArchive } from './migrate.js';

async function main(): Promise<void> {
  const config = readConfig();
  let azurite: AzuriteProcess | undefined;
  let storageConfig: StorageConfig;
  if (config.storage) {
    storageConfig = config.storage;
    console.log('Using the storage account named in the environment.');
  } else {
    const location = resolve(config.dataDir, 'azurite');
    azurite = await startAzurite({ location, inMemory: config.azuriteInMemory });
    const where = config.azuriteInMemory ? 'data in memory only (DICOMWEB_AZURITE_MEMORY)' : `data in ${location}`;
    console.log(
      `Azurite started (blob :${azurite.blobPort}, table :${azurite.tablePort}, queue :${azurite.queuePort}), ${where}`,
    );
    storageConfig = {
      target: {
        kind: 'connection-string',
        connectionString: azuriteConnectionString(azurite.blobPort, azurite.tablePort, '127.0.0.1', azurite.queuePort),
      },
      container: config.container,
      table: config.table,
      operationsQueue: config.operations.queue,
    };
  }
  const stopAzurite = async (): Promise<void> => {
    // Five seconds for Azurite to write its tables to disk before it is killed.
    await azurite?.stop(5000);
  };
  try {
    const { app, storage } = await composeService({ ...config, storage: storageConfig });
    const sweep = (): void => {
      sweepOrphans(storage).then(
        (result) => {
          if (result.clearedNotes > 0)
            console.log(`Orphan sweep: ${result.deletedBlobs} blobs deleted, ${result.clearedNotes} notes cleared.`);
        },
        (error: unknown) => {
          console.error('Orphan sweep failed:', error);
        },
      );
      sweepUploadSessions(storage).then(
        (removed) => {
          if (removed > 0) console.log(`Upload session sweep: ${removed} expired sessions removed.`);
        },
        (error: unknown) => {
          console.error('Upload session sweep failed:', error);
        },
      );
    };
    sweep();
    setInterval(sweep, DEFAULT_ORPHAN_AGE_MS).unref();
    // This process is the only one using its own Azurite, so an archive an older version left there
    // is migrated at once (a shared account waits for `npm run migrate`: docs/storage.md).
    if (azurite) migrateLocalArchive(storageConfig);
    const expire = (): void => {
      sweepExpiredStudies(storage).then(
        (result) => {
          if (result.deletedStudies > 0) console.log(`Expiry sweep: ${result.deletedStudies} expired studies deleted.`);
        },
        (error: unknown) => {
          console.error('Expiry sweep failed:', error);
        },
      );
    };
    expire();
    setInterval(expire, EXPIRY_SWEEP_INTERVAL_MS).unref();
    startOperationWorkers(
      storage,
      (message, error) => {
        console.error(`${message}:`, error ?? '');
      },
      { intervalMs: config.operations.intervalMs },
    );
    if (storage.operationQueue) console.log(`Operations: started from the queue ${storage.operationQueue.name}.`);
    assertSafeToServe(config);
    const server = createNodeServer(app);
    const address = await listen(server, config.port, config.host);
    const origin = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
    console.log(`DICOMweb base URLs: ${origin}/v2 and ${origin}/v1 (Ctrl-C to stop)`);
    const serving = { ...config, storage: storageConfig, port: address.port };
    const publishing = createEventPublishing(serving, storage, azurite ? { defaultQueue: DEFAULT_EVENTS_QUEUE } : {});
    if (publishing.sinks.length > 0) {
      startEventLoop(publishing, config.events.intervalMs, (message, error) => {
        console.error(message, error);
      });
      console.log(`Events: published to ${publishing.sinks.map((sink) => sink.name).join(', ')} (README "Events").`);
      if (azurite && storageConfig.target.kind === 'connection-string' && !config.events.queue) {
        console.log(`Events queue: ${DEFAULT_EVENTS_QUEUE} in ${storageConfig.target.connectionString}`);
      }
    }
    console.log(
      config.auth.mode === 'none'
        ? 'Authentication: none (loopback only). Set DICOMWEB_AUTH_MODE=local to require tokens from `npm run token`.'
        : `Authentication: ${config.auth.mode} bearer tokens required.`,
    );
    let stopping = false;
    const shutdown = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      console.log(`${signal}: stopping.`);
      server.close();
      server.closeAllConnections();
      void stopAzurite().then(() => process.exit(0));
    };
    process.on('SIGINT', () => {
      shutdown('SIGINT');
    });
    process.on('SIGTERM', () => {
      shutdown('SIGTERM');
    });
  } catch (error) {
    await stopAzurite();
    throw error;
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
