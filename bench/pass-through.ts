/**
 * The hop ceiling of section `u`: a server process that does nothing but take each request body
 * and put it into Azurite as one blob (no multipart, no parsing, no index). What separates it
 * from the raw upload is the extra HTTP hop and process on this machine's shared cores, which any
 * server in front of storage pays; what separates our server from it is our work per instance.
 */
import { request, type Agent } from 'node:http';
import { startScriptChild } from './script-child.js';

const SCRIPT = `
import { createServer } from 'node:http';
import { BlobServiceClient } from '@azure/storage-blob';
const container = BlobServiceClient.fromConnectionString(process.env.PASS_CONNECTION).getContainerClient(process.env.PASS_CONTAINER);
await container.createIfNotExists();
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    container.getBlockBlobClient(req.url.slice(1)).upload(body, body.length, { blobHTTPHeaders: { blobContentType: 'application/dicom' } }).then(
      () => { res.statusCode = 201; res.end(); },
      (error) => { res.statusCode = 500; res.end(String(error)); },
    );
  });
});
server.listen(0, '127.0.0.1', () => console.log(String(server.address().port)));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

export interface PassThrough {
  readonly baseUrl: string;
  stop(): Promise<void>;
}

export async function startPassThrough(connectionString: string, container: string, cwd: string): Promise<PassThrough> {
  const child = await startScriptChild(
    'pass-through server',
    SCRIPT,
    { PASS_CONNECTION: connectionString, PASS_CONTAINER: container },
    cwd,
  );
  return { baseUrl: `http://127.0.0.1:${child.line}`, stop: child.stop };
}

/** POSTs one file's bytes; fails unless the pass-through stored it. */
export function passThroughPut(agent: Agent, url: string, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-length': bytes.byteLength } }, (res) => {
      res.resume();
      res.once('end', () => {
        if (res.statusCode === 201) resolve();
        else reject(new Error(`the pass-through answered ${res.statusCode}`));
      });
    });
    req.once('error', reject);
    req.end(bytes);
  });
}
