/** The event settings (README "Events"), read by src/config.ts. */
export interface EventsConfig {
  /** DICOMWEB_EVENTS=off publishes nothing, whatever else is set. */
  readonly enabled: boolean;
  /** DICOMWEB_EVENTS_QUEUE: a storage queue of the data account that receives each event as a message. */
  readonly queue: string | undefined;
  /** DICOMWEB_QUEUE_ENDPOINT: the queue service URL, for the queue sink with the managed identity. */
  readonly queueEndpoint: string | undefined;
  /** DICOMWEB_EVENTS_WEBHOOK_URL: a URL that receives each batch as a CloudEvents JSON batch POST. */
  readonly webhookUrl: string | undefined;
  /** DICOMWEB_EVENTS_EVENTGRID_ENDPOINT: an Event Grid topic endpoint, published to with the identity. */
  readonly eventGridEndpoint: string | undefined;
  /** DICOMWEB_EVENTS_INTERVAL_MS: how often the local host looks for changes to publish. */
  readonly intervalMs: number;
  /** DICOMWEB_EVENTS_SOURCE: the events' CloudEvents source. */
  readonly source: string | undefined;
  /** DICOMWEB_EVENTS_SERVICE_HOST: the events' serviceHostName. */
  readonly serviceHostName: string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

/** The queue the local starter publishes to when it runs Azurite and nothing else is set. */
export const DEFAULT_EVENTS_QUEUE = 'dicomweb-events';

function url(env: Env, key: string, pattern = /^https?:\/\/[^/]+/): string | undefined {
  const value = env[key] || undefined;
  if (value !== undefined && !pattern.test(value))
    throw new Error(`${key} "${value}" must be an absolute http(s) URL.`);
  return value;
}

export function readEventsConfig(env: Env): EventsConfig {
  const enabled = env['DICOMWEB_EVENTS'] || 'on';
  if (enabled !== 'on' && enabled !== 'off') {
    throw new Error(`DICOMWEB_EVENTS must be on or off, not "${enabled}".`);
  }
  const queue = env['DICOMWEB_EVENTS_QUEUE'] || undefined;
  if (queue !== undefined && !/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(queue)) {
    throw new Error(
      `DICOMWEB_EVENTS_QUEUE "${queue}" is not a valid queue name (3 to 63 lowercase letters, digits, hyphens).`,
    );
  }
  const rawInterval = env['DICOMWEB_EVENTS_INTERVAL_MS'];
  const intervalMs = rawInterval ? Number(rawInterval) : 1000;
  if (!Number.isInteger(intervalMs) || intervalMs <= 0) {
    throw new Error(`DICOMWEB_EVENTS_INTERVAL_MS must be a positive integer, not "${rawInterval}".`);
  }
  return {
    enabled: enabled === 'on',
    queue,
    queueEndpoint: url(env, 'DICOMWEB_QUEUE_ENDPOINT'),
    webhookUrl: url(env, 'DICOMWEB_EVENTS_WEBHOOK_URL'),
    // Event Grid takes only HTTPS.
    eventGridEndpoint: url(env, 'DICOMWEB_EVENTS_EVENTGRID_ENDPOINT', /^https:\/\/[^/]+/),
    intervalMs,
    source: env['DICOMWEB_EVENTS_SOURCE'] || undefined,
    serviceHostName: env['DICOMWEB_EVENTS_SERVICE_HOST'] || undefined,
  };
}
