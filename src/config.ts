import { readEventsConfig, type EventsConfig } from './events/events-config.js';
import type { AppConfig, DuplicatePolicy } from './http/context.js';
import { readAuthConfig, type AuthConfig } from './security/auth-config.js';
import type { StorageConfig, StorageTarget } from './storage/azure-storage.js';

/** Azurite's well-known development account (public, documented by Microsoft; not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** With `queuePort`, the connection string names Azurite's queue service too (the events' queue). */
export function azuriteConnectionString(
  blobPort: number,
  tablePort: number,
  host = '127.0.0.1',
  queuePort?: number,
): string {
  return [
    'DefaultEndpointsProtocol=http',
    `AccountName=${AZURITE_ACCOUNT}`,
    `AccountKey=${AZURITE_KEY}`,
    `BlobEndpoint=http://${host}:${blobPort}/${AZURITE_ACCOUNT}`,
    `TableEndpoint=http://${host}:${tablePort}/${AZURITE_ACCOUNT}`,
    ...(queuePort === undefined ? [] : [`QueueEndpoint=http://${host}:${queuePort}/${AZURITE_ACCOUNT}`]),
  ].join(';');
}

// The storage adapter owns what it is opened with; re-exported for the hosts that read both.
export type { StorageConfig, StorageTarget } from './storage/azure-storage.js';

export interface ServerConfig {
  readonly app: AppConfig;
  /** Undefined when nothing names a storage account: the local starter then runs Azurite. */
  readonly storage: StorageConfig | undefined;
  readonly container: string;
  readonly table: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /**
   * DICOMWEB_AZURITE_MEMORY=true: the local starter runs Azurite in memory. Nothing survives a
   * restart, but Azurite no longer saves its whole database every 5 s, which it cannot do past
   * about 80,000 instances (docs/development.md "Azurite at scale").
   */
  readonly azuriteInMemory: boolean;
  readonly auth: AuthConfig;
  /** DICOMWEB_CORS_ORIGINS: comma-separated origins allowed to call from a browser, or *. */
  readonly corsOrigins: readonly string[];
  /** DICOMWEB_MAX_REQUEST_BYTES: largest request body; 413 beyond. */
  readonly maxRequestBytes: number;
  /** Where change events are published (src/events/events-config.ts). */
  readonly events: EventsConfig;
  /** How bulk update operations reach a worker (docs/storage.md "Operations"). */
  readonly operations: OperationsConfig;
}

export interface OperationsConfig {
  /** DICOMWEB_OPERATIONS_QUEUE: the storage queue that starts each operation. */
  readonly queue: string;
  /**
   * DICOMWEB_OPERATIONS_INTERVAL_MS: how often the local host looks for operations no queue
   * message started or whose worker died (the Function App's timer runs every 5 minutes).
   */
  readonly intervalMs: number;
}

/** The operations queue's default name. */
export const DEFAULT_OPERATIONS_QUEUE = 'dicomweb-operations';

/**
 * A queue name Azure accepts (3 to 63 lowercase letters, digits and single hyphens, no hyphen at
 * either end) whose poison queue, `{name}-poison`, is one too: at most 56 characters.
 */
export const OPERATIONS_QUEUE_NAME = /^(?=.{3,56}$)[a-z0-9](?!.*--)[a-z0-9-]*[a-z0-9]$/;

type Env = Readonly<Record<string, string | undefined>>;

function positiveInt(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, not "${raw}".`);
  return value;
}

function name(env: Env, key: string, fallback: string, pattern: RegExp): string {
  const value = env[key] || fallback;
  if (!pattern.test(value)) throw new Error(`${key} "${value}" is not a valid name (${pattern.source}).`);
  return value;
}

function emptySearchStatus(raw: string | undefined): 200 | 204 {
  if (raw === undefined || raw === '' || raw === '200') return 200;
  if (raw === '204') return 204;
  throw new Error(`DICOMWEB_QIDO_EMPTY_STATUS must be 200 or 204, not "${raw}".`);
}

/** A session's SAS is signed by a user delegation key, which Azure lets live at most 7 days. */
const MAX_UPLOAD_SESSION_MINUTES = 7 * 24 * 60 - 10;

/** Unset: the app's default (http/context.ts DEFAULT_UPLOAD_SESSION_MINUTES). */
function uploadSessionMinutes(env: Env): number | undefined {
  if (!env['DICOMWEB_UPLOAD_SESSION_MINUTES']) return undefined;
  const minutes = positiveInt(env, 'DICOMWEB_UPLOAD_SESSION_MINUTES', 0);
  if (minutes > MAX_UPLOAD_SESSION_MINUTES) {
    throw new Error(`DICOMWEB_UPLOAD_SESSION_MINUTES must be at most ${MAX_UPLOAD_SESSION_MINUTES} (7 days).`);
  }
  return minutes;
}

function duplicatePolicy(raw: string | undefined): DuplicatePolicy {
  if (raw === undefined || raw === '' || raw === 'reject') return 'reject';
  if (raw === 'accept-identical') return raw;
  throw new Error(`DICOMWEB_DUPLICATE_POLICY must be reject or accept-identical, not "${raw}".`);
}

/** Reads the environment once; every setting is listed in the README. */
export function readConfig(env: Env = process.env): ServerConfig {
  const container = name(env, 'DICOMWEB_BLOB_CONTAINER', 'dicomweb', /^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/);
  const table = name(env, 'DICOMWEB_TABLE', 'dicomindex', /^[A-Za-z][A-Za-z0-9]{2,62}$/);
  const connectionString = env['DICOMWEB_STORAGE_CONNECTION_STRING'] || env['AZURE_STORAGE_CONNECTION_STRING'];
  const blobEndpoint = env['DICOMWEB_BLOB_ENDPOINT'];
  const tableEndpoint = env['DICOMWEB_TABLE_ENDPOINT'];
  let target: StorageTarget | undefined;
  if (connectionString) target = { kind: 'connection-string', connectionString };
  else if (blobEndpoint && tableEndpoint) {
    target = {
      kind: 'identity',
      blobEndpoint,
      tableEndpoint,
      queueEndpoint: env['DICOMWEB_QUEUE_ENDPOINT'] || undefined,
    };
  } else if (blobEndpoint || tableEndpoint) {
    throw new Error('Set both DICOMWEB_BLOB_ENDPOINT and DICOMWEB_TABLE_ENDPOINT, or neither.');
  }
  const events = readEventsConfig(env);
  if (events.queue && target?.kind === 'identity' && !events.queueEndpoint) {
    throw new Error(
      'Set DICOMWEB_QUEUE_ENDPOINT for DICOMWEB_EVENTS_QUEUE with the storage endpoints (managed identity).',
    );
  }
  const publicBaseUrl = env['DICOMWEB_PUBLIC_BASE_URL'] || undefined;
  if (publicBaseUrl !== undefined && !/^https?:\/\/[^/]+/.test(publicBaseUrl)) {
    throw new Error(`DICOMWEB_PUBLIC_BASE_URL "${publicBaseUrl}" must be an absolute http(s) URL.`);
  }
  const operations: OperationsConfig = {
    queue: name(env, 'DICOMWEB_OPERATIONS_QUEUE', DEFAULT_OPERATIONS_QUEUE, OPERATIONS_QUEUE_NAME),
    intervalMs: positiveInt(env, 'DICOMWEB_OPERATIONS_INTERVAL_MS', 60_000),
  };
  return {
    app: {
      publicBaseUrl,
      maxHeaderBytes: positiveInt(env, 'DICOMWEB_MAX_HEADER_BYTES', 8 * 1024 * 1024),
      emptySearchStatus: emptySearchStatus(env['DICOMWEB_QIDO_EMPTY_STATUS']),
      uploadSessionMinutes: uploadSessionMinutes(env),
      duplicatePolicy: duplicatePolicy(env['DICOMWEB_DUPLICATE_POLICY']),
    },
    storage: target ? { target, container, table, operationsQueue: operations.queue } : undefined,
    container,
    table,
    host: env['HOST'] || '127.0.0.1',
    port: env['PORT'] === '0' ? 0 : positiveInt(env, 'PORT', 7071),
    dataDir: env['DICOMWEB_DATA_DIR'] || '.data',
    azuriteInMemory: env['DICOMWEB_AZURITE_MEMORY'] === 'true',
    auth: readAuthConfig(env, env['DICOMWEB_DATA_DIR'] || '.data'),
    corsOrigins: (env['DICOMWEB_CORS_ORIGINS'] ?? '')
      .split(',')
      .map((origin) => origin.trim())
      .filter((origin) => origin !== ''),
    maxRequestBytes: positiveInt(env, 'DICOMWEB_MAX_REQUEST_BYTES', 4 * 1024 * 1024 * 1024),
    events,
    operations,
  };
}

/**
 * The configuration of the Function App, which fails closed: it needs storage endpoints and
 * Entra ID token checks (a deployed archive never serves patient data without tokens, and there
 * is no switch to allow that).
 */
export function readFunctionAppConfig(env: Env = process.env): ServerConfig & { readonly storage: StorageConfig } {
  const config = readConfig(env);
  if (!config.storage) {
    throw new Error(
      'Set DICOMWEB_BLOB_ENDPOINT and DICOMWEB_TABLE_ENDPOINT (or a connection string) for the Function App.',
    );
  }
  if (config.auth.mode !== 'entra') {
    throw new Error('Set DICOMWEB_AUTH_TENANT_ID and DICOMWEB_AUTH_AUDIENCE (Entra ID) for the Function App.');
  }
  return { ...config, storage: config.storage };
}
