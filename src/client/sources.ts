/**
 * What STOW sends: instances as files, byte arrays or streams, each read only when its part of
 * the request goes out, so no file is ever held whole in memory.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';

export interface InstanceSource {
  /** For messages and results: the file path, or a name the caller chose. */
  readonly name: string;
  /** Bytes, when known (progress, batching). */
  readonly size?: number | undefined;
  /** False for a one-shot stream: a request that sent it cannot be retried. */
  readonly replayable: boolean;
  open(): AsyncIterable<Uint8Array>;
}

/** 1 MiB reads: few syscalls, and what the bench's raw uploader reads too. */
export const FILE_CHUNK = 1024 * 1024;

export function fileSource(path: string, size?: number): InstanceSource {
  return {
    name: path,
    size,
    replayable: true,
    // With the size known, each read asks for just the bytes left: a file smaller than a chunk is
    // one read into a buffer of its size, with no read at the end to find it (reading into 1 MiB
    // buffers tripled what a folder of small files allocated, and the garbage collection it costs).
    open: () =>
      size === undefined
        ? createReadStream(path, { highWaterMark: FILE_CHUNK })
        : size === 0
          ? nothing()
          : createReadStream(path, { highWaterMark: Math.min(FILE_CHUNK, size), end: size - 1 }),
  };
}

async function* nothing(): AsyncGenerator<Uint8Array> {}

/** A file source with its size read from the file system. */
export async function fileSourceOf(path: string): Promise<InstanceSource> {
  return fileSource(path, (await stat(path)).size);
}

export function bytesSource(bytes: Uint8Array, name = 'instance'): InstanceSource {
  return {
    name,
    size: bytes.byteLength,
    replayable: true,
    open: () => [bytes] as unknown as AsyncIterable<Uint8Array>,
  };
}

/** A web or Node stream: read once, so a request that carries it is not retried. */
export function streamSource(
  stream: ReadableStream<Uint8Array> | NodeJS.ReadableStream,
  name = 'stream',
  size?: number,
): InstanceSource {
  let opened = false;
  return {
    name,
    size,
    replayable: false,
    open: () => {
      if (opened) throw new Error(`The stream ${name} was already sent; a stream can be read only once.`);
      opened = true;
      return stream instanceof ReadableStream
        ? Readable.fromWeb(stream as import('node:stream/web').ReadableStream<Uint8Array>)
        : (stream as AsyncIterable<Uint8Array>);
    },
  };
}
