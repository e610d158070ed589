/**
 * An event publisher in a process of its own, for tests that kill it: publishes the change feed
 * of the storage named in the environment to the webhook DICOMWEB_EVENTS_WEBHOOK_URL every 100 ms,
 * with the lease TEST_LEASE_MS.
 */
import { readConfig } from '../../src/config.js';
import { publishEvents } from '../../src/events/publisher.js';
import { httpSink } from '../../src/events/sinks.js';
import { openAzureStorage, openEventCheckpoints } from '../../src/storage/azure-storage.js';

const config = readConfig();
const url = config.events.webhookUrl;
if (!config.storage || !url) throw new Error('publisher-process needs a connection string and a webhook URL');
const storage = await openAzureStorage(config.storage);
const checkpoints = openEventCheckpoints(config.storage);
const sink = httpSink({ name: 'webhook', url });
const identity = { source: '/dicomweb/test', serviceHostName: 'dicom.test' };
for (;;) {
  await publishEvents({
    changeFeed: storage.changeFeed,
    checkpoints,
    sink,
    identity,
    owner: `child-${process.pid}`,
    leaseMs: Number(process.env['TEST_LEASE_MS']),
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
}
