import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { App } from '../app.js';

/**
 * The local host: node:http ↔ web-standard Request/Response. Bodies stream both ways: the request
 * body is handed over as a ReadableStream, and the response body is piped so backpressure holds.
 */
export function createNodeServer(app: App): Server {
  return createServer((req, res) => {
    void serve(app, req, res);
  });
}

async function serve(app: App, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const abort = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  try {
    const response = await app.handle(toRequest(req, abort.signal));
    res.statusCode = response.status;
    response.headers.forEach((value, name) => res.setHeader(name, value));
    if (response.body) await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), res);
    else res.end();
  } catch (error) {
    // Only reached when the client went away mid-response, or the handler broke the contract.
    if (!res.headersSent) {
      res.statusCode = 500;
      res.end('An internal error occurred.');
    } else res.destroy(error instanceof Error ? error : undefined);
  }
  // A response sent before the whole request body was read (an early error): stop reading it.
  if (!req.readableEnded) req.resume();
}

/**
 * The request URL as the client addressed us. Some DICOMweb clients send a Host header without
 * the port; the socket's own port fills it in, so links in responses still point back here.
 */
function requestUrl(req: IncomingMessage): string {
  const local = req.socket.address() as Partial<AddressInfo>;
  const port = local.port;
  let host = req.headers.host ?? `${local.address ?? '127.0.0.1'}:${port ?? ''}`;
  if (!/:\d+$/.test(host) && !host.endsWith(']') && port !== undefined && port !== 80) host = `${host}:${port}`;
  return `http://${host}${req.url ?? '/'}`;
}

function toRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
  }
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  return new Request(requestUrl(req), {
    method,
    headers,
    body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : null,
    duplex: 'half',
    signal,
  } as RequestInit);
}

export function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
