/**
 * Change feed entries, typed. Property names are matched case-insensitively (PascalCase as the
 * Azure documentation writes them, but clients should not depend on it: docs/conformance.md).
 */
import type { DicomJsonDataset } from './dicom-json.js';

export interface ChangeFeedEntry {
  /** 1, 2, 3 … without gaps. */
  readonly sequence: number;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly sopInstanceUid: string;
  /** `create` or `delete`. */
  readonly action: string;
  /** ISO 8601 UTC. */
  readonly timestamp: string;
  /** `current`, `replaced` or `deleted`. */
  readonly state: string;
  readonly metadata?: DicomJsonDataset | undefined;
}

export interface ChangeFeedPageOptions {
  /** Entries after this Sequence (default 0: from the start). */
  readonly after?: number;
  /** Entries per request (default 100, the most both API versions allow). */
  readonly limit?: number;
  /** Each entry's DICOM JSON (default false: the feed is read for its events). */
  readonly includeMetadata?: boolean;
  readonly signal?: AbortSignal;
}

export interface ChangeFeedFollowOptions extends ChangeFeedPageOptions {
  /** Keep polling for new entries once the feed is read to its end (default false). */
  readonly follow?: boolean;
  /** Pause between polls at the end of the feed (default 2 s). */
  readonly pollIntervalMs?: number;
}

export const CHANGE_FEED_PAGE = 100;

function lowerKeys(entry: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(entry).map(([key, value]) => [key.toLowerCase(), value]));
}

const str = (value: unknown): string => (typeof value === 'string' ? value : '');

export function changeFeedEntry(raw: unknown): ChangeFeedEntry {
  const entry = lowerKeys(raw as Record<string, unknown>);
  const metadata = entry['metadata'];
  return {
    sequence: Number(entry['sequence']),
    studyInstanceUid: str(entry['studyinstanceuid']),
    seriesInstanceUid: str(entry['seriesinstanceuid']),
    sopInstanceUid: str(entry['sopinstanceuid']),
    action: str(entry['action']).toLowerCase(),
    timestamp: str(entry['timestamp']),
    state: str(entry['state']).toLowerCase(),
    metadata: metadata && typeof metadata === 'object' ? (metadata as DicomJsonDataset) : undefined,
  };
}
