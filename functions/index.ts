/**
 * Azure Functions registrations only: one HTTP trigger per route template of the shared table
 * (src/host/azure-functions-routes.ts says why), plus a fallback; timers; the operations queue trigger. The logic lives in src/; this
 * file and src/host/node-host.ts are the two thin hosts.
 */
// @azure/functions is CommonJS: Node's ESM loader exposes `app` on the default export only.
import azureFunctions, { type HttpRequest, type InvocationContext } from '@azure/functions';
import { readFunctionAppConfig } from '../src/config.js';
import { azureHttpFunctions } from '../src/host/azure-functions-routes.js';
import { handleAzureRequest } from '../src/host/azure-host.js';
import { composeService, type Service } from '../src/host/compose.js';
import { createEventPublishing, type EventPublishing } from '../src/host/events.js';
import { routes } from '../src/http/routes.js';
import { sweepOrphans } from '../src/dicomweb/sweep-orphans.js';
import { sweepUploadSessions } from '../src/dicomweb/upload-session.js';
import { sweepExpiredStudies } from '../src/dicomweb/expire-studies.js';
import { runBulkUpdates } from '../src/dicomweb/bulk-update.js';
import { OPERATION_RUN_BUDGET_MS, operationWorkerName, runQueuedOperation } from '../src/host/operations.js';

const { app } = azureFunctions;

/**
 * Read and checked when the entry point loads: without storage or Entra settings it throws, no
 * function is registered, and (FUNCTIONS_NODE_BLOCK_ON_ENTRY_POINT_ERROR, set in the Bicep) the
 * app does not start. No request is ever served without token checks.
 */
const config = readFunctionAppConfig();

app.setup({ enableHttpStream: true });

let instance: Promise<Service> | undefined;

/** Storage is opened once per worker, on first use, so cold starts do no needless I/O. */
function service(): Promise<Service> {
  instance ??= composeService(config).catch((error: unknown) => {
    instance = undefined;
    throw error;
  });
  return instance;
}

for (const registration of azureHttpFunctions(routes)) {
  app.http(registration.name, {
    methods: [...registration.methods],
    route: registration.route,
    authLevel: 'anonymous',
    handler: async (request: HttpRequest) => handleAzureRequest((await service()).app, request),
  });
}

/** Clears what crashed stores and abandoned upload sessions left behind (docs/storage.md, "Orphans"). */
app.timer('sweep-orphans', {
  schedule: '0 */15 * * * *',
  handler: async (_timer: unknown, context: InvocationContext) => {
    const { storage } = await service();
    const result = await sweepOrphans(storage);
    context.log(`sweep-orphans: ${result.deletedBlobs} orphan blobs deleted, ${result.clearedNotes} notes cleared`);
    // Expired upload sessions are abandoned uploads too (docs/conformance.md, "Upload sessions").
    const sessions = await sweepUploadSessions(storage);
    context.log(`sweep-orphans: ${sessions} expired upload sessions removed`);
  },
});

/** Deletes the studies whose expiry has passed (msdicom-expiry headers; docs/storage.md "Study expiry"). */
app.timer('expire-studies', {
  schedule: '0 */5 * * * *',
  handler: async (_timer: unknown, context: InvocationContext) => {
    const result = await sweepExpiredStudies((await service()).storage);
    context.log(`expire-studies: ${result.deletedStudies} studies deleted, ${result.clearedRows} expiry rows handled`);
  },
});

const operationWorker = operationWorkerName();

/**
 * The storage connection of the operations trigger: the host's own (AzureWebJobsStorage), which
 * the Bicep points at the data account with the managed identity (its __queueServiceUri,
 * __credential and __clientId settings). The app sends to the same queue (DICOMWEB_QUEUE_ENDPOINT).
 */
const OPERATIONS_QUEUE_CONNECTION = 'AzureWebJobsStorage';

/**
 * Runs each bulk update as soon as $bulkUpdate has queued its id (docs/storage.md "Operations"),
 * under host.json's `extensions.queues` rules: a throw (storage down) is retried after
 * visibilityTimeout, and after maxDequeueCount tries the message goes to `{queue}-poison` and the
 * operation to the timer below. A message naming no operation is logged and dropped. A long
 * operation pauses after OPERATION_RUN_BUDGET_MS and queues itself again, so no invocation meets
 * host.json's functionTimeout.
 */
app.storageQueue('run-operation', {
  queueName: config.operations.queue,
  connection: OPERATIONS_QUEUE_CONNECTION,
  handler: async (entry: unknown, context: InvocationContext) => {
    const { storage } = await service();
    const run = await runQueuedOperation(storage, entry, {
      owner: operationWorker,
      stopAt: Date.now() + OPERATION_RUN_BUDGET_MS,
      log: (message, error) => {
        context.error(message, error);
      },
    });
    context.log(`run-operation: ${run}`);
  },
});

/**
 * The safety net of the queue trigger: every 5 minutes, a round over the unfinished operations
 * starts the few no message started (the enqueue failed, or the message was poisoned) and resumes
 * those whose worker died (their 60 s lease lapsed). The queue starts every operation within
 * seconds, so a rarer round only delays those exceptions, and saves the table query that each
 * round costs 30 times over.
 */
app.timer('run-operations', {
  schedule: '0 */5 * * * *',
  handler: async (_timer: unknown, context: InvocationContext) => {
    const { storage } = await service();
    const finished = await runBulkUpdates(storage, {
      owner: operationWorker,
      stopAt: Date.now() + OPERATION_RUN_BUDGET_MS,
      log: (message, error) => {
        context.error(message, error);
      },
    });
    if (finished > 0) context.log(`run-operations: ${finished} bulk updates finished`);
  },
});

let publishing: EventPublishing | undefined;

/**
 * Publishes change events (docs/conformance.md "Events") when a sink is configured (the Bicep
 * sets the Event Grid topic). Every 5 seconds, so an event follows its change within seconds; the
 * host runs a timer function on one instance at a time, and the checkpoint's lease keeps it so
 * even when it does not.
 */
if (config.events.enabled && (config.events.eventGridEndpoint || config.events.webhookUrl || config.events.queue)) {
  app.timer('publish-events', {
    schedule: '*/5 * * * * *',
    handler: async (_timer: unknown, context: InvocationContext) => {
      const { storage } = await service();
      publishing ??= createEventPublishing(config, storage);
      for (const [i, result] of (await publishing.publish()).entries()) {
        const sink = publishing.sinks[i]?.name ?? '?';
        if (result.outcome === 'failed')
          context.error(`publish-events ${sink}: failed, retried next run`, result.error);
        else if (result.published > 0)
          context.log(`publish-events ${sink}: ${result.published} events, up to ${result.sequence}`);
      }
    },
  });
}
