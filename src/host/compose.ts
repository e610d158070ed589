/**
 * The one composition every host calls (functions/index.ts, `npm start`, the bench's server):
 * configuration → storage → security → createApp.
 */
import { createApp, type App } from '../app.js';
import type { ServerConfig, StorageConfig } from '../config.js';
import { decodeFrame } from '../dicom/codecs/decode-frame.js';
import { securityOptions } from '../security/security-options.js';
import { openAzureStorage } from '../storage/azure-storage.js';
import type { Storage } from '../storage/ports.js';

export interface Service {
  readonly app: App;
  /** The storage the app serves, for the orphan sweep. */
  readonly storage: Storage;
}

/** Only the bench sets these, to price one step against the same server without it. */
export interface ComposeOptions {
  /** The storage the app sees, made from the opened one (BENCH_CHANGE_FEED=off). */
  readonly wrapStorage?: ((storage: Storage) => Storage) | undefined;
  /** Settings over the configuration's app settings (BENCH_VALIDATOR=off). */
  readonly appConfig?: Partial<ServerConfig['app']> | undefined;
}

/** Opens the storage the configuration names and builds the app over it with its security options. */
export async function composeService(
  config: ServerConfig & { readonly storage: StorageConfig },
  options: ComposeOptions = {},
): Promise<Service> {
  const opened = await openAzureStorage(config.storage);
  const storage = options.wrapStorage ? options.wrapStorage(opened) : opened;
  const app = createApp({
    storage,
    config: { ...config.app, ...options.appConfig },
    security: await securityOptions(config),
    // Compressed frames are decoded for rendering by the codecs WADO transcodes with.
    decodeFrame,
  });
  return { app, storage };
}
