import type { ChangeEntry, InstanceRecord, Storage } from '../storage/ports.js';
import { readStoredSidecar } from './retrieve.js';

export type ChangeState = 'current' | 'replaced' | 'deleted';

export interface ChangeFeedItem {
  readonly entry: ChangeEntry;
  readonly state: ChangeState;
  /** The DICOM JSON text of the instance's current version, when asked for and it still exists. */
  readonly metadata?: string | undefined;
}

/**
 * Adds to each entry what changes after it was written, as the Azure service does: its state
 * (the instance is still that version, was replaced by a newer one, or is gone) and the current
 * version's metadata. One index read per distinct instance on the page.
 */
export async function describeChanges(
  storage: Storage,
  entries: readonly ChangeEntry[],
  includeMetadata: boolean,
  instanceUrl: (instance: InstanceRecord) => string,
  metadataText: (raw: Uint8Array, url: string) => string,
): Promise<ChangeFeedItem[]> {
  const keyOf = (entry: ChangeEntry) =>
    `${entry.key.studyInstanceUid}|${entry.key.seriesInstanceUid}|${entry.key.sopInstanceUid}`;
  const current = new Map<string, Promise<{ record: InstanceRecord | undefined; metadata: string | undefined }>>();
  for (const entry of entries) {
    const key = keyOf(entry);
    if (current.has(key)) continue;
    current.set(
      key,
      (async () => {
        const record = await storage.index.getInstance(entry.key);
        if (!record || !includeMetadata) return { record, metadata: undefined };
        // Deleted between the two reads: the delete won, so the entry reads as deleted.
        const raw = await readStoredSidecar(storage, record);
        return raw
          ? { record, metadata: metadataText(raw, instanceUrl(record)) }
          : { record: undefined, metadata: undefined };
      })(),
    );
  }
  return Promise.all(
    entries.map(async (entry) => {
      const { record, metadata } = (await current.get(keyOf(entry))) ?? { record: undefined, metadata: undefined };
      const state: ChangeState = !record ? 'deleted' : record.version === entry.version ? 'current' : 'replaced';
      return { entry, state, metadata };
    }),
  );
}
