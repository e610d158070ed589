/**
 * A bulk update worker in a process of its own, for tests that kill it: works off the operations
 * of the storage named in the environment every 100 ms, with the lease TEST_LEASE_MS.
 */
import { readConfig } from '../../src/config.js';
import { runBulkUpdates } from '../../src/dicomweb/bulk-update.js';
import { openAzureStorage } from '../../src/storage/azure-storage.js';

const config = readConfig();
if (!config.storage) throw new Error('bulk-update-process needs a connection string');
const storage = await openAzureStorage(config.storage);
for (;;) {
  await runBulkUpdates(storage, { owner: `child-${process.pid}`, leaseMs: Number(process.env['TEST_LEASE_MS']) });
  await new Promise((resolve) => setTimeout(resolve, 100));
}
