import { metadataDocumentName, seriesMetadataLogName, studyThumbnailsName } from '../storage/keys.js';
import type { InstanceRecord, Storage } from '../storage/ports.js';
import { inflateSidecar, storedMetadataText } from './instance-sidecar.js';
import { readStoredSidecar } from './retrieve.js';

/**
 * Study and series metadata without one blob read per instance. An instance's metadata is kept
 * in its index row (compressed, with its frame table), so the query that lists a study's
 * instances brings their metadata too. Instances stored before that, and those whose header is
 * too large for a row, have a sidecar blob; for them the series metadata log of older versions
 * (docs/storage.md "Blobs": `{sop}\t{version}\t{metadata JSON}` per line, one append blob per
 * series) is read when it helps, taking exactly the versions the index lists, and any instance the
 * log lacks is read from its sidecar.
 */

/** Sidecars read at once for the instances a log lacks. */
const FALLBACK_PARALLELISM = 32;

/** The metadata JSON of each version a series log holds, by version. */
function parseLog(bytes: Uint8Array): Map<string, string> {
  const byVersion = new Map<string, string>();
  const text = Buffer.from(bytes).toString('utf8');
  for (let start = 0; start < text.length;) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const first = text.indexOf('\t', start);
    const second = first < 0 ? -1 : text.indexOf('\t', first + 1);
    if (second > 0 && second < end) byVersion.set(text.slice(first + 1, second), text.slice(second + 1, end));
    start = end + 1;
  }
  return byVersion;
}

/**
 * Metadata JSON texts of `instances`, in their order, their bulk data URIs still relative
 * (withInstanceUrl resolves them); undefined for an instance a concurrent delete removed since it
 * was listed.
 */
export async function metadataOf(
  storage: Storage,
  instances: readonly InstanceRecord[],
): Promise<(string | undefined)[]> {
  const texts = new Array<string | undefined>(instances.length);
  const missing: number[] = [];
  const elsewhere = instances.flatMap((instance, i) => {
    if (!instance.inlineSidecar) return [i];
    texts[i] = storedMetadataText(inflateSidecar(instance.inlineSidecar));
    return [];
  });
  if (elsewhere.length === 1) {
    missing.push(...elsewhere);
  } else if (elsewhere.length > 1) {
    const series = [...new Set(elsewhere.map((i) => (instances[i] as InstanceRecord).seriesInstanceUid))];
    const study = instances[0]?.studyInstanceUid ?? '';
    const logs = new Map<string, Map<string, string>>();
    await Promise.all(
      series.map(async (uid) => {
        const bytes = await storage.blobs.readSmall(seriesMetadataLogName(study, uid));
        logs.set(uid, bytes ? parseLog(bytes) : new Map<string, string>());
      }),
    );
    elsewhere.forEach((i) => {
      const instance = instances[i] as InstanceRecord;
      const json = logs.get(instance.seriesInstanceUid)?.get(instance.version);
      if (json === undefined) missing.push(i);
      else texts[i] = json;
    });
  }
  for (let i = 0; i < missing.length; i += FALLBACK_PARALLELISM) {
    const slice = missing.slice(i, i + FALLBACK_PARALLELISM);
    await Promise.all(
      slice.map(async (n) => {
        const instance = instances[n] as InstanceRecord;
        const raw = await readStoredSidecar(storage, instance);
        texts[n] = raw && storedMetadataText(raw);
      }),
    );
  }
  return texts;
}

/**
 * Removes what series that no longer have instances leave beside their instances: their metadata
 * logs (their records would only be skipped), cached metadata documents and thumbnails, and the
 * study's document and thumbnails (stale now; see metadata-document.ts, thumbnail-cache.ts).
 */
export async function deleteSeriesMetadataBlobs(
  storage: Storage,
  studyInstanceUid: string,
  seriesInstanceUids: Iterable<string>,
): Promise<void> {
  const names = [...seriesInstanceUids].flatMap((uid) => [
    seriesMetadataLogName(studyInstanceUid, uid),
    metadataDocumentName(studyInstanceUid, uid),
    studyThumbnailsName(studyInstanceUid, uid),
  ]);
  await storage.blobs.deleteMany([
    ...names,
    metadataDocumentName(studyInstanceUid),
    studyThumbnailsName(studyInstanceUid),
  ]);
}
