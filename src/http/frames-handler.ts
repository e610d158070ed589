import { CodecError } from '../dicom/codecs/codec-error.js';
import type { PixelDescription } from '../dicom/codecs/pixel-description.js';
import { frameRecodable, recodeFrame } from '../dicom/transcode/frame-recode.js';
import { transferSyntaxInfo } from '../dicom/transfer-syntax.js';
import type { FrameRanges } from '../dicom/frame-table.js';
import { DicomwebError } from '../dicomweb/errors.js';
import { pixelDescriptionOf } from '../dicomweb/pixel-metadata.js';
import { findInstances, parseFrameList, readSidecar, selectFrames } from '../dicomweb/retrieve.js';
import type { InstanceRecord, Storage } from '../storage/ports.js';
import type { Handler, RequestContext } from './context.js';
import { instanceRefusal } from './instance-bytes.js';
import { requestAccept } from './media-type.js';
import { multipartBody, newBoundary, streamOf, type OutgoingPart } from './multipart-writer.js';
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

/** A frame's bytes: its ranges read in order (one per fragment when encapsulated). */
async function* frameBytes(
  storage: Storage,
  instance: InstanceRecord,
  ranges: FrameRanges,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  for (const [offset, count] of ranges) yield* storage.blobs.read(instance.blobName, { offset, count }, signal);
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

async function framesResponse(
  request: Request,
  context: RequestContext,
  instance: InstanceRecord,
  frames: FrameRanges[],
  choice: FrameChoice,
  description?: PixelDescription,
): Promise<Response> {
  const storedUid = instance.transferSyntaxUid;
  const stored = transferSyntaxInfo(storedUid);
  const bitsAllocated = Number(instance.instance['BitsAllocated'] ?? 8);
  const swap =
    choice.transferSyntax === EXPLICIT_VR_LITTLE_ENDIAN && stored?.littleEndian === false && bitsAllocated > 8;
  const contentType = `${choice.mediaType}; transfer-syntax=${choice.transferSyntax}`;
  const body = (ranges: FrameRanges) => {
    const bytes = frameBytes(context.storage, instance, ranges, request.signal);
    if (description) return recodedFrame(bytes, storedUid, choice.transferSyntax, description);
    return swap ? swap16(bytes) : bytes;
  };
  // A re-coded frame's length is known only once it is made.
  const length = (ranges: FrameRanges) => (description ? undefined : frameLength(ranges));
  if (!choice.multipart) {
    const [ranges] = frames as [FrameRanges];
    if (description) {
      // One frame: re-coded before the status goes out, so a frame that will not decode is a clean 406.
      const bytes = await recodedWhole(
        frameBytes(context.storage, instance, ranges, request.signal),
        storedUid,
        choice.transferSyntax,
        description,
      );
      return new Response(Buffer.from(bytes), {
        status: 200,
        headers: { 'content-type': contentType, 'content-length': String(bytes.byteLength) },
      });
    }
    const size = length(ranges);
    const headers: Record<string, string> = { 'content-type': contentType };
    if (size !== undefined) headers['content-length'] = String(size);
    return new Response(streamOf(body(ranges), { log: context.log, signal: request.signal }), { status: 200, headers });
  }
  async function* parts(): AsyncGenerator<OutgoingPart> {
    await Promise.resolve();
    for (const ranges of frames) yield { contentType, body: body(ranges), length: length(ranges) };
  }
  const boundary = newBoundary();
  return new Response(multipartBody(parts(), boundary, { log: context.log, signal: request.signal }), {
    status: 200,
    headers: { 'content-type': `multipart/related; type="${choice.mediaType}"; boundary=${boundary}` },
  });
}

async function oneInstance(context: RequestContext): Promise<InstanceRecord> {
  const [instance] = await findInstances(context.storage, retrieveTarget(context));
  if (!instance) throw new DicomwebError('NotFound', 'The instance was not found.');
  return instance;
}

/** `GET .../instances/{instance}/frames/{frames}` (PS3.18 §10.4.1.1.4): one ranged read per frame. */
export const handleFrames: Handler = async (request, context) => {
  const list = parseFrameList(context.params['frames'] ?? '');
  const instance = await oneInstance(context);
  const sidecar = await readSidecar(context.storage, instance);
  const frames = selectFrames(sidecar, list);
  return recodingResponse(request, context, instance, sidecar.metadata, frames);
};

/** Frames as negotiated: as stored, byte-swapped, or re-coded into the syntax asked for. */
function recodingResponse(
  request: Request,
  context: RequestContext,
  instance: InstanceRecord,
  metadata: Record<string, unknown>,
  frames: FrameRanges[],
): Promise<Response> {
  const stored = instance.transferSyntaxUid;
  const recodable = (from: string, to: string) =>
    frameRecodable(from, to) && instanceRefusal(instance, EXPLICIT_VR_LITTLE_ENDIAN) === undefined;
  const choice = negotiateFrames(requestAccept(request), stored, frames.length, recodable);
  const recode = recodable(stored, choice.transferSyntax);
  return framesResponse(request, context, instance, frames, choice, recode ? pixelDescriptionOf(metadata) : undefined);
}

/** `GET .../instances/{instance}/pixeldata`: every frame, the target of Pixel Data's BulkDataURI. */
export const handlePixelData: Handler = async (request, context) => {
  const instance = await oneInstance(context);
  const sidecar = await readSidecar(context.storage, instance);
  const frames = selectFrames(
    sidecar,
    (sidecar.frames ?? []).map((_, i) => i + 1),
  );
  return recodingResponse(request, context, instance, sidecar.metadata, frames);
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
  return framesResponse(request, context, instance, [[[offset, length]]], {
    ...choice,
    transferSyntax: instance.transferSyntaxUid,
  });
};
