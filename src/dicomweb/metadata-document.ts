import { metadataDocumentName } from '../storage/keys.js';
import type { InstanceKey, InstanceRecord, Storage } from '../storage/ports.js';
import type { FailureLog } from './errors.js';

/**
 * Study and series metadata as one blob, built by the first read after a change and served
 * by later reads: a viewer opening a study asks for its metadata again and again, and one blob
 * read is several times faster than the query of the study's partition that builds it (Table
 * queries return the instance rows page by page, each with its compressed sidecar).
 *
 * The document names the study revision it was built at (InstanceIndex.studyRevision: the study
 * row's ETag, which every store, removal and deletion mark changes). A read takes it only while
 * the revision is still the same, so it never shows a removed instance or misses a new one;
 * a stale one is rebuilt and replaced by the next read.
 */

/** One instance of a document, in response order. */
export interface DocumentEntry {
  readonly key: InstanceKey;
  readonly version: string;
  /** Metadata JSON with its bulk data URIs still relative (INSTANCE_URL). */
  readonly json: string;
}

const CONTENT_TYPE = 'text/plain; charset=utf-8';

/** `{revision}\n` then `{series}\t{sop}\t{version}\t{json}\n` per instance: JSON text has no raw tab or newline. */
function encode(revision: string, study: string, entries: readonly DocumentEntry[]): Uint8Array {
  const lines = entries.map(
    (entry) => `${entry.key.seriesInstanceUid}\t${entry.key.sopInstanceUid}\t${entry.version}\t${entry.json}\n`,
  );
  return Buffer.from(`${revision}\t${study}\n${lines.join('')}`, 'utf8');
}

function decode(bytes: Uint8Array): { revision: string; entries: DocumentEntry[] } | undefined {
  const text = Buffer.from(bytes).toString('utf8');
  const first = text.indexOf('\n');
  if (first < 0) return undefined;
  const [revision, study] = text.slice(0, first).split('\t');
  if (!revision || !study) return undefined;
  const entries: DocumentEntry[] = [];
  for (let start = first + 1; start < text.length;) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    const a = line.indexOf('\t');
    const b = line.indexOf('\t', a + 1);
    const c = line.indexOf('\t', b + 1);
    if (a < 0 || b < 0 || c < 0) return undefined;
    entries.push({
      key: { studyInstanceUid: study, seriesInstanceUid: line.slice(0, a), sopInstanceUid: line.slice(a + 1, b) },
      version: line.slice(b + 1, c),
      json: line.slice(c + 1),
    });
    start = end + 1;
  }
  return { revision, entries };
}

export interface DocumentRead {
  /** The document's entries when it is current. */
  readonly entries: DocumentEntry[] | undefined;
  /** The study revision read alongside (undefined: no study row), for saving a rebuilt document. */
  readonly revision: string | undefined;
}

/** A blob kept for one study revision, read together with the study's revision now (in parallel). */
export function withStudyRevision(
  storage: Storage,
  studyInstanceUid: string,
  blobName: string,
): Promise<[string | undefined, Uint8Array | undefined]> {
  return Promise.all([storage.index.studyRevision(studyInstanceUid), storage.blobs.readSmall(blobName)]);
}

/** The current document of a study or series, if there is one (the revision and the blob read at once). */
export async function readMetadataDocument(
  storage: Storage,
  studyInstanceUid: string,
  seriesInstanceUid: string | undefined,
): Promise<DocumentRead> {
  const [revision, bytes] = await withStudyRevision(
    storage,
    studyInstanceUid,
    metadataDocumentName(studyInstanceUid, seriesInstanceUid),
  );
  const document = bytes && decode(bytes);
  const current = revision !== undefined && document?.revision === revision;
  return { entries: current ? document.entries : undefined, revision };
}

/**
 * Saves a document built from the index at `revision`, if the study is still at that revision
 * (otherwise the instances read may be a mix of two states). Best effort: a failure only means
 * the next read builds it again.
 */
export async function saveMetadataDocument(
  storage: Storage,
  studyInstanceUid: string,
  seriesInstanceUid: string | undefined,
  revision: string,
  instances: readonly InstanceRecord[],
  texts: readonly string[],
  log: FailureLog,
): Promise<void> {
  try {
    if ((await storage.index.studyRevision(studyInstanceUid)) !== revision) return;
    const entries = instances.map((instance, i) => ({
      key: instance,
      version: instance.version,
      json: texts[i] ?? '',
    }));
    const name = metadataDocumentName(studyInstanceUid, seriesInstanceUid);
    await storage.blobs.writeSmall(name, encode(revision, studyInstanceUid, entries), CONTENT_TYPE, {});
  } catch (error) {
    log(`saving the metadata document of ${studyInstanceUid} failed; the next read builds it again`, error);
  }
}
