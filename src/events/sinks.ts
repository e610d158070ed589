import type { QueueClient } from '@azure/storage-queue';
import type { DicomCloudEvent } from './cloud-event.js';

/** Where events go. send() resolves only once the sink has accepted every event of the batch. */
export interface EventSink {
  /** Names the sink's checkpoint: each sink follows the change feed on its own. */
  readonly name: string;
  /** Events in change feed order; a sink must keep that order. */
  send(events: readonly DicomCloudEvent[], signal: AbortSignal): Promise<void>;
}

/** A sink refused or failed a batch; the publisher sends it again later. */
export class EventSinkError extends Error {
  override readonly name = 'EventSinkError';
}

/** The CloudEvents batch media type (CloudEvents JSON format, "JSON Batch Format"). */
export const CLOUD_EVENTS_BATCH = 'application/cloudevents-batch+json; charset=utf-8';

/**
 * POSTs each batch as one CloudEvents JSON batch: a webhook, or the Event Grid topic (which
 * takes the same request with an Entra ID bearer token). Any answer but 2xx fails the batch.
 */
export function httpSink(options: {
  readonly name: string;
  readonly url: string;
  /** A bearer token for each request (Event Grid); none for a plain webhook. */
  readonly token?: (() => Promise<string>) | undefined;
}): EventSink {
  return {
    name: options.name,
    async send(events, signal) {
      const headers: Record<string, string> = { 'content-type': CLOUD_EVENTS_BATCH };
      if (options.token) headers['authorization'] = `Bearer ${await options.token()}`;
      let response: Response;
      try {
        response = await fetch(options.url, { method: 'POST', headers, body: JSON.stringify(events), signal });
      } catch (error) {
        throw new EventSinkError(`The ${options.name} sink could not be reached.`, { cause: error });
      }
      const text = await response.text().catch(() => '');
      if (!response.ok) {
        throw new EventSinkError(`The ${options.name} sink answered ${response.status}: ${text.slice(0, 200)}`);
      }
    },
  };
}

/** Event Grid's publishing API version for custom topics (CloudEvents and Event Grid schemas). */
const EVENT_GRID_API_VERSION = '2018-01-01';

/** The scope of an Entra ID token that Event Grid accepts for publishing. */
export const EVENT_GRID_SCOPE = 'https://eventgrid.azure.net/.default';

/** The topic endpoint (https://<topic>.<region>-1.eventgrid.azure.net/api/events) with the API version. */
export function eventGridUrl(endpoint: string): string {
  const url = new URL(endpoint);
  if (!url.searchParams.has('api-version')) url.searchParams.set('api-version', EVENT_GRID_API_VERSION);
  return url.toString();
}

/**
 * The most UTF-8 bytes of one queue message's text: Azure's limit is 64 KiB, and the SDK escapes
 * the text for XML, which can lengthen it; half leaves room for that.
 */
export const QUEUE_MESSAGE_BYTES = 32 * 1024;

/** Events packed in order into CloudEvents JSON batches of at most `limit` bytes each. */
export function packBatches(events: readonly DicomCloudEvent[], limit = QUEUE_MESSAGE_BYTES): string[] {
  const messages: string[] = [];
  let current: string[] = [];
  let size = 2; // the brackets
  for (const event of events) {
    const text = JSON.stringify(event);
    const bytes = Buffer.byteLength(text) + 1; // and a comma
    if (current.length > 0 && size + bytes > limit) {
      messages.push(`[${current.join(',')}]`);
      current = [];
      size = 2;
    }
    current.push(text);
    size += bytes;
  }
  if (current.length > 0) messages.push(`[${current.join(',')}]`);
  return messages;
}

/**
 * Each message's text is a CloudEvents JSON batch (an array, in change feed order) of as many
 * events as fit in QUEUE_MESSAGE_BYTES (about 50), not Base64: one message per event would cost
 * the queue a write per instance stored (docs/conformance.md "Events"). Messages are sent one
 * after another, so the queue holds them in change feed order. The queue is created on first use.
 */
export function queueSink(queue: QueueClient): EventSink {
  let created: Promise<unknown> | undefined;
  return {
    name: 'queue',
    async send(events, signal) {
      try {
        created ??= queue.createIfNotExists({ abortSignal: signal }).catch((error: unknown) => {
          created = undefined;
          throw error;
        });
        await created;
        for (const message of packBatches(events)) await queue.sendMessage(message, { abortSignal: signal });
      } catch (error) {
        throw new EventSinkError(`The queue ${queue.name} did not take the events.`, { cause: error });
      }
    },
  };
}
