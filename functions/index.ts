/**
 * Azure Functions registrations only: one HTTP trigger per route template of the shared table
 * (src/host/azure-functions-routes.ts says why), plus a fallback. The logic lives in src/; this
 * file and src/host/node-host.ts are the two thin hosts.
 */
// @azure/functions is CommonJS: Node's ESM loader exposes `app` on the default export only.
import azureFunctions, { type HttpRequest, type InvocationContext } from '@azure/functions';
import { createApp, type App } from '../src/app.js';
import { readConfig } from '../src/config.js';
import { azureHttpFunctions } from '../src/host/azure-functions-routes.js';
import { handleAzureRequest } from '../src/host/azure-host.js';
import { routes } from '../src/http/routes.js';
import { sweepOrphans } from '../src/dicomweb/sweep-orphans.js';
import { openAzureStorage } from '../src/storage/azure-storage.js';
import { securityOptions } from '../src/security/security-options.js';
import type { Storage } from '../src/storage/ports.js';

const { app } = azureFunctions;

app.setup({ enableHttpStream: true });

interface Service {
  readonly dicomweb: App;
  readonly storage: Storage;
}

let instance: Promise<Service> | undefined;

/** Storage is opened once per worker, on first use, so cold starts do no needless I/O. */
function service(): Promise<Service> {
  instance ??= (async () => {
    const config = readConfig();
    if (!config.storage) {
      throw new Error(
        'Set DICOMWEB_BLOB_ENDPOINT and DICOMWEB_TABLE_ENDPOINT (or a connection string) for the Function App.',
      );
    }
    if (config.auth.mode === 'none' && process.env['DICOMWEB_ALLOW_ANONYMOUS'] !== 'true') {
      // Fail closed: a deployed archive never serves patient data without tokens by accident.
      throw new Error('Set DICOMWEB_AUTH_TENANT_ID and DICOMWEB_AUTH_AUDIENCE (Entra ID) for the Function App.');
    }
    const storage = await openAzureStorage(config.storage);
    return { dicomweb: createApp({ storage, config: config.app, security: await securityOptions(config) }), storage };
  })().catch((error: unknown) => {
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
    handler: async (request: HttpRequest) => handleAzureRequest((await service()).dicomweb, request),
  });
}

/** Clears what crashed stores left behind (docs/storage.md, "Orphans"). */
app.timer('sweep-orphans', {
  schedule: '0 */15 * * * *',
  handler: async (_timer: unknown, context: InvocationContext) => {
    const result = await sweepOrphans((await service()).storage);
    context.log(`sweep-orphans: ${result.deletedBlobs} orphan blobs deleted, ${result.clearedNotes} notes cleared`);
  },
});
