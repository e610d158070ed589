/**
 * What publishing events costs a STOW (issue #17: at most 10 % more latency at 4 clients): the
 * same server with its event publisher running (BENCH_EVENTS=on: the local host's publisher,
 * every DICOMWEB_EVENTS_INTERVAL_MS) and without it, once per sink: the Azurite queue (`npm
 * start`'s default, a CloudEvents batch per queue message) and a webhook in this process (one POST per
 * batch of up to 100 events, as the Event Grid sink sends them). After each run with it, the time
 * until the sink holds every event of the run: how far events trail the stores.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { QueueServiceClient } from '@azure/storage-queue';
import { suffix, type BenchContext } from './context.js';
import { median, percentile } from './measure.js';
import type { SectionResult, TargetCheck } from './report.js';
import { COST_INSTANCES, stowCostSection } from './stow-cost.js';

/** How often the publisher looks for changes: the local host's default. */
const INTERVAL_MS = 1000;
const DRAIN_TIMEOUT_MS = 120_000;

/** Where the events go, and how many it holds so far. */
interface BenchSink {
  readonly env: Record<string, string>;
  readonly title: string;
  received(): Promise<number>;
  close(): Promise<void>;
}

function queueSink(context: BenchContext): BenchSink {
  const name = `bench-events-${suffix()}`;
  const queue = QueueServiceClient.fromConnectionString(context.target.connectionString).getQueueClient(name);
  let count = 0;
  return {
    env: { DICOMWEB_EVENTS_QUEUE: name },
    title: 'the Azurite queue, a CloudEvents batch per message',
    // Each message is a batch: the events are counted as their messages are taken off the queue.
    received: async () => {
      if (!(await queue.exists())) return count;
      const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
      for (const message of receivedMessageItems) {
        count += (JSON.parse(message.messageText) as unknown[]).length;
        await queue.deleteMessage(message.messageId, message.popReceipt);
      }
      return count;
    },
    close: async () => {
      await queue.deleteIfExists();
    },
  };
}

async function webhookSink(): Promise<BenchSink> {
  let count = 0;
  const server = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      count += (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown[]).length;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    env: { DICOMWEB_EVENTS_WEBHOOK_URL: `http://127.0.0.1:${port}/events` },
    title: 'a webhook, one CloudEvents batch POST per 100 events (as to Event Grid)',
    received: () => Promise.resolve(count),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

async function costWith(context: BenchContext, id: string, sink: BenchSink): Promise<SectionResult> {
  let expected = 0;
  const drainMs: number[] = [];
  try {
    const section = await stowCostSection(context, {
      id,
      storageLabel: `eventcost${id}`,
      feature: `the event publisher (${sink.title})`,
      env: (mode): Record<string, string> =>
        mode === 'with'
          ? { BENCH_EVENTS: 'on', DICOMWEB_EVENTS_INTERVAL_MS: String(INTERVAL_MS), ...sink.env }
          : { DICOMWEB_EVENTS: 'off' },
      switchNote: `BENCH_EVENTS=on runs the event publisher in the server process (every ${INTERVAL_MS} ms, to ${sink.title})`,
      maxAddedShare: 0.1,
      afterRun: async (mode) => {
        if (mode !== 'with') return;
        // The run's instances and the warm-up instance: one Created event each.
        expected += COST_INSTANCES + 1;
        const start = performance.now();
        for (let count = await sink.received(); count < expected; count = await sink.received()) {
          if (performance.now() - start > DRAIN_TIMEOUT_MS) {
            throw new Error(`${id}: ${count} of ${expected} events arrived within ${DRAIN_TIMEOUT_MS} ms.`);
          }
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        drainMs.push(performance.now() - start);
      },
      note: `${id}: the event publisher to ${sink.title}. Cost per instance = (median request latency with − without) ÷ instances per request: the publisher follows the change feed beside the requests (it adds no step to a request), so what it costs them is the CPU and storage it shares with them. Drain = from the last STOW answer of a run until the sink holds every event of the run (publisher every ${INTERVAL_MS} ms; sink polled every 50 ms).`,
    });
    const check: TargetCheck = {
      name: `${id}: events trail the last store of a run by (drain)`,
      value: `median ${(median(drainMs) / 1000).toFixed(2)} s, p95 ${(percentile(drainMs, 95) / 1000).toFixed(2)} s over ${drainMs.length} runs of ${COST_INSTANCES} instances`,
      target: 'reported (no target)',
      met: undefined,
    };
    context.progress(`${id} drain: ${check.value}`);
    return { ...section, checks: [...section.checks, check] };
  } finally {
    await sink.close();
  }
}

export async function eventsCostSection(context: BenchContext): Promise<SectionResult> {
  const queue = await costWith(context, 'eq', queueSink(context));
  const webhook = await costWith(context, 'ew', await webhookSink());
  return {
    workloads: [],
    timings: [...queue.timings, ...webhook.timings],
    qido: [],
    checks: [...queue.checks, ...webhook.checks],
    notes: [...queue.notes, ...webhook.notes],
  };
}
