import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { App } from '../app.js';
import { UNREPRESENTABLE_METHODS } from '../http/router.js';

/**
 * The local host: node:http ↔ web-standard Request/Response. Bodies stream both ways: the request
 * body is handed over as a ReadableStream, and the response body is piped so backpressure holds.
 */
export function createNodeServer(app: App): Server {
  const server = createServer((req, res) => {
    void serve(app, req, res);
  });
  // Node hands CONNECT to this event and resets the connection when nobody listens: answer it.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    const body = 'This server is not a proxy: CONNECT is not supported.';
    socket.end(
      `HTTP/1.1 501 Not Implemented\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  return server;
}

async function serve(app: App, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const abort = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const url = requestUrl(req);
  const method = (req.method ?? 'GET').toUpperCase();
  if (!url || UNREPRESENTABLE_METHODS.has(method)) {
    const response = url
      ? app.refuse(method, url)
      : new Response('The request target must be a path such as /v2/studies.', { status: 400 });
    await send(response, req, res);
    return;
  }
  await send(
    Promise.resolve().then(() => app.handle(toRequest(req, url, abort.signal))),
    req,
    res,
  );
}

async function send(pending: Response | Promise<Response>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const response = await pending;
    res.statusCode = response.status;
    response.headers.forEach((value, name) => res.setHeader(name, value));
    if (response.body) await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), res);
    else res.end();
  } catch (error) {
    // Only reached when the client went away mid-response (nothing to log), when a response body
    // failed mid-stream (the app's streamOf logged it with the correlation id), or when the
    // handler broke the contract.
    if (!res.headersSent) {
      res.statusCode = 500;
      res.end('An internal error occurred.');
    } else res.destroy(error instanceof Error ? error : undefined);
  }
  // A response sent before the whole request body was read (an early error): stop reading it.
  if (!req.readableEnded) req.resume();
}

/**
 * The request URL as the client addressed us; undefined when the request target is neither a
 * path (origin-form) nor an absolute http(s) URL (absolute-form, RFC 9112 §3.2.2, whose
 * authority then replaces Host). Some DICOMweb clients send a Host header without the port; the
 * socket's own port fills it in, so links in responses still point back here.
 */
function requestUrl(req: IncomingMessage): URL | undefined {
  const target = req.url ?? '/';
  const local = req.socket.address() as Partial<AddressInfo>;
  const port = local.port;
  let host = req.headers.host ?? `${local.address ?? '127.0.0.1'}:${port ?? ''}`;
  if (!/:\d+$/.test(host) && !host.endsWith(']') && port !== undefined && port !== 80) host = `${host}:${port}`;
  try {
    if (/^https?:\/\//i.test(target)) return new URL(target);
    if (target.startsWith('/')) return new URL(`http://${host}${target}`);
  } catch {
    // an unparseable host or target: a 400 below
  }
  return undefined;
}

function toRequest(req: IncomingMessage, url: URL, signal: AbortSignal): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
  }
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD';
  return new Request(url, {
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
