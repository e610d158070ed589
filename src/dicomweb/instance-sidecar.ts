import type { DicomJson } from '../dicom/dicom-json-model.js';
import type { FrameRanges } from '../dicom/frame-table.js';
import { stringifyDicomJson } from '../dicom/json-stringify.js';

/**
 * What is computed once at store time and kept beside each instance's blob: its DICOM JSON
 * metadata (WADO-RS metadata without re-reading the file) and its frames' byte ranges (a frame
 * is one ranged read whatever the instance size).
 */
export interface InstanceSidecar {
  /** DICOM JSON; BulkDataURIs start with INSTANCE_URL, replaced by the instance's URL when served. */
  readonly metadata: Record<string, unknown>;
  /** Byte ranges of each frame in the stored file, when it has pixel data whose frames can be located. */
  readonly frames: FrameRanges[] | null;
}

export const INSTANCE_URL = '{{instance}}';

/** Metadata keys in ascending tag order (plain JSON.stringify would put all-digit tags first). */
export function encodeSidecar(sidecar: InstanceSidecar): Uint8Array {
  const metadata = stringifyDicomJson(sidecar.metadata as DicomJson);
  return Buffer.from(`{"metadata":${metadata},"frames":${JSON.stringify(sidecar.frames)}}`, 'utf8');
}

/** The metadata JSON text with its bulk data URIs pointing at `instanceUrl`. */
export function metadataText(raw: Uint8Array, instanceUrl: string): string {
  const text = Buffer.from(raw).toString('utf8');
  const start = text.indexOf('"metadata":') + '"metadata":'.length;
  const end = text.lastIndexOf(',"frames":');
  return text.slice(start, end).replaceAll(`"${INSTANCE_URL}`, `"${instanceUrl}`);
}

export function decodeSidecar(raw: Uint8Array): InstanceSidecar {
  return JSON.parse(Buffer.from(raw).toString('utf8')) as InstanceSidecar;
}
