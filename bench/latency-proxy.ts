/**
 * A TCP proxy, in a process of its own, that holds each chunk for the given milliseconds in each
 * direction, in order. BENCH_STORAGE_LATENCY_MS puts one between every storage client of the run
 * (the bench's raw uploads and the server child alike) and Azurite; BENCH_CLIENT_LATENCY_MS (bench
 * u, cli-upload.ts) one in front of whatever each client sends to. On this machine Azurite answers in
 * well under a millisecond and the ratios measure CPU on two shared cores; on Azure every storage
 * operation is a network round trip of several milliseconds. With the proxy, a path's storage
 * round trips in sequence cost what they would there, and both paths pay the same per trip.
 */
import { startScriptChild } from './script-child.js';

const SCRIPT = `
import { createServer, connect } from 'node:net';
const delay = Number(process.env.PROXY_DELAY_MS);
const targets = process.env.PROXY_TARGETS.split(',').map(Number);
// Each chunk is forwarded after the delay; timers of one duration fire in the order they were
// set, so each direction keeps its byte order. An end or error is forwarded after the same delay.
const forward = (from, to) => {
  from.on('data', (chunk) => setTimeout(() => to.destroyed || to.write(chunk), delay));
  from.on('end', () => setTimeout(() => to.end(), delay));
  from.on('error', () => setTimeout(() => to.destroy(), delay));
  from.on('close', () => setTimeout(() => to.destroy(), delay + 1));
};
const ports = await Promise.all(targets.map((target) => new Promise((resolve) => {
  const server = createServer((client) => {
    client.setNoDelay(true);
    const upstream = connect(target, '127.0.0.1');
    upstream.setNoDelay(true);
    forward(client, upstream);
    forward(upstream, client);
  });
  server.listen(0, '127.0.0.1', () => resolve(server.address().port));
})));
console.log(ports.join(','));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

export interface LatencyProxy {
  /** The proxy's port for each target port, in the same order. */
  readonly ports: readonly number[];
  stop(): Promise<void>;
}

export async function startLatencyProxy(delayMs: number, targets: readonly number[]): Promise<LatencyProxy> {
  const child = await startScriptChild('latency proxy', SCRIPT, {
    PROXY_DELAY_MS: String(delayMs),
    PROXY_TARGETS: targets.join(','),
  });
  return { ports: child.line.split(',').map(Number), stop: child.stop };
}
