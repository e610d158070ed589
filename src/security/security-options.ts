import type { SecurityOptions } from '../app.js';
import type { ServerConfig } from '../config.js';
import { authenticatorFor } from './authenticator.js';
import { loadOrCreateLocalKeys } from './local-keys.js';

/** Builds the app's security options from the configuration (both hosts use this). */
export async function securityOptions(config: ServerConfig): Promise<SecurityOptions> {
  const localKeys =
    config.auth.mode === 'local' ? (await loadOrCreateLocalKeys(config.auth.keyDir)).publicJwks : undefined;
  return {
    authenticator: authenticatorFor(config.auth, localKeys),
    cors: { origins: config.corsOrigins },
    maxRequestBytes: config.maxRequestBytes,
  };
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** Without authentication the server may only listen where nobody else can reach it. */
export function assertSafeToServe(config: ServerConfig): void {
  if (config.auth.mode === 'none' && !LOOPBACK.test(config.host)) {
    throw new Error(
      `Refusing to listen on ${config.host} without authentication: set DICOMWEB_AUTH_MODE=entra (with DICOMWEB_AUTH_TENANT_ID) or local, or listen on 127.0.0.1.`,
    );
  }
}
