/**
 * Azure Functions registrations only: one HTTP trigger per entry of the shared route table.
 * The logic lives in src/; this file and src/host/node-host.ts are the two thin hosts.
 */
import { app, type HttpRequest } from '@azure/functions';
import { createApp, type App } from '../src/app.js';
import { readConfig } from '../src/config.js';
import { handleAzureRequest } from '../src/host/azure-host.js';
import { routes } from '../src/http/routes.js';
import { openAzureStorage } from '../src/storage/azure-storage.js';

app.setup({ enableHttpStream: true });

let instance: Promise<App> | undefined;

/** Storage is opened once per worker, on the first request, so cold starts do no needless I/O. */
function dicomweb(): Promise<App> {
  instance ??= (async () => {
    const config = readConfig();
    if (!config.storage) {
      throw new Error(
        'Set DICOMWEB_BLOB_ENDPOINT and DICOMWEB_TABLE_ENDPOINT (or a connection string) for the Function App.',
      );
    }
    return createApp({ storage: await openAzureStorage(config.storage), config: config.app });
  })().catch((error: unknown) => {
    instance = undefined;
    throw error;
  });
  return instance;
}

for (const route of routes) {
  app.http(route.name, {
    methods: [...route.methods],
    route: route.template,
    authLevel: 'anonymous',
    handler: async (request: HttpRequest) => handleAzureRequest(await dicomweb(), request),
  });
}
