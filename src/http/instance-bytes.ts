import { decodeRefusal } from '../dicom/codecs/decode-frame.js';
import { transcode, transcodeRefusal } from '../dicom/transcode/transcode.js';
import { transferSyntaxInfo } from '../dicom/transfer-syntax.js';
import type { InstanceRecord, Storage } from '../storage/ports.js';

/** Why an instance cannot be sent as `requested` ("*": as stored), or undefined when it can. */
export function instanceRefusal(
  instance: Pick<InstanceRecord, 'transferSyntaxUid' | 'instance'>,
  requested: string,
): string | undefined {
  const stored = instance.transferSyntaxUid;
  if (requested === '*' || requested === stored) return undefined;
  const pair = transcodeRefusal(stored, requested);
  if (pair !== undefined || !transferSyntaxInfo(stored)?.encapsulated) return pair;
  // The syntax pair works; the instance's own pixels may still be beyond the decoder (JPEG over 16 bits).
  return decodeRefusal(stored, Number(instance.instance['BitsAllocated'] ?? 8));
}

/** Delivery rules over the stored syntaxes of `instances`, for negotiateInstances. */
export function deliveryRules(instances: readonly InstanceRecord[]) {
  const refusal = (stored: string, requested: string): string | undefined =>
    instances
      .filter((instance) => instance.transferSyntaxUid === stored)
      .map((instance) => instanceRefusal(instance, requested))
      .find((reason) => reason !== undefined);
  return { deliverable: (stored: string, requested: string) => refusal(stored, requested) === undefined, refusal };
}

/**
 * An instance's bytes in the asked-for syntax, streamed from its blob (transcoded on the fly when
 * needed). With `original` (msdicom-request-original), the version first stored when a bulk
 * update has kept one: same transfer syntax, its size not in the index.
 */
export function instanceBytes(
  storage: Storage,
  instance: InstanceRecord,
  requested: string,
  signal?: AbortSignal,
  original = false,
) {
  const kept = original ? instance.originalBlobName : undefined;
  const raw = storage.blobs.read(kept ?? instance.blobName, undefined, signal);
  const actual = requested === '*' ? instance.transferSyntaxUid : requested;
  if (actual === instance.transferSyntaxUid) {
    return { body: raw, transferSyntax: actual, length: kept ? undefined : instance.size };
  }
  return { body: transcode(raw, instance.transferSyntaxUid, actual), transferSyntax: actual, length: undefined };
}
