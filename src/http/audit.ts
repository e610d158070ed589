import { randomUUID } from 'node:crypto';
import type { StorageCounts } from '../util/storage-meter.js';

/**
 * One structured record per request, for Application Insights / Log Analytics queries. It names
 * the caller by object and app ID and the study by UID; never a token or a patient's name.
 * It is written when the response has ended (its body sent, failed or cancelled), so `storage`
 * counts the reads that streamed the body too; `durationMs` is the time to the response headers.
 */
export interface AuditRecord {
  readonly type: 'dicomweb.request';
  readonly time: string;
  readonly correlationId: string;
  readonly method: string;
  readonly route: string;
  readonly apiVersion: string | undefined;
  readonly studyInstanceUid: string | undefined;
  readonly status: number;
  readonly durationMs: number;
  readonly callerObjectId: string | undefined;
  readonly callerAppId: string | undefined;
  /** The storage round trips this request made, by kind (docs/storage.md, "Operations per request"). */
  readonly storage: StorageCounts;
}

export type AuditSink = (record: AuditRecord) => void;

export const consoleAudit: AuditSink = (record) => {
  console.log(JSON.stringify(record));
};

/** The caller's correlation ID when it is a plausible one, else a new one. */
export function correlationIdOf(request: Request): string {
  const given = request.headers.get('x-correlation-id') ?? request.headers.get('x-ms-client-request-id');
  return given && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
}
