import type { CorsConfig } from '../http/cors.js';
import type { AuthConfig } from './auth-config.js';
import { authenticatorFor, type Authenticator } from './authenticator.js';
import { loadOrCreateLocalKeys } from './local-keys.js';

/** How the app is guarded (createApp's `security`): who may call, from which origins, how much. */
export interface SecurityOptions {
  /** Undefined: no authentication (local use on loopback only; see README). */
  readonly authenticator?: Authenticator | undefined;
  readonly cors?: CorsConfig | undefined;
  /** Largest request body accepted, in bytes (413 beyond). */
  readonly maxRequestBytes?: number | undefined;
}

/** The settings security is made of; src/config.ts's ServerConfig carries them. */
export interface SecuritySettings {
  readonly auth: AuthConfig;
  readonly corsOrigins: readonly string[];
  readonly maxRequestBytes: number;
  /** The address the node host listens on. */
  readonly host: string;
}

/** Builds the app's security options from the configuration (every host uses this). */
export async function securityOptions(config: Omit<SecuritySettings, 'host'>): Promise<SecurityOptions> {
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
export function assertSafeToServe(config: Pick<SecuritySettings, 'auth' | 'host'>): void {
  if (config.auth.mode === 'none' && !LOOPBACK.test(config.host)) {
    throw new Error(
      `Refusing to listen on ${config.host} without authentication: set DICOMWEB_AUTH_MODE=entra (with DICOMWEB_AUTH_TENANT_ID) or local, or listen on 127.0.0.1.`,
    );
  }
}
