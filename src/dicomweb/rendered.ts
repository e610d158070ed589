import type { DecodedFrame } from '../dicom/codecs/pixel-description.js';
import type { DicomJson } from '../dicom/dicom-json-model.js';
import type { FrameDecoder } from '../dicom/render/frame-decoder.js';
import { encodeImage, RegionOutsideImage, type EncodeOptions } from '../dicom/render/image-encoder.js';
import { nativeDecodedFrame, nativeFrameRange } from '../dicom/render/native-frame.js';
import { renderFrame } from '../dicom/render/pixel-pipeline.js';
import {
  lutBulkDataUris,
  NotRenderable,
  renderAttributes,
  type RenderAttributes,
  type WindowSetting,
} from '../dicom/render/render-attributes.js';
import { transferSyntaxInfo } from '../dicom/transfer-syntax.js';
import type { InstanceRecord, Storage } from '../storage/ports.js';
import { compareText } from '../util/compare.js';
import { DicomwebError, type FailureLog } from './errors.js';
import { INSTANCE_URL } from './instance-sidecar.js';
import { findInstances, readSidecar, type RetrieveTarget } from './retrieve.js';
import {
  cacheThumbnail,
  readLevelThumbnails,
  readThumbnails,
  saveLevelThumbnail,
  type ThumbnailMemory,
} from './thumbnail-cache.js';

/**
 * Retrieve rendered and thumbnail resources (PS3.18 §10.4.1.1.3, Supplement 203): one frame of
 * one instance, read by its byte ranges only (never the whole instance), through the pixel
 * pipeline, encoded as JPEG, PNG or GIF. A study or series renders its representative instance.
 */

export interface RenderDependencies {
  /** Decodes compressed frames; without one, only native pixel data is rendered. */
  readonly decodeFrame?: FrameDecoder | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly log: FailureLog;
  /** The app's thumbnail blobs held in memory; without it every cached thumbnail is a blob read. */
  readonly thumbnails?: ThumbnailMemory | undefined;
}

export interface RenderRequest {
  readonly target: RetrieveTarget;
  /** 1-based; a study, series or instance resource renders frame 1. */
  readonly frame?: number | undefined;
  readonly encode: EncodeOptions;
  /** The request's `window`; otherwise the data set's VOI applies. */
  readonly window?: WindowSetting | undefined;
}

const numberOr = (text: string | undefined, fallback: number) => {
  const value = Number(text);
  return text !== undefined && text !== '' && Number.isFinite(value) ? value : fallback;
};

/**
 * The instance that stands for a study or series: among its instances that have pixel data, the
 * one of the lowest Series Number (then Series Instance UID), and in it the lowest Instance
 * Number (then the earliest stored). Missing numbers sort last.
 */
export function representative(instances: readonly InstanceRecord[]): InstanceRecord | undefined {
  const images = instances.filter((instance) => instance.pixelDataOffset !== undefined);
  const order = (a: InstanceRecord, b: InstanceRecord) =>
    numberOr(a.series['SeriesNumber'], Infinity) - numberOr(b.series['SeriesNumber'], Infinity) ||
    compareText(a.seriesInstanceUid, b.seriesInstanceUid) ||
    numberOr(a.instance['InstanceNumber'], Infinity) - numberOr(b.instance['InstanceNumber'], Infinity) ||
    compareText(a.storedAt, b.storedAt);
  return [...images].sort(order)[0];
}

async function targetInstance(storage: Storage, target: RetrieveTarget): Promise<InstanceRecord> {
  const instances = await findInstances(storage, target);
  if (target.sopInstanceUid) return instances[0] as InstanceRecord;
  const chosen = representative(instances);
  if (!chosen) {
    throw new DicomwebError(
      'NotAcceptable',
      `The ${target.seriesInstanceUid ? 'series' : 'study'} has no instance with pixel data to render.`,
    );
  }
  return chosen;
}

/** Bytes of one range of the instance blob, read into one buffer. */
async function readRange(
  storage: Storage,
  instance: InstanceRecord,
  offset: number,
  count: number,
  signal?: AbortSignal,
): Promise<Buffer> {
  const out = Buffer.alloc(count);
  let at = 0;
  for await (const chunk of storage.blobs.read(instance.blobName, { offset, count }, signal)) {
    out.set(chunk.subarray(0, count - at), at);
    at += chunk.length;
  }
  if (at < count) throw new Error(`${instance.blobName} ended ${count - at} bytes early at ${offset}`);
  return out;
}

/** The LUT data that metadata gives by BulkDataURI (large palettes, VOI and Modality LUTs). */
async function lutBulkData(storage: Storage, instance: InstanceRecord, metadata: DicomJson, signal?: AbortSignal) {
  const bulk = new Map<string, Uint8Array>();
  for (const uri of lutBulkDataUris(metadata)) {
    const match = new RegExp(`^${INSTANCE_URL.replace(/[{}]/g, '\\$&')}/bulkdata/(\\d+)-(\\d+)$`).exec(uri);
    if (match) bulk.set(uri, await readRange(storage, instance, Number(match[1]), Number(match[2]), signal));
  }
  return bulk;
}

function notRenderable(instance: InstanceRecord, error: unknown): never {
  if (error instanceof NotRenderable) {
    throw new DicomwebError(
      'NotAcceptable',
      `The instance ${instance.sopInstanceUid} cannot be rendered: ${error.message}.`,
    );
  }
  throw error;
}

/** One frame of an instance, decoded, with the attributes that say how to show it. */
async function decodedFrame(
  storage: Storage,
  instance: InstanceRecord,
  frameNumber: number,
  deps: RenderDependencies,
): Promise<{ frame: DecodedFrame; attributes: RenderAttributes }> {
  const uid = instance.transferSyntaxUid;
  const syntax = transferSyntaxInfo(uid);
  if (instance.pixelDataOffset === undefined || instance.pixelDataLength === undefined) {
    throw new DicomwebError('NotAcceptable', `The instance ${instance.sopInstanceUid} has no pixel data to render.`);
  }
  if (syntax?.deflated) {
    throw new DicomwebError(
      'NotAcceptable',
      `Cannot render transfer syntax ${uid} (deflated instances are not rendered).`,
    );
  }
  const encapsulated = instance.pixelDataLength === -1 || syntax?.encapsulated === true;
  if (encapsulated && !deps.decodeFrame)
    throw new DicomwebError('NotAcceptable', `Cannot render transfer syntax ${uid}.`);
  const sidecar = await readSidecar(storage, instance);
  const metadata = sidecar.metadata as DicomJson;
  const littleEndian = syntax?.littleEndian ?? true;
  let attributes: RenderAttributes;
  try {
    const bulk = await lutBulkData(storage, instance, metadata, deps.signal);
    attributes = renderAttributes(metadata, bulk, littleEndian, frameNumber - 1);
  } catch (error) {
    notRenderable(instance, error);
  }
  const missing = () =>
    new DicomwebError(
      'NotFound',
      `Frame ${frameNumber} does not exist; the instance has ${attributes.numberOfFrames}.`,
    );
  if (frameNumber > attributes.numberOfFrames) throw missing();
  const description = attributes.description;
  if (encapsulated && deps.decodeFrame) {
    const ranges = sidecar.frames?.[frameNumber - 1];
    if (!ranges) throw missing();
    const parts = await Promise.all(
      ranges.map(([offset, length]) => readRange(storage, instance, offset, length, deps.signal)),
    );
    try {
      return { frame: await deps.decodeFrame(uid, Buffer.concat(parts), description), attributes };
    } catch (error) {
      throw new DicomwebError('NotAcceptable', `Cannot render transfer syntax ${uid}: ${String(error)}`, {
        cause: error,
      });
    }
  }
  const range = nativeFrameRange(instance.pixelDataOffset, instance.pixelDataLength, description, frameNumber - 1);
  if (!range) throw missing();
  const bytes = await readRange(storage, instance, range.offset, range.length, deps.signal);
  return { frame: nativeDecodedFrame(bytes, range, description, littleEndian), attributes };
}

async function render(
  storage: Storage,
  instance: InstanceRecord,
  request: RenderRequest,
  deps: RenderDependencies,
): Promise<Buffer> {
  const { frame, attributes } = await decodedFrame(storage, instance, request.frame ?? 1, deps);
  try {
    return await encodeImage(renderFrame(frame, attributes, request.window), request.encode);
  } catch (error) {
    if (error instanceof RegionOutsideImage) throw new DicomwebError('BadRequest', `The ${error.message}.`);
    notRenderable(instance, error);
  }
}

/** A rendered resource: the image bytes in the requested media type. */
export async function retrieveRendered(
  storage: Storage,
  request: RenderRequest,
  deps: RenderDependencies,
): Promise<Buffer> {
  return render(storage, await targetInstance(storage, request.target), request, deps);
}

/** An instance's thumbnail: from its version's cache (one blob read), else rendered and added to it. */
async function instanceThumbnail(
  storage: Storage,
  instance: InstanceRecord,
  request: RenderRequest,
  key: string,
  deps: RenderDependencies,
): Promise<Uint8Array> {
  const cached = await readThumbnails(storage, instance, deps.thumbnails);
  const hit = cached.find(key);
  if (hit) return hit;
  const image = await render(storage, instance, request, deps);
  try {
    await cacheThumbnail(storage, instance, cached, key, image, deps.thumbnails);
  } catch (error) {
    deps.log(`caching a thumbnail of ${instance.blobName} failed`, error);
  }
  return image;
}

/**
 * A thumbnail resource. An instance's or frame's is cached beside the instance version; a study's
 * or series' in the study's or series' thumbnails at the current study revision, so a
 * worklist's cached study thumbnail is one point read and one blob read, whatever the study's size.
 * A failure to cache is logged, and the picture still served.
 */
export async function retrieveThumbnail(
  storage: Storage,
  request: RenderRequest,
  deps: RenderDependencies,
): Promise<Uint8Array> {
  const { viewport, mediaType } = request.encode;
  const key = `${mediaType};frame=${request.frame ?? 1};viewport=${viewport?.width},${viewport?.height}`;
  const { studyInstanceUid, seriesInstanceUid, sopInstanceUid } = request.target;
  if (sopInstanceUid)
    return instanceThumbnail(storage, await targetInstance(storage, request.target), request, key, deps);
  const level = await readLevelThumbnails(storage, studyInstanceUid, seriesInstanceUid, deps.thumbnails);
  const hit = level.current?.find(key);
  if (hit) return hit;
  // Rendered straight into the study's or series' blob: the instance's own cache would add a
  // read, an append and a version check to every cold worklist entry.
  const image = await render(storage, await targetInstance(storage, request.target), request, deps);
  await saveLevelThumbnail(storage, studyInstanceUid, seriesInstanceUid, level, key, image, deps.log, deps.thumbnails);
  return image;
}
