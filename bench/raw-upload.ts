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
 * As the server writes: a blob under one block in a single Put Blob, a larger one as staged
 * blocks of the server's size and concurrency (uploadStream; uploadData would send anything under
 * 256 MiB as a single Put Blob) and one Put Block List.
 */
export async function uploadRaw(container: ContainerClient, name: string, body: Body): Promise<void> {
  const blob = container.getBlockBlobClient(name);
  const options = {
    blobHTTPHeaders: { blobContentType: 'application/dicom' },
    conditions: { ifNoneMatch: '*' },
  };
  if (body.kind === 'buffer' && body.bytes.byteLength < DEFAULT_BLOCK_UPLOAD.blockSize) {
    await blob.upload(body.bytes, body.bytes.byteLength, options);
    return;
  }
  const source =
    body.kind === 'buffer' ? Readable.from([body.bytes]) : createReadStream(body.path, { highWaterMark: FILE_CHUNK });
  await blob.uploadStream(source, DEFAULT_BLOCK_UPLOAD.blockSize, DEFAULT_BLOCK_UPLOAD.concurrency, options);
}

export interface ContainerContents {
  /** Instance blobs (Content-Type application/dicom), to check a run stored what it claims. */
  readonly instances: { readonly count: number; readonly bytes: number };
  /** Anything else the server wrote beside them (e.g. metadata sidecars). */
  readonly others: { readonly count: number; readonly bytes: number };
}

/** Committed blobs in a container. */
export async function containerContents(container: ContainerClient): Promise<ContainerContents> {
  const instances = { count: 0, bytes: 0 };
  const others = { count: 0, bytes: 0 };
  for await (const blob of container.listBlobsFlat()) {
    const tally = blob.properties.contentType === 'application/dicom' ? instances : others;
    tally.count += 1;
    tally.bytes += blob.properties.contentLength ?? 0;
  }
  return { instances, others };
}
