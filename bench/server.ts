/**
 * The DICOMweb server as the bench runs it: its own process (so its memory is its own), the
 * production node host and app over the storage named in the environment, plus one bench-only
 * path, /__bench/memory, answered before the app sees the request.
 *
 * Prints {"port", "pid", "baselineRssBytes"} as one JSON line on stdout once it listens; exits on
 * SIGTERM or when its stdin closes (the bench went away).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { readConfig } from '../src/config.js';
import { composeService } from '../src/host/compose.js';
import { createEventPublishing, startEventLoop } from '../src/host/events.js';
import { openEventCheckpoints } from '../src/storage/azure-storage.js';
import { createNodeServer, listen } from '../src/host/node-host.js';
import type { ChangeFeedStore, Storage } from '../src/storage/ports.js';
import { MEMORY_PATH, RESET_PEAK_PATH, type MemoryReport, type ServerReady } from './server-protocol.js';

/**
 * The peak RSS: Linux keeps it (VmHWM in /proc/self/status) and resets it on request (writing 5 to
 * /proc/self/clear_refs), exactly and at no cost to the server being measured; elsewhere it is
 * sampled every 50 ms (a sampler's timer and reads are CPU the server's figures would include).
 */
const kernelPeak = ((): { read(): number; reset(): void } | undefined => {
  try {
    const read = (): number => {
      const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
      if (!match) throw new Error('no VmHWM');
      return Number(match[1]) * 1024;
    };
    const reset = (): void => {
      writeFileSync('/proc/self/clear_refs', '5');
    };
    reset();
    read();
    return { read, reset };
  } catch {
    return undefined;
  }
})();
let peakRss = process.memoryUsage.rss();
const sample = (): number => {
  const rss = process.memoryUsage.rss();
  if (rss > peakRss) peakRss = rss;
  if (kernelPeak) peakRss = Math.max(rss, kernelPeak.read());
  return rss;
};
const resetPeak = (): void => {
  kernelPeak?.reset();
  peakRss = process.memoryUsage.rss();
};
if (!kernelPeak) setInterval(sample, 50).unref();

// BENCH_MEMORY_TRACE=1: one line of memory figures every 250 ms on stderr, to see where RSS goes.
if (process.env['BENCH_MEMORY_TRACE']) {
  const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(0);
  setInterval(() => {
    const usage = process.memoryUsage();
    process.stderr.write(
      `[memory] rss ${mib(usage.rss)} heap ${mib(usage.heapUsed)}/${mib(usage.heapTotal)} external ${mib(usage.external)} arrayBuffers ${mib(usage.arrayBuffers)}\n`,
    );
  }, 250).unref();
}

function memoryReport(baselineRssBytes: number): MemoryReport {
  const rssBytes = sample();
  const usage = process.memoryUsage();
  return {
    rssBytes,
    peakRssBytes: peakRss,
    baselineRssBytes,
    heapUsedBytes: usage.heapUsed,
    externalBytes: usage.external,
    arrayBuffersBytes: usage.arrayBuffers,
  };
}

function withoutChangeFeedWrites(storage: Storage): Storage {
  const changeFeed = Object.create(storage.changeFeed) as ChangeFeedStore;
  changeFeed.append = () => Promise.resolve([]);
  return { ...storage, changeFeed };
}

function sendJson(res: ServerResponse, value: unknown): void {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(value));
}

async function main(): Promise<void> {
  const config = readConfig();
  if (!config.storage) throw new Error('bench/server.ts needs DICOMWEB_STORAGE_CONNECTION_STRING.');
  // The app as `npm start` builds it (request size limit, CORS, audit lines; no authentication:
  // the bench sets DICOMWEB_AUTH_MODE=none), so the bench measures what is served.
  const { app, storage } = await composeService(
    { ...config, storage: config.storage },
    {
      // BENCH_CHANGE_FEED=off: the same server without the change feed write, to price that write.
      wrapStorage: process.env['BENCH_CHANGE_FEED'] === 'off' ? withoutChangeFeedWrites : undefined,
      // BENCH_VALIDATOR=off: the same server without the whole-stream structure check, to price it.
      appConfig: { validateStructure: process.env['BENCH_VALIDATOR'] !== 'off' },
    },
  );
  // BENCH_EVENTS=on: the event publisher runs in this process as `npm start` runs it (to the
  // queue DICOMWEB_EVENTS_QUEUE), from the feed's end, so it publishes this run's changes only.
  if (process.env['BENCH_EVENTS'] === 'on') {
    const publishing = createEventPublishing({ ...config, storage: config.storage }, storage);
    const checkpoints = openEventCheckpoints(config.storage);
    for (const sink of publishing.sinks) {
      const checkpoint = await checkpoints.read(sink.name);
      const sequence = (await storage.changeFeed.latest())?.sequence ?? 0;
      await checkpoints.write(sink.name, { sequence, owner: '', leaseUntil: 0 }, checkpoint.etag);
    }
    startEventLoop(publishing, config.events.intervalMs, (message, error) => {
      console.error(message, error);
    });
  }
  const server = createNodeServer(app);

  // Wrap the host's own listener, so the server object (and its timeouts) stays the production one.
  const appListeners = server.listeners('request') as RequestListener[];
  server.removeAllListeners('request');
  let baselineRssBytes = 0;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === MEMORY_PATH && req.method === 'GET') {
      sendJson(res, memoryReport(baselineRssBytes));
    } else if (req.url === RESET_PEAK_PATH && req.method === 'POST') {
      resetPeak();
      sendJson(res, memoryReport(baselineRssBytes));
    } else {
      for (const listener of appListeners) listener.call(server, req, res);
    }
  });

  const address = await listen(server, 0, '127.0.0.1');
  baselineRssBytes = sample();
  const ready: ServerReady = { port: address.port, pid: process.pid, baselineRssBytes };
  process.stdout.write(`${JSON.stringify(ready)}\n`);

  const stop = (): void => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.stdin.once('end', stop);
  process.stdin.resume();
}

main().catch((error: unknown) => {
  console.error('bench server:', error);
  process.exit(1);
});
