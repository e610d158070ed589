import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';

/**
 * POSTs the first bytes of a body, then goes away as a client that lost its connection would:
 * the socket is destroyed `lingerMs` after the bytes were written. Resolves once it is gone.
 */
export function abandonedPost(
  url: string,
  headers: OutgoingHttpHeaders,
  sent: Uint8Array,
  lingerMs: number,
): Promise<void> {
  const target = new URL(url);
  return new Promise<void>((resolve) => {
    const req = httpRequest({
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method: 'POST',
      headers,
    });
    req.on('error', () => {
      resolve();
    });
    req.write(sent, () => {
      setTimeout(() => {
        req.destroy();
        resolve();
      }, lingerMs);
    });
  });
}
