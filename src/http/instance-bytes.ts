import { canTranscode, transcode, transcodeRefusal } from '../dicom/transcode/transcode.js';
import type { InstanceRecord, Storage } from '../storage/ports.js';

/** Can an instance stored in `stored` be sent as `requested` ("*": as stored)? */
export function deliverable(stored: string, requested: string): boolean {
  return requested === '*' || requested === stored || canTranscode(stored, requested);
}

/** Why an instance stored in `stored` cannot be sent as `requested`, for the 406 message. */
export function refusal(stored: string, requested: string): string | undefined {
  return requested === '*' ? undefined : transcodeRefusal(stored, requested);
}

/** An instance's bytes in the asked-for syntax, streamed from its blob (transcoded on the fly when needed). */
export function instanceBytes(storage: Storage, instance: InstanceRecord, requested: string, signal?: AbortSignal) {
  const raw = storage.blobs.read(instance.blobName, undefined, signal);
  const actual = requested === '*' ? instance.transferSyntaxUid : requested;
  if (actual === instance.transferSyntaxUid) return { body: raw, transferSyntax: actual, length: instance.size };
  return { body: transcode(raw, instance.transferSyntaxUid, actual), transferSyntax: actual, length: undefined };
}
