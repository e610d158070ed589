import { CodecError } from '../dicom/codecs/codec-error.js';
import type { PixelDescription } from '../dicom/codecs/pixel-description.js';
import { frameRecodable, recodeFrame } from '../dicom/transcode/frame-recode.js';
import { transferSyntaxInfo } from '../dicom/transfer-syntax.js';
import type { FrameRanges } from '../dicom/frame-table.js';
import { DicomwebError } from '../dicomweb/errors.js';
import { pixelDescriptionOf } from '../dicomweb/pixel-metadata.js';
import { findInstances, parseFrameList, readSidecar, selectFrames } from '../dicomweb/retrieve.js';
import type { InstanceKey, InstanceRecord, Storage, VersionKey } from '../storage/ports.js';
import { prefetch } from '../util/prefetch.js';
import type { Handler, RequestContext } from './context.js';
import { instanceRefusal } from './instance-bytes.js';
import { requestAccept } from './media-type.js';
import { multipartBody, multipartBytes, newBoundary, streamOf, type OutgoingPart } from './multipart-writer.js';
import { retrieveTarget } from './path-params.js';
import { EXPLICIT_VR_LITTLE_ENDIAN, negotiateFrames, type FrameChoice } from './retrieve-negotiation.js';

/** Swaps 16-bit words across chunk boundaries (big endian OW pixel data to little endian). */
async function* swap16(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let carry: number | undefined;
  for await (const chunk of source) {
    const bytes = carry === undefined ? Buffer.from(chunk) : Buffer.concat([Buffer.from([carry]), chunk]);
    const even = bytes.length - (bytes.length % 2);
    carry = even < bytes.length ? bytes[even] : undefined;
    const out = Buffer.from(bytes.subarray(0, even));
    out.swap16();
    if (out.length > 0) yield out;
  }
  if (carry !== undefined) yield Buffer.from([carry]);
}

/** What the frame path reads of a stored version: its blob and how its pixels are stored. */
type FrameSource = Pick<InstanceRecord, 'blobName' | 'transferSyntaxUid' | 'instance'>;

/**
 * A frame's bytes: its ranges read in order (one per fragment when encapsulated); `ahead`, when
 * given, is the first range already being read.
 */
async function* frameBytes(
  storage: Storage,
  source: FrameSource,
  ranges: FrameRanges,
  signal: AbortSignal,
  ahead?: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  for (const [index, [offset, count]] of ranges.entries()) {
    yield* index === 0 && ahead ? ahead : storage.blobs.read(source.blobName, { offset, count }, signal);
  }
}

function frameLength(ranges: FrameRanges): number {
  return ranges.reduce((sum, [, length]) => sum + length, 0);
}

/** A frame read whole and re-coded (decoded and/or encoded): one frame in memory at a time. */
async function recodedWhole(
  bytes: AsyncIterable<Uint8Array>,
  stored: string,
  target: string,
  description: PixelDescription,
): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  for await (const piece of bytes) pieces.push(piece);
  try {
    return await recodeFrame(Buffer.concat(pieces), stored, target, description);
  } catch (error) {
    if (!(error instanceof CodecError)) throw error;
    throw new DicomwebError(
      'NotAcceptable',
      `The stored frame cannot be re-coded as ${target}: ${error.message} Ask for transfer-syntax=* to get it as stored.`,
    );
  }
}

async function* recodedFrame(
  bytes: AsyncIterable<Uint8Array>,
  stored: string,
  target: string,
  description: PixelDescription,
): AsyncGenerator<Uint8Array> {
  yield await recodedWhole(bytes, stored, target, description);
}

/** What one frames response sends: which frames of which version, and how. */
interface FramesAnswer {
  readonly source: FrameSource;
  /** The version read: a read that fails is a 404 when the index no longer shows it (a delete won). */
  readonly version: VersionKey;
  readonly frames: FrameRanges[];
  readonly choice: FrameChoice;
  /** Set when the frames are re-coded into the negotiated syntax. */
  readonly description?: PixelDescription | undefined;
  /** The first frame's first range, already being read. */
  readonly ahead?: AsyncIterable<Uint8Array> | undefined;
}

/**
 * Frames as stored, byte-swapped, or re-coded. An answer of at most ONE_WRITE_BYTES is read
 * whole before the status goes out and sent as one buffer with its Content-Length: one socket
 * write instead of one per piece (a part header, the bytes, the close delimiter, the chunked
 * terminator), and a read that fails is a status, not a cut response. Larger ones stream.
 */
async function framesResponse(request: Request, context: RequestContext, answer: FramesAnswer): Promise<Response> {
  const { source, frames, choice, description, ahead } = answer;
  const storedUid = source.transferSyntaxUid;
  const stored = transferSyntaxInfo(storedUid);
  const bitsAllocated = Number(source.instance['BitsAllocated'] ?? 8);
  const swap =
    choice.transferSyntax === EXPLICIT_VR_LITTLE_ENDIAN && stored?.littleEndian === false && bitsAllocated > 8;
  const contentType = `${choice.mediaType}; transfer-syntax=${choice.transferSyntax}`;
  const body = (ranges: FrameRanges, index = 0) => {
    const bytes = frameBytes(context.storage, source, ranges, request.signal, index === 0 ? ahead : undefined);
    if (description) return recodedFrame(bytes, storedUid, choice.transferSyntax, description);
    return swap ? swap16(bytes) : bytes;
  };
  // A re-coded frame's length is known only once it is made.
  const length = (ranges: FrameRanges) => (description ? undefined : frameLength(ranges));
  const failures = { log: context.log, signal: request.signal };
  if (!choice.multipart) {
    const [ranges] = frames as [FrameRanges];
    const size = length(ranges);
    // A re-coded frame too is made before the status goes out, so one that will not decode is a clean 406.
    if (size === undefined || size <= ONE_WRITE_BYTES) {
      return whole(await readWhole(context, answer.version, body(ranges)), contentType);
    }
    const headers = { 'content-type': contentType, 'content-length': String(size) };
    return new Response(streamOf(body(ranges), failures), { status: 200, headers });
  }
  async function* parts(): AsyncGenerator<OutgoingPart> {
    await Promise.resolve();
    for (const [index, ranges] of frames.entries()) {
      yield { contentType, body: body(ranges, index), length: length(ranges) };
    }
  }
  const boundary = newBoundary();
  const type = `multipart/related; type="${choice.mediaType}"; boundary=${boundary}`;
  if (!description && frames.reduce((sum, ranges) => sum + frameLength(ranges), 0) <= ONE_WRITE_BYTES) {
    return whole(await readWhole(context, answer.version, multipartBytes(parts(), boundary)), type);
  }
  return new Response(multipartBody(parts(), boundary, failures), { status: 200, headers: { 'content-type': type } });
}

/** Frames answers up to this size are read whole first (a 512×512 16-bit CT frame is 512 KiB). */
const ONE_WRITE_BYTES = 1024 * 1024;

function whole(bytes: Buffer<ArrayBuffer>, contentType: string): Response {
  return new Response(bytes, {
    status: 200,
    headers: { 'content-type': contentType, 'content-length': String(bytes.byteLength) },
  });
}

/** A small answer's bytes; a read that fails because a delete removed the version is a 404. */
async function readWhole(
  context: RequestContext,
  version: VersionKey,
  source: AsyncIterable<Uint8Array>,
): Promise<Buffer<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  try {
    for await (const chunk of source) chunks.push(chunk);
  } catch (error) {
    if (error instanceof DicomwebError) throw error;
    if ((await context.storage.index.visibleVersion(version)) !== version.version) {
      throw new DicomwebError('NotFound', 'The instance was deleted while it was being read.');
    }
    throw error;
  }
  return Buffer.concat(chunks);
}

async function oneInstance(context: RequestContext): Promise<InstanceRecord> {
  const [instance] = await findInstances(context.storage, retrieveTarget(context));
  if (!instance) throw new DicomwebError('NotFound', 'The instance was not found.');
  return instance;
}

/**
 * `GET .../instances/{instance}/frames/{frames}` (PS3.18 §10.4.1.1.4): one ranged read per frame,
 * the first started with the index read when this process remembers the instance's frame table.
 */
export const handleFrames: Handler = async (request, context) => {
  const list = parseFrameList(context.params['frames'] ?? '');
  const target = retrieveTarget(context);
  const key = {
    ...target,
    seriesInstanceUid: target.seriesInstanceUid ?? '',
    sopInstanceUid: target.sopInstanceUid ?? '',
  };
  const remembered = await fromMemory(request, context, key, list);
  if (remembered) return remembered;
  const instance = await oneInstance(context);
  const sidecar = await readSidecar(context.storage, instance);
  if (sidecar.frames) context.frameTables?.remember(instance, sidecar.frames);
  const frames = selectFrames(sidecar.frames, list);
  const { choice, recode } = frameChoice(request, instance, frames.length);
  const description = recode ? pixelDescriptionOf(sidecar.metadata) : undefined;
  return framesResponse(request, context, { source: instance, version: instance, frames, choice, description });
};

/**
 * Frames of a version this process remembers (docs/storage.md, "Frames"): the first frame's
 * ranged read starts with the index read and its bytes are served only when the index answers
 * with that version. Another version (a replaced instance) drops the read and the entry, and the
 * frames are read as if nothing were remembered; no visible version is a 404. Undefined also
 * when nothing is remembered, a frame is past the remembered table (the index decides which
 * 404), the frames are re-coded (that work dwarfs a round trip) or not acceptable at all, or the
 * read failed (a delete removed the blob after the index read: the index, read again, answers).
 */
async function fromMemory(
  request: Request,
  context: RequestContext,
  key: InstanceKey,
  list: readonly number[],
): Promise<Response | undefined> {
  const memory = context.frameTables;
  const remembered = memory?.get(key);
  if (!memory || !remembered || list.some((frame) => frame > remembered.frames.length)) return undefined;
  const frames = selectFrames(remembered.frames, list);
  const negotiated = negotiatedOrUndefined(request, remembered, frames.length);
  const range = frames[0]?.[0];
  if (!negotiated || negotiated.recode || !range) return undefined;
  const { choice } = negotiated;
  const speculation = new AbortController();
  const [offset, count] = range;
  const ahead = prefetch(
    context.storage.blobs.read(
      remembered.blobName,
      { offset, count },
      AbortSignal.any([request.signal, speculation.signal]),
    ),
  );
  const discard = () => {
    speculation.abort();
    ahead.close().catch(() => undefined);
  };
  let version: string | undefined;
  try {
    version = await context.storage.index.visibleVersion(key);
  } catch (error) {
    discard();
    throw error;
  }
  if (version !== remembered.version) {
    discard();
    memory.forget(key);
    if (version === undefined) throw new DicomwebError('NotFound', 'The instance was not found.');
    return undefined;
  }
  if (!(await ahead.ready())) return undefined;
  const read = { ...key, version: remembered.version };
  return framesResponse(request, context, { source: remembered, version: read, frames, choice, ahead });
}

/** A refused Accept (406) waits for the index: a deleted instance is a 404 whatever was asked for. */
function negotiatedOrUndefined(request: Request, source: FrameSource, count: number) {
  try {
    return frameChoice(request, source, count);
  } catch (error) {
    if (error instanceof DicomwebError) return undefined;
    throw error;
  }
}

/** The frames' media type and syntax as negotiated, and whether that means re-coding them. */
function frameChoice(request: Request, instance: FrameSource, count: number): { choice: FrameChoice; recode: boolean } {
  const stored = instance.transferSyntaxUid;
  const recodable = (from: string, to: string) =>
    frameRecodable(from, to) && instanceRefusal(instance, EXPLICIT_VR_LITTLE_ENDIAN) === undefined;
  const choice = negotiateFrames(requestAccept(request), stored, count, recodable);
  return { choice, recode: recodable(stored, choice.transferSyntax) };
}

/** `GET .../instances/{instance}/pixeldata`: every frame, the target of Pixel Data's BulkDataURI. */
export const handlePixelData: Handler = async (request, context) => {
  const instance = await oneInstance(context);
  const sidecar = await readSidecar(context.storage, instance);
  const frames = selectFrames(
    sidecar.frames,
    (sidecar.frames ?? []).map((_, i) => i + 1),
  );
  const { choice, recode } = frameChoice(request, instance, frames.length);
  const description = recode ? pixelDescriptionOf(sidecar.metadata) : undefined;
  return framesResponse(request, context, { source: instance, version: instance, frames, choice, description });
};

/** `GET .../instances/{instance}/bulkdata/{offset}-{length}`: a value that metadata gave as a BulkDataURI. */
export const handleBulkData: Handler = async (request, context) => {
  const match = /^(\d+)-(\d+)$/.exec(context.params['range'] ?? '');
  if (!match) throw new DicomwebError('BadRequest', 'A bulk data URI ends in {offset}-{length}.');
  const offset = Number(match[1]);
  const length = Number(match[2]);
  const instance = await oneInstance(context);
  if (transferSyntaxInfo(instance.transferSyntaxUid)?.deflated) {
    throw new DicomwebError(
      'NotAcceptable',
      'Bulk data of a deflated instance is not served separately; retrieve the instance.',
    );
  }
  if (offset + length > instance.size) throw new DicomwebError('NotFound', 'No bulk data value is at that position.');
  // Bulk data keeps the stored byte order: the label says which one it is.
  const choice = negotiateFrames(requestAccept(request), instance.transferSyntaxUid, 1);
  return framesResponse(request, context, {
    source: instance,
    version: instance,
    frames: [[[offset, length]]],
    choice: { ...choice, transferSyntax: instance.transferSyntaxUid },
  });
};
