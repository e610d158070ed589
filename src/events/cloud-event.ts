import { createHash } from 'node:crypto';
import type { ChangeEntry } from '../storage/ports.js';

/** The event types of the Azure DICOM service (Azure Health Data Services events). */
export const DicomEventType = {
  created: 'Microsoft.HealthcareApis.DicomImageCreated',
  updated: 'Microsoft.HealthcareApis.DicomImageUpdated',
  deleted: 'Microsoft.HealthcareApis.DicomImageDeleted',
} as const;

export type DicomEventTypeName = (typeof DicomEventType)[keyof typeof DicomEventType];

/** The data of a DICOM image event, with the fields and names the Azure service gives it. */
export interface DicomEventData {
  readonly partitionName: string;
  readonly imageStudyInstanceUid: string;
  readonly imageSeriesInstanceUid: string;
  readonly imageSopInstanceUid: string;
  readonly serviceHostName: string;
  readonly sequenceNumber: number;
}

/** A CloudEvents 1.0 event in its JSON format (structured mode). */
export interface DicomCloudEvent {
  readonly specversion: '1.0';
  readonly id: string;
  readonly source: string;
  readonly type: DicomEventTypeName;
  readonly subject: string;
  readonly time: string;
  /** JSON; no datacontenttype, which then means application/json, as in the Azure service's events. */
  readonly data: DicomEventData;
}

/** Who the events say they come from (docs/conformance.md "Events"). */
export interface EventIdentity {
  /** CloudEvents `source`: in Azure, the resource ID of the emitting resource. */
  readonly source: string;
  /** `data.serviceHostName` and the start of `subject`: the server's host name. */
  readonly serviceHostName: string;
}

/** The Azure service has one partition unless data partitions are enabled, and calls it this. */
export const DEFAULT_PARTITION = 'Microsoft.Default';

/**
 * The event type of a change feed action. Matched loosely ('create', 'Created', 'update',
 * 'Updated'…) so that actions other writers log under either spelling map the same way;
 * undefined for an action that is no image change.
 */
export function eventTypeOf(action: string): DicomEventTypeName | undefined {
  const verb = action.toLowerCase().replace(/d$/, '');
  if (verb === 'create') return DicomEventType.created;
  if (verb === 'update') return DicomEventType.updated;
  if (verb === 'delete') return DicomEventType.deleted;
  return undefined;
}

/**
 * A UUID made from the change (SHA-1, formatted as a version 5 UUID): a re-publication of the
 * same change carries the same id, so a consumer can drop what it has seen. The version is part
 * of it, so a feed that starts over (a new index table) never reuses an id.
 */
export function eventId(entry: Pick<ChangeEntry, 'sequence' | 'action' | 'version'>): string {
  const hash = createHash('sha1').update(`dicomweb-event|${entry.sequence}|${entry.action}|${entry.version}`).digest();
  hash[6] = ((hash[6] ?? 0) & 0x0f) | 0x50;
  hash[8] = ((hash[8] ?? 0) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The event of one change feed entry, or undefined when its action is no image change. */
export function toCloudEvent(entry: ChangeEntry, identity: EventIdentity): DicomCloudEvent | undefined {
  const type = eventTypeOf(entry.action);
  if (!type) return undefined;
  const { studyInstanceUid, seriesInstanceUid, sopInstanceUid } = entry.key;
  return {
    specversion: '1.0',
    id: eventId(entry),
    source: identity.source,
    type,
    // The Azure service names the partition in the path of its Updated events only.
    subject: `${identity.serviceHostName}/v1/${type === DicomEventType.updated ? `partitions/${DEFAULT_PARTITION}/` : ''}studies/${studyInstanceUid}/series/${seriesInstanceUid}/instances/${sopInstanceUid}`,
    time: entry.timestamp,
    data: {
      partitionName: DEFAULT_PARTITION,
      imageStudyInstanceUid: studyInstanceUid,
      imageSeriesInstanceUid: seriesInstanceUid,
      imageSopInstanceUid: sopInstanceUid,
      serviceHostName: identity.serviceHostName,
      sequenceNumber: entry.sequence,
    },
  };
}
