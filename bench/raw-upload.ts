/**
 * The raw ceiling: the same bytes straight into the same Azurite with the SDK, staged as blocks
 * of the server's size and concurrency, so the ratio shows what the server adds on top
 * (HTTP hop, multipart and header parsing, index rows).
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { ContainerClient } from '@azure/storage-blob';
import { DEFAULT_BLOCK_UPLOAD } from '../src/storage/azure-blob-store.js';
import { FILE_CHUNK } from './stow-client.js';
import type { Body } from './workloads.js';

/**
 * uploadStream rather than uploadData/uploadFile: those send anything under 256 MiB as a single
 * Put Blob, while the server always stages blocks and commits a block list.
 */
export async function uploadRaw(container: ContainerClient, name: string, body: Body): Promise<void> {
  const source =
    body.kind === 'buffer' ? Readable.from([body.bytes]) : createReadStream(body.path, { highWaterMark: FILE_CHUNK });
  await container
    .getBlockBlobClient(name)
    .uploadStream(source, DEFAULT_BLOCK_UPLOAD.blockSize, DEFAULT_BLOCK_UPLOAD.concurrency, {
      blobHTTPHeaders: { blobContentType: 'application/dicom' },
      conditions: { ifNoneMatch: '*' },
    });
}

/** Committed blobs in a container, to check a run stored what it claims. */
export async function containerContents(container: ContainerClient): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  for await (const blob of container.listBlobsFlat()) {
    count += 1;
    bytes += blob.properties.contentLength ?? 0;
  }
  return { count, bytes };
}
