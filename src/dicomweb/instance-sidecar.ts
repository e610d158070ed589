import { deflateRawSync, inflateRawSync } from 'node:zlib';
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

/** Metadata JSON text, keys in ascending tag order (plain JSON.stringify would put all-digit tags first). */
export function encodeMetadata(sidecar: InstanceSidecar): string {
  return stringifyDicomJson(sidecar.metadata as DicomJson);
}

export function encodeSidecar(sidecar: InstanceSidecar, metadataJson = encodeMetadata(sidecar)): Uint8Array {
  return Buffer.from(`{"metadata":${metadataJson},"frames":${JSON.stringify(sidecar.frames)}}`, 'utf8');
}

/** Stored metadata JSON with its bulk data URIs pointing at `instanceUrl`. */
export function withInstanceUrl(metadataJson: string, instanceUrl: string): string {
  return metadataJson.replaceAll(`"${INSTANCE_URL}`, `"${instanceUrl}`);
}

/** The metadata JSON text of a sidecar, its bulk data URIs still relative (INSTANCE_URL). */
export function storedMetadataText(raw: Uint8Array): string {
  const text = Buffer.from(raw).toString('utf8');
  const start = text.indexOf('"metadata":') + '"metadata":'.length;
  const end = text.lastIndexOf(',"frames":');
  return text.slice(start, end);
}

/** The metadata JSON text of a sidecar with its bulk data URIs pointing at `instanceUrl`. */
export function metadataText(raw: Uint8Array, instanceUrl: string): string {
  return withInstanceUrl(storedMetadataText(raw), instanceUrl);
}

export function decodeSidecar(raw: Uint8Array): InstanceSidecar {
  return JSON.parse(Buffer.from(raw).toString('utf8')) as InstanceSidecar;
}

/** A sidecar as kept in an index row: small, so compressed in one synchronous call. */
export function deflateSidecar(raw: Uint8Array): Uint8Array {
  return deflateRawSync(raw);
}

export function inflateSidecar(deflated: Uint8Array): Uint8Array {
  return inflateRawSync(deflated);
}
