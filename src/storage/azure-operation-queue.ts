import type { QueueClient } from '@azure/storage-queue';
import type { OperationQueue, ReceivedOperationMessage } from './ports.js';
import { guarded } from './storage-errors.js';

/** An operation id as the app writes it: 32 lower-case hex digits (a GUID in .NET's "N" format). */
const OPERATION_ID = /^[0-9a-f]{32}$/;

/**
 * The text of the message that starts an operation: a JSON object, Base64-encoded. Base64 is
 * the Functions queue extension's default messageEncoding (host.json), under which the host
 * decodes every message before the trigger sees it; a JSON object, because the Node worker
 * JSON-parses a message's text, and an id of digits only would become a (rounded) number.
 */
export function encodeOperationMessage(operationId: string): string {
  return Buffer.from(JSON.stringify({ operationId }), 'utf8').toString('base64');
}

/** The id in a message as the trigger hands it over (parsed JSON), or undefined for anything else. */
export function operationIdOf(entry: unknown): string | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const id = (entry as { operationId?: unknown }).operationId;
  return typeof id === 'string' && OPERATION_ID.test(id) ? id : undefined;
}

/** A message's Base64 text decoded and parsed as the Functions host and Node worker do. */
export function decodeOperationMessage(text: string): string | undefined {
  const decoded = Buffer.from(text, 'base64').toString('utf8');
  // .NET's Base64 decoder refuses what Node's skips over: the message would fail the trigger.
  if (Buffer.from(decoded, 'utf8').toString('base64') !== text) return undefined;
  try {
    return operationIdOf(JSON.parse(decoded));
  } catch {
    return undefined;
  }
}

/** The poison queue the Functions queue extension moves a message to after maxDequeueCount failures. */
export function poisonQueueName(name: string): string {
  return `${name}-poison`;
}

/**
 * The operations queue in Azure Storage (or Azurite). The queue, and its poison queue, are created
 * on first use (the Bicep creates both in Azure).
 */
export class AzureOperationQueue implements OperationQueue {
  private created: Promise<unknown> | undefined;
  private poisonCreated: Promise<unknown> | undefined;

  constructor(
    private readonly queue: QueueClient,
    private readonly poisonQueue: QueueClient,
  ) {}

  get name(): string {
    return this.queue.name;
  }

  private ensure(): Promise<unknown> {
    this.created ??= this.queue.createIfNotExists().catch((error: unknown) => {
      this.created = undefined;
      throw error;
    });
    return this.created;
  }

  async send(operationId: string): Promise<void> {
    await guarded('queueing an operation', async () => {
      await this.ensure();
      await this.queue.sendMessage(encodeOperationMessage(operationId));
    });
  }

  async receive(count: number, visibilityMs: number): Promise<ReceivedOperationMessage[]> {
    const response = await guarded('receiving operation messages', async () => {
      await this.ensure();
      return this.queue.receiveMessages({
        numberOfMessages: count,
        visibilityTimeout: Math.max(1, Math.ceil(visibilityMs / 1000)),
      });
    });
    return response.receivedMessageItems.map((item) => {
      let popReceipt = item.popReceipt;
      return {
        operationId: decodeOperationMessage(item.messageText),
        dequeueCount: item.dequeueCount,
        complete: () =>
          guarded('removing an operation message', async () => {
            await this.queue.deleteMessage(item.messageId, popReceipt);
          }),
        hide: (ms: number) =>
          guarded('hiding an operation message', async () => {
            const updated = await this.queue.updateMessage(
              item.messageId,
              popReceipt,
              undefined,
              Math.max(0, Math.ceil(ms / 1000)),
            );
            popReceipt = updated.popReceipt ?? popReceipt;
          }),
        poison: () =>
          guarded('moving an operation message to the poison queue', async () => {
            this.poisonCreated ??= this.poisonQueue.createIfNotExists().catch((error: unknown) => {
              this.poisonCreated = undefined;
              throw error;
            });
            await this.poisonCreated;
            await this.poisonQueue.sendMessage(item.messageText);
            await this.queue.deleteMessage(item.messageId, popReceipt);
          }),
      };
    });
  }
}
