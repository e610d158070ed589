import type { ApiVersion } from '../dicomweb/api-version.js';
import type { FrameDecoder } from '../dicom/render/frame-decoder.js';

export type { FrameDecoder };
import type { FailureLog } from '../dicomweb/errors.js';
import type { DuplicatePolicy } from '../dicomweb/store.js';

export type { DuplicatePolicy };
import type { Storage } from '../storage/ports.js';
import type { ThumbnailMemory } from '../dicomweb/thumbnail-cache.js';
import type { FrameTableMemory } from '../dicomweb/frame-table-memory.js';

export interface AppConfig {
  /** Overrides the request origin in RetrieveURLs (e.g. https://dicom.example.org). */
  readonly publicBaseUrl: string | undefined;
  /** Most header bytes held in memory per instance while it is stored. */
  readonly maxHeaderBytes: number;
  /** Status of a search without matches: 200 with [] (PS3.18 after CP-2473), or 204 as Azure answers. */
  readonly emptySearchStatus: 200 | 204;
  /** DICOMWEB_DUPLICATE_POLICY: what a POST of an instance already stored gets (default 'reject': 45070). */
  readonly duplicatePolicy?: DuplicatePolicy | undefined;
  /**
   * False only in the benchmark, to price the whole-stream structure check against the same build
   * without it; no setting turns it off.
   */
  readonly validateStructure?: boolean | undefined;
  /** Longest life of an upload session and its upload URL (default DEFAULT_UPLOAD_SESSION_MINUTES). */
  readonly uploadSessionMinutes?: number | undefined;
}

/** Two hours: a 5 GB instance at 50 Mbit/s takes about 15 minutes. */
export const DEFAULT_UPLOAD_SESSION_MINUTES = 120;

export interface RequestContext {
  /** v2 for unversioned routes, which do not depend on it. */
  readonly apiVersion: ApiVersion;
  readonly params: Readonly<Record<string, string>>;
  readonly storage: Storage;
  readonly config: AppConfig;
  /** The app's logger for failures no response reports; it names the request's correlation id. */
  readonly log: FailureLog;
  /** Decodes compressed frames for rendering; without one, only native pixel data is rendered. */
  readonly decodeFrame?: FrameDecoder | undefined;
  /** The app's thumbnail cache blobs held in memory (one per app, bounded). */
  readonly thumbnails?: ThumbnailMemory | undefined;
  /** Frame tables of instance versions this app served frames of (one per app, bounded). */
  readonly frameTables?: FrameTableMemory | undefined;
}

export type Handler = (request: Request, context: RequestContext) => Promise<Response>;
