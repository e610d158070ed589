/**
 * A separate server process for multi-writer tests: the node host over the storage named in the
 * environment (DICOMWEB_STORAGE_CONNECTION_STRING, DICOMWEB_BLOB_CONTAINER, DICOMWEB_TABLE),
 * on a free loopback port that it prints as one JSON line.
 */
import { createApp } from '../../src/app.js';
import { readConfig } from '../../src/config.js';
import { createNodeServer, listen } from '../../src/host/node-host.js';
import { openAzureStorage } from '../../src/storage/azure-storage.js';

const config = readConfig({ ...process.env, PORT: '0' });
if (!config.storage) throw new Error('host-process needs a storage connection string');
const storage = await openAzureStorage(config.storage);
const server = createNodeServer(createApp({ storage, config: config.app, log: () => undefined }));
const address = await listen(server, 0, '127.0.0.1');
console.log(JSON.stringify({ port: address.port }));
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
