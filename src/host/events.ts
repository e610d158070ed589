/**
 * Event publishing as the hosts run it: the sinks the configuration names, each following the
 * change feed from its own checkpoint (src/events/publisher.ts). The Function App runs a round
 * on a timer (functions/index.ts); `npm start` runs rounds on an interval (startEventLoop).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { DefaultAzureCredential } from '@azure/identity';
import { QueueClient, QueueServiceClient } from '@azure/storage-queue';
import type { ServerConfig, StorageConfig } from '../config.js';
import type { EventIdentity } from '../events/cloud-event.js';
import { publishEvents, type PublishResult } from '../events/publisher.js';
import { EVENT_GRID_SCOPE, eventGridUrl, httpSink, queueSink, type EventSink } from '../events/sinks.js';
import { openEventCheckpoints } from '../storage/azure-storage.js';
import type { EventCheckpointStore, Storage } from '../storage/ports.js';
import { repeat } from '../util/repeat.js';

export interface EventPublishing {
  readonly sinks: readonly EventSink[];
  readonly identity: EventIdentity;
  /** One publishing run per sink, one after the other; a sink's failure does not stop the others. */
  publish(): Promise<PublishResult[]>;
}

type EventHostConfig = Pick<ServerConfig, 'events' | 'app' | 'host' | 'port'> & { readonly storage: StorageConfig };

/** The sinks the configuration names; `defaultQueue` when no sink is named (the local Azurite). */
export function eventSinks(config: EventHostConfig, defaultQueue?: string): EventSink[] {
  const { events, storage } = config;
  if (!events.enabled) return [];
  const sinks: EventSink[] = [];
  if (events.eventGridEndpoint) {
    const credential = new DefaultAzureCredential();
    sinks.push(
      httpSink({
        name: 'eventgrid',
        url: eventGridUrl(events.eventGridEndpoint),
        token: async () => {
          const token = await credential.getToken(EVENT_GRID_SCOPE);
          if (!token) throw new Error('No Entra ID token for Event Grid.');
          return token.token;
        },
      }),
    );
  }
  if (events.webhookUrl) sinks.push(httpSink({ name: 'webhook', url: events.webhookUrl }));
  const queue = events.queue ?? (sinks.length === 0 ? defaultQueue : undefined);
  if (queue) sinks.push(queueSink(queueClient(storage, events.queueEndpoint, queue)));
  return sinks;
}

function queueClient(storage: StorageConfig, endpoint: string | undefined, name: string): QueueClient {
  if (storage.target.kind === 'connection-string') {
    return QueueServiceClient.fromConnectionString(storage.target.connectionString).getQueueClient(name);
  }
  // readConfig has made sure the endpoint is set.
  return new QueueClient(`${(endpoint ?? '').replace(/\/+$/, '')}/${name}`, new DefaultAzureCredential());
}

/**
 * Who the events come from: the configured source and host name, else the public base URL's
 * host, else the Function App's host name (WEBSITE_HOSTNAME, set by App Service), else the
 * local listener.
 */
export function eventIdentity(config: EventHostConfig, env = process.env): EventIdentity {
  const serviceHostName =
    config.events.serviceHostName ??
    (config.app.publicBaseUrl ? new URL(config.app.publicBaseUrl).host : undefined) ??
    env['WEBSITE_HOSTNAME'] ??
    `${config.host}:${config.port}`;
  return { source: config.events.source ?? `/dicomweb/${serviceHostName}`, serviceHostName };
}

/** A unique name for this process's publishers, for their leases. */
function publisherName(): string {
  return `${hostname()}|${process.pid}|${randomBytes(4).toString('hex')}`;
}

export function createEventPublishing(
  config: EventHostConfig,
  storage: Storage,
  options: { defaultQueue?: string; checkpoints?: EventCheckpointStore } = {},
): EventPublishing {
  const sinks = eventSinks(config, options.defaultQueue);
  const identity = eventIdentity(config);
  const checkpoints = options.checkpoints ?? openEventCheckpoints(config.storage);
  const owner = publisherName();
  return {
    sinks,
    identity,
    async publish() {
      const results: PublishResult[] = [];
      for (const sink of sinks) {
        results.push(
          await publishEvents({ changeFeed: storage.changeFeed, checkpoints, sink, identity, owner }).catch(
            (error: unknown): PublishResult => ({ outcome: 'failed', published: 0, sequence: 0, error }),
          ),
        );
      }
      return results;
    },
  };
}

/** Longest pause between rounds after failures (the interval doubles per failed round up to it). */
const MAX_BACKOFF_MS = 60_000;

/**
 * Runs publishing rounds every `intervalMs` (never two at once) until stopped; after a failed
 * round the pause doubles, up to a minute, so a sink that is down is not hammered.
 */
export function startEventLoop(
  publishing: EventPublishing,
  intervalMs: number,
  log: (message: string, error?: unknown) => void,
): { stop(): Promise<void> } {
  let pause = intervalMs;
  const round = async (): Promise<void> => {
    const results = await publishing.publish();
    const failed = results.filter((result) => result.outcome === 'failed');
    for (const result of failed) log('Event publishing failed; it is retried.', result.error);
    pause = failed.length > 0 ? Math.min(MAX_BACKOFF_MS, pause * 2) : intervalMs;
  };
  return repeat(
    () =>
      round().catch((error: unknown) => {
        log('Event publishing failed; it is retried.', error);
      }),
    () => pause,
  );
}
