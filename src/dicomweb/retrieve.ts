import type { FrameRanges } from '../dicom/frame-table.js';
import { sidecarBlobName } from '../storage/keys.js';
import type { InstanceRecord, Storage } from '../storage/ports.js';
import { DicomwebError } from './errors.js';
import { decodeSidecar, inflateSidecar, type InstanceSidecar } from './instance-sidecar.js';
import { compareText } from '../util/compare.js';

export interface RetrieveTarget {
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid?: string | undefined;
  readonly sopInstanceUid?: string | undefined;
}

/** The stored instances a WADO-RS request names, oldest first as a study is read; 404 when none. */
export async function findInstances(storage: Storage, target: RetrieveTarget): Promise<InstanceRecord[]> {
  const { studyInstanceUid, seriesInstanceUid, sopInstanceUid } = target;
  let instances: InstanceRecord[];
  if (seriesInstanceUid && sopInstanceUid) {
    const one = await storage.index.getInstance({ studyInstanceUid, seriesInstanceUid, sopInstanceUid });
    instances = one ? [one] : [];
  } else {
    instances = await storage.index.listInstances(studyInstanceUid, seriesInstanceUid);
  }
  if (instances.length === 0) {
    const what = sopInstanceUid ? 'instance' : seriesInstanceUid ? 'series' : 'study';
    throw new DicomwebError('NotFound', `The ${what} was not found.`);
  }
  return instances.sort((a, b) => compareText(a.storedAt, b.storedAt));
}

/**
 * An instance's sidecar (from its index row when kept there), or undefined when the instance was deleted after it was listed: a delete
 * removes the index row before the blobs, so a missing sidecar whose version the index no longer
 * shows is a delete that won the race, not damage (which stays an internal error).
 */
export async function readStoredSidecar(storage: Storage, instance: InstanceRecord): Promise<Uint8Array | undefined> {
  if (instance.inlineSidecar) return inflateSidecar(instance.inlineSidecar);
  const raw = await storage.blobs.readSmall(sidecarBlobName(instance.blobName));
  if (raw) return raw;
  if ((await storage.index.getInstance(instance))?.version !== instance.version) return undefined;
  throw new Error(`the sidecar of ${instance.blobName} is missing`);
}

/** An instance's sidecar; 404 when a concurrent delete removed the instance since it was listed. */
export async function readSidecarBytes(storage: Storage, instance: InstanceRecord): Promise<Uint8Array> {
  const raw = await readStoredSidecar(storage, instance);
  if (!raw) throw new DicomwebError('NotFound', 'The instance was deleted while it was being read.');
  return raw;
}

export async function readSidecar(storage: Storage, instance: InstanceRecord): Promise<InstanceSidecar> {
  return decodeSidecar(await readSidecarBytes(storage, instance));
}

/**
 * Parses a frame list (PS3.18 §10.4.1.1.4): comma-separated frame numbers from 1. A number that
 * is not one, 0, or a repeat is 400; past the instance's last frame is 404.
 */
export function parseFrameList(text: string): number[] {
  const parts = text.split(',').map((part) => part.trim());
  const frames: number[] = [];
  for (const part of parts) {
    if (!/^\d+$/.test(part))
      throw new DicomwebError(
        'BadRequest',
        `The frame list "${text.slice(0, 80)}" must be frame numbers separated by commas.`,
      );
    const frame = Number(part);
    if (frame < 1) throw new DicomwebError('BadRequest', 'Frame numbers start at 1.');
    if (frames.includes(frame)) throw new DicomwebError('BadRequest', `Frame ${frame} is asked for twice.`);
    frames.push(frame);
  }
  return frames;
}

export function selectFrames(table: readonly FrameRanges[] | null, frames: readonly number[]): FrameRanges[] {
  if (!table) throw new DicomwebError('NotFound', 'The instance has no frames that can be retrieved one by one.');
  return frames.map((frame) => {
    const ranges = table[frame - 1];
    if (!ranges)
      throw new DicomwebError('NotFound', `Frame ${frame} does not exist; the instance has ${table.length}.`);
    return ranges;
  });
}
