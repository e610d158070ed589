import type { ChangeFeedStore, EventCheckpointStore, StoredEventCheckpoint } from '../storage/ports.js';
import { toCloudEvent, type DicomCloudEvent, type EventIdentity } from './cloud-event.js';
import type { EventSink } from './sinks.js';

export interface PublisherOptions {
  readonly changeFeed: ChangeFeedStore;
  readonly checkpoints: EventCheckpointStore;
  readonly sink: EventSink;
  readonly identity: EventIdentity;
  /** Who this publisher is (unique per process), for the lease. */
  readonly owner: string;
  /** How long a lease lasts without renewal; a sink call may take at most half of it. */
  readonly leaseMs?: number | undefined;
  /** Change feed entries read and sent at a time. */
  readonly batchSize?: number | undefined;
  /** A run stops taking new batches after this long (a timer invocation's budget). */
  readonly budgetMs?: number | undefined;
  readonly now?: (() => number) | undefined;
}

/**
 * What a run did: 'idle' nothing to publish; 'done' published all it found (or its budget ran
 * out); 'busy' another publisher holds the lease; 'lost' another publisher took the lease over
 * meanwhile (this one was too slow); 'failed' the sink failed a batch, which is sent again later.
 */
export interface PublishResult {
  readonly outcome: 'idle' | 'done' | 'busy' | 'lost' | 'failed';
  /** Events the sink accepted in this run (at least once: some may have been sent before). */
  readonly published: number;
  /** The checkpoint at the end of the run. */
  readonly sequence: number;
  readonly error?: unknown;
}

export const DEFAULT_LEASE_MS = 30_000;
const DEFAULT_BATCH = 100;
const DEFAULT_BUDGET_MS = 60_000;

/**
 * Publishes what the change feed holds beyond the sink's checkpoint (docs/conformance.md
 * "Events"). The feed's entries commit in sequence order without gaps, and only after the change
 * they log is durable, so following it from a checkpoint publishes each change after it is
 * durable, in feed order. The checkpoint moves only after the sink accepted a batch, so a crash
 * in between sends that batch again: at least once, with the same event ids. A publisher takes
 * the checkpoint's lease before sending (a conditional write), so of several publishers one
 * sends at a time; one that finds the lease held backs off, and a dead holder's lease lapses.
 */
export async function publishEvents(options: PublisherOptions): Promise<PublishResult> {
  const { changeFeed, checkpoints, sink, owner } = options;
  const now = options.now ?? Date.now;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const stopAt = now() + (options.budgetMs ?? DEFAULT_BUDGET_MS);

  const start: StoredEventCheckpoint = await checkpoints.read(sink.name);
  let sequence = start.sequence;
  // Reading the feed before taking the lease keeps an idle run to two reads and no write.
  let entries = await changeFeed.after(sequence, batchSize);
  if (entries.length === 0) return { outcome: 'idle', published: 0, sequence };
  if (start.owner !== '' && start.owner !== owner && start.leaseUntil > now()) {
    return { outcome: 'busy', published: 0, sequence };
  }
  let etag = await checkpoints.write(sink.name, { sequence, owner, leaseUntil: now() + leaseMs }, start.etag);
  if (etag === undefined) return { outcome: 'busy', published: 0, sequence };

  let published = 0;
  let failure: unknown;
  try {
    while (entries.length > 0) {
      const events = entries.map((entry) => toCloudEvent(entry, options.identity)).filter(isEvent);
      if (events.length > 0) await sink.send(events, AbortSignal.timeout(leaseMs / 2));
      const last = entries.at(-1)?.sequence ?? sequence;
      etag = await checkpoints.write(sink.name, { sequence: last, owner, leaseUntil: now() + leaseMs }, etag);
      if (etag === undefined) return { outcome: 'lost', published: published + events.length, sequence: last };
      sequence = last;
      published += events.length;
      if (now() >= stopAt) break;
      entries = await changeFeed.after(sequence, batchSize);
    }
  } catch (error) {
    failure = error;
  }
  // Hand the lease back, so the next run (of any publisher) need not wait for it to lapse. A
  // failure here only delays that run until it lapses.
  await checkpoints.write(sink.name, { sequence, owner: '', leaseUntil: 0 }, etag).catch(() => undefined);
  return failure === undefined
    ? { outcome: 'done', published, sequence }
    : { outcome: 'failed', published, sequence, error: failure };
}

function isEvent(event: DicomCloudEvent | undefined): event is DicomCloudEvent {
  return event !== undefined;
}
