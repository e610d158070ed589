import { seriesMetadataLogName } from '../storage/keys.js';
import { APPEND_BLOCK_LIMIT, type InstanceKey, type InstanceRecord, type Storage } from '../storage/ports.js';
import type { FailureLog } from './errors.js';
import { metadataText, withInstanceUrl } from './instance-sidecar.js';
import { readStoredSidecar } from './retrieve.js';

/**
 * Study and series metadata without one blob read per instance (the metadata log of
 * docs/storage.md "Blobs"). Each stored instance adds `{sop}\t{version}\t{metadata JSON}\n` to its series'
 * append blob; a reader takes from the log exactly the versions the index lists, so records of replaced,
 * deleted or never-committed versions are skipped, and any instance the log lacks (an append
 * that failed, a series past the append blob's block limit) is read from its sidecar instead.
 */

const CONTENT_TYPE = 'text/plain; charset=utf-8';

/** Sidecars read at once for the instances a log lacks. */
const FALLBACK_PARALLELISM = 32;

/** A series' lines gathered in one request are appended in one block, or sooner once this large. */
const FLUSH_BYTES = 1024 * 1024;

/**
 * The series log lines of one STOW request: gathered per series and appended as one block each
 * (a multipart request of one series costs one append, not one per instance). Best effort:
 * readers fall back to the sidecar, so a failed append never fails the store; it is logged.
 */
export class SeriesLogWriter {
  private readonly batches = new Map<string, { lines: Buffer[]; bytes: number; likelyNew: boolean }>();
  /** Logs this request has appended to (a later block of a series is never its first). */
  private readonly appended = new Set<string>();
  private readonly writes: Promise<void>[] = [];

  constructor(
    private readonly storage: Storage,
    private readonly log: FailureLog,
  ) {}

  /** `newSeries`: this request created the series row, so its log most likely does not exist yet. */
  add(key: InstanceKey, version: string, metadataJson: string, newSeries = false): void {
    // JSON text has no raw tab or newline (they are escaped), so a line splits unambiguously.
    const line = Buffer.from(`${key.sopInstanceUid}\t${version}\t${metadataJson}\n`, 'utf8');
    if (line.byteLength > APPEND_BLOCK_LIMIT) return;
    const name = seriesMetadataLogName(key.studyInstanceUid, key.seriesInstanceUid);
    let batch = this.batches.get(name);
    if (batch && batch.bytes + line.byteLength > APPEND_BLOCK_LIMIT) {
      this.flush(name);
      batch = undefined;
    }
    if (!batch) {
      batch = { lines: [], bytes: 0, likelyNew: false };
      this.batches.set(name, batch);
    }
    if (newSeries && !this.appended.has(name)) batch.likelyNew = true;
    batch.lines.push(line);
    batch.bytes += line.byteLength;
    if (batch.bytes >= FLUSH_BYTES) this.flush(name);
  }

  /** Appends what is still gathered and waits for every append of the request. */
  async done(): Promise<void> {
    for (const name of [...this.batches.keys()]) this.flush(name);
    await Promise.all(this.writes);
  }

  private flush(name: string): void {
    const batch = this.batches.get(name);
    this.batches.delete(name);
    if (!batch) return;
    const block = Buffer.concat(batch.lines, batch.bytes);
    this.appended.add(name);
    this.writes.push(
      this.storage.blobs.append(name, block, CONTENT_TYPE, { likelyNew: batch.likelyNew }).catch((error: unknown) => {
        this.log(`appending to the series metadata log ${name} failed; its readers use the sidecars`, error);
      }),
    );
  }
}

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
 * Metadata JSON texts of `instances`, in their order, with bulk data URIs resolved by
 * `instanceUrl`; undefined for an instance a concurrent delete removed since it was listed.
 */
export async function metadataOf(
  storage: Storage,
  instances: readonly InstanceRecord[],
  instanceUrl: (instance: InstanceRecord) => string,
): Promise<(string | undefined)[]> {
  const texts = new Array<string | undefined>(instances.length);
  const missing: number[] = [];
  if (instances.length === 1) {
    missing.push(0);
  } else {
    const series = [...new Set(instances.map((instance) => instance.seriesInstanceUid))];
    const study = instances[0]?.studyInstanceUid ?? '';
    const logs = new Map<string, Map<string, string>>();
    await Promise.all(
      series.map(async (uid) => {
        const bytes = await storage.blobs.readSmall(seriesMetadataLogName(study, uid));
        logs.set(uid, bytes ? parseLog(bytes) : new Map<string, string>());
      }),
    );
    instances.forEach((instance, i) => {
      const json = logs.get(instance.seriesInstanceUid)?.get(instance.version);
      if (json === undefined) missing.push(i);
      else texts[i] = withInstanceUrl(json, instanceUrl(instance));
    });
  }
  for (let i = 0; i < missing.length; i += FALLBACK_PARALLELISM) {
    const slice = missing.slice(i, i + FALLBACK_PARALLELISM);
    await Promise.all(
      slice.map(async (n) => {
        const instance = instances[n] as InstanceRecord;
        const raw = await readStoredSidecar(storage, instance);
        texts[n] = raw && metadataText(raw, instanceUrl(instance));
      }),
    );
  }
  return texts;
}

/** Removes the logs of series that no longer have instances (their records would only be skipped). */
export async function deleteSeriesLogs(
  storage: Storage,
  studyInstanceUid: string,
  seriesInstanceUids: Iterable<string>,
): Promise<void> {
  const names = [...seriesInstanceUids].map((uid) => seriesMetadataLogName(studyInstanceUid, uid));
  await storage.blobs.deleteMany(names);
}
