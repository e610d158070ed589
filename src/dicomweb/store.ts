import { DicomAttributes } from '../dicom/attributes.js';
import { DicomHeaderReader, InvalidDicomError, type DicomHeader } from '../dicom/header-reader.js';
import { FragmentScanner, type EncapsulatedLayout } from '../dicom/fragments.js';
import { DicomStructureValidator, StructureError } from '../dicom/structure/structure-validator.js';
import { instanceBlobMetadata, instanceBlobName, newVersion, sidecarBlobName } from '../storage/keys.js';
import {
  StorageUnavailableError,
  type BlobUpload,
  type InstanceKey,
  type InstanceRecord,
  type PendingBlob,
  type Storage,
} from '../storage/ports.js';
import { drain } from '../util/streams.js';
import { deleteInstanceBlobs } from './delete.js';
import { DicomwebError, type FailureLog } from './errors.js';
import { encodeMetadata, encodeSidecar } from './instance-sidecar.js';
import { SeriesLogWriter } from './series-metadata.js';
import { buildSidecar } from './sidecar-builder.js';
import { FailureReason, WarningReason, type FailureReasonCode, type WarningReasonCode } from './failure-codes.js';
import type { ApiVersion } from './api-version.js';
import { isInvalid, validateInstance, type ValidInstance } from './instance-validation.js';
import { DEFAULT_ORPHAN_AGE_MS } from './sweep-orphans.js';

/** One part of a STOW request as the HTTP layer hands it over. */
export interface IncomingInstance {
  /** The part's media type (lower-case, without parameters), if it had one. */
  readonly mediaType: string | undefined;
  readonly body: AsyncIterable<Uint8Array>;
}

export interface StoreOptions {
  readonly apiVersion: ApiVersion;
  /** The study named in the path of `POST /studies/{study}`. */
  readonly studyInstanceUid?: string | undefined;
  /** Most header bytes (everything before Pixel Data) held in memory per instance. */
  readonly maxHeaderBytes: number;
  /** Walk every element to the last byte (false only in the benchmark, to price it). */
  readonly validateStructure?: boolean | undefined;
  /**
   * Where failures the response does not report are told (a change feed append, the removal of
   * a staged copy: the orphan sweep finishes them); the app's logger names the request's
   * correlation id. Default: a warning on the console.
   */
  readonly log?: FailureLog | undefined;
}

const warnOnConsole: FailureLog = (message, error) => {
  console.warn(`[dicomweb] ${message}:`, error);
};

export interface StoredInstance {
  readonly key: InstanceKey;
  readonly sopClassUid: string;
  readonly warningReason?: WarningReasonCode | undefined;
  /** ErrorComments of attributes that were not indexed (v2). */
  readonly problems: readonly string[];
  /** The stored version, for its change feed entry. */
  readonly version: string;
  /** The pending note to clear once the change feed has the entry. */
  readonly note?: PendingBlob | undefined;
}

export interface FailedInstance {
  readonly sopClassUid?: string | undefined;
  readonly sopInstanceUid?: string | undefined;
  readonly reason: FailureReasonCode;
  /** What a person needs to fix it: ErrorComments in Azure's form, or why the file is unreadable. */
  readonly problems: readonly string[];
}

export interface StoreResult {
  readonly stored: StoredInstance[];
  readonly failed: FailedInstance[];
  /** The study all stored instances belong to, when there is exactly one. */
  readonly studyInstanceUid: string | undefined;
}

/**
 * An instance whose bytes are committed (blob and sidecar, covered by a pending note) but not yet
 * indexed: nothing can find it until its index rows are written. Only what the index needs is
 * kept, not the header, so a request of many parts holds a few KiB per instance.
 */
interface StagedInstance {
  readonly record: InstanceRecord;
  readonly sopClassUid: string;
  readonly warningReason: WarningReasonCode | undefined;
  readonly problems: readonly string[];
  readonly metadataJson: string;
  readonly note: PendingBlob;
}

/**
 * A staged instance older than this is checked before it is indexed: the orphan sweep removes
 * the blobs of notes older than DEFAULT_ORPHAN_AGE_MS, and a very slow request could reach that.
 */
const RECHECK_AFTER_MS = DEFAULT_ORPHAN_AGE_MS / 2;

/**
 * STOW-RS (PS3.18 §10.5) in two phases. While the body streams, each part's header is read, the
 * instance validated and its bytes committed to a blob no index row refers to yet (invisible).
 * Only once the whole envelope has closed cleanly are the instances indexed, so a body that
 * breaks half-way (no close delimiter, a part cut short, the client gone, the size limit) makes
 * nothing visible and its blobs are removed. Failures of one instance are data; a broken request
 * body or a storage outage before anything was indexed is thrown.
 */
export async function storeInstances(
  storage: Storage,
  instances: AsyncIterable<IncomingInstance>,
  options: StoreOptions,
): Promise<StoreResult> {
  const staged: StagedInstance[] = [];
  const failed: FailedInstance[] = [];
  const log = options.log ?? warnOnConsole;
  try {
    for await (const incoming of instances) {
      const first = staged.length + failed.length === 0;
      if (incoming.mediaType !== undefined && incoming.mediaType !== 'application/dicom') {
        // Azure answers 415 for the whole request; once earlier parts are stored, only this one can fail.
        if (first) {
          throw new DicomwebError(
            'UnsupportedMediaType',
            `The part's media type ${incoming.mediaType} is not supported; each part must be application/dicom.`,
          );
        }
        await drain(incoming.body);
        failed.push({
          reason: FailureReason.ProcessingFailure,
          problems: [`The part's media type ${incoming.mediaType} is not supported; send application/dicom.`],
        });
        continue;
      }
      const outcome = await stageOne(storage, incoming, options, log);
      if ('reason' in outcome) failed.push(outcome);
      else staged.push(outcome);
    }
  } catch (error) {
    await Promise.all(staged.map((instance) => removeOrphan(storage, instance.note, log)));
    throw error;
  }
  const stored = await indexAll(storage, staged, failed, log);
  const studies = new Set(stored.map((instance) => instance.key.studyInstanceUid));
  const only = studies.size === 1 ? [...studies][0] : undefined;
  return { stored, failed, studyInstanceUid: only ?? (stored.length === 0 ? options.studyInstanceUid : undefined) };
}

/**
 * The envelope closed cleanly: index the staged instances in request order, then publish them.
 * If storage fails part-way, the instances already indexed stay (they are complete) and the
 * rest fail with 272; when none was indexed, the outage is thrown (503).
 */
async function indexAll(
  storage: Storage,
  staged: readonly StagedInstance[],
  failed: FailedInstance[],
  log: FailureLog,
): Promise<StoredInstance[]> {
  const stored: StoredInstance[] = [];
  const seriesLog = new SeriesLogWriter(storage, log);
  let outage: StorageUnavailableError | undefined;
  for (const instance of staged) {
    let indexed: Indexed = { failed: failedFor(instance, FailureReason.ProcessingFailure, UNAVAILABLE) };
    if (!outage) {
      try {
        indexed = await indexOne(storage, instance);
      } catch (error) {
        if (!(error instanceof StorageUnavailableError)) {
          await Promise.all(staged.map((each) => removeUnindexed(storage, each, log)));
          throw error;
        }
        outage = error;
      }
    }
    if ('failed' in indexed) {
      failed.push(indexed.failed);
      await removeOrphan(storage, instance.note, log);
      continue;
    }
    seriesLog.add(instance.record, instance.record.version, instance.metadataJson, indexed.newSeries);
    stored.push({
      key: instance.record,
      sopClassUid: instance.sopClassUid,
      warningReason: instance.warningReason,
      problems: instance.problems,
      version: instance.record.version,
      note: instance.note,
    });
  }
  if (stored.length === 0 && outage) throw outage;
  await publish(storage, stored, seriesLog, log);
  return stored;
}

const UNAVAILABLE = 'The storage service became unavailable before this instance was indexed; send it again.';

/**
 * What indexing a staged instance came to: its failure, or indexed (`newSeries`: it created its
 * series row, so the series' metadata log is most likely new).
 */
type Indexed = { readonly failed: FailedInstance } | { readonly newSeries: boolean };

/** Writes one staged instance's index rows. */
async function indexOne(storage: Storage, instance: StagedInstance): Promise<Indexed> {
  if (Date.now() - instance.note.createdAt.getTime() > RECHECK_AFTER_MS) {
    const sidecar = await storage.blobs.readSmall(sidecarBlobName(instance.note.blobName));
    if (!sidecar) {
      return {
        failed: failedFor(
          instance,
          FailureReason.ProcessingFailure,
          'The request took so long that the staged copy of this instance was cleaned up; send it again.',
        ),
      };
    }
  }
  const outcome = await storage.index.addInstance(instance.record);
  if (outcome === 'exists') return { failed: alreadyStored(instance.record, instance.sopClassUid) };
  if (outcome === 'deleting') {
    return {
      failed: failedFor(
        instance,
        FailureReason.ProcessingFailure,
        `The ${instance.record.studyInstanceUid} study (or this series) is being deleted; send the instance again once the delete has finished.`,
      ),
    };
  }
  return { newSeries: outcome === 'added-series' };
}

/** After an unexpected error: removes what is staged unless the index already refers to it. */
async function removeUnindexed(storage: Storage, instance: StagedInstance, log: FailureLog): Promise<void> {
  try {
    if (await storage.index.isReferenced(instance.record, instance.record.version)) return;
  } catch (error) {
    log('checking whether a staged instance was indexed failed; its pending note stays for the orphan sweep', error);
    return;
  }
  await removeOrphan(storage, instance.note, log);
}

function failedFor(instance: StagedInstance, reason: FailureReasonCode, problem: string): FailedInstance {
  return {
    reason,
    problems: [problem],
    sopClassUid: instance.sopClassUid,
    sopInstanceUid: instance.record.sopInstanceUid,
  };
}

async function stageOne(
  storage: Storage,
  incoming: IncomingInstance,
  options: StoreOptions,
  log: FailureLog,
): Promise<StagedInstance | FailedInstance> {
  const reader = new DicomHeaderReader(options.maxHeaderBytes);
  const structure = options.validateStructure === false ? undefined : new DicomStructureValidator();
  let upload: BlobUpload | undefined;
  let accepted: ValidInstance | undefined;
  let rejection: FailedInstance | undefined;
  let version = '';
  let scanner: FragmentScanner | undefined;
  let written = 0;
  const send = async (chunk: Uint8Array): Promise<void> => {
    scanner?.feed(chunk, written);
    written += chunk.byteLength;
    await upload?.write(chunk);
  };
  const admit = async (header: DicomHeader): Promise<void> => {
    const verdict = validateInstance(new DicomAttributes(header.dataSet), options.apiVersion, options.studyInstanceUid);
    if (isInvalid(verdict)) {
      rejection = verdict;
      return;
    }
    if (await storage.index.hasInstance(verdict.key)) {
      rejection = alreadyStored(verdict.key, verdict.sopClassUid);
      return;
    }
    accepted = verdict;
    version = newVersion();
    upload = storage.blobs.beginUpload(instanceBlobName(verdict.key, version), 'application/dicom');
    if (header.pixelDataLength === -1 && header.pixelDataOffset !== undefined) {
      scanner = new FragmentScanner(header.pixelDataOffset);
    }
    for (const chunk of reader.takeBuffered()) await send(chunk);
  };
  let header: DicomHeader | undefined;
  /**
   * Every byte is walked before it is written, so a broken file never reaches a committed blob.
   * The walk is synchronous except for deflated data sets: no await (and no turn of the event
   * loop) per chunk unless the walk hands back a promise.
   */
  const refused = (error: unknown): false => {
    if (!(error instanceof StructureError)) throw error;
    rejection = incomplete(error, accepted);
    return false;
  };
  const checked = (check: () => void | Promise<void>): boolean | Promise<boolean> => {
    try {
      const pending = check();
      return pending ? pending.then(() => true, refused) : true;
    } catch (error) {
      return refused(error);
    }
  };
  try {
    for await (const chunk of incoming.body) {
      if (rejection) continue; // drain the rest of a rejected part
      if (structure) {
        const walked = checked(() => structure.push(chunk));
        if (walked !== true && !(await walked)) continue;
      }
      if (upload) {
        await send(chunk);
        continue;
      }
      header = readHeader(reader, chunk, (failure) => (rejection = failure));
      if (header) await admit(header);
    }
    // The walk's verdict first: it says where a cut or broken file went wrong, and a header read
    // from a broken file is never validated.
    if (!rejection && structure) await checked(() => structure.end());
    if (!rejection && !header) {
      header = readHeader(reader, undefined, (failure) => (rejection = failure));
      if (header) await admit(header);
    }
  } catch (error) {
    await upload?.abort();
    throw error;
  }
  if (rejection) {
    await upload?.abort();
    return rejection;
  }
  if (!upload || !accepted || !header) throw new Error('store: a part ended with neither an upload nor a failure');
  return stage(storage, upload, accepted, header, version, scanner?.layout(), log);
}

/**
 * The first steps of docs/storage.md's write order: pending note → blob commit and sidecar. The
 * blob is complete but unreferenced; a failure removes both, and a crash leaves the note for the
 * orphan sweep.
 */
async function stage(
  storage: Storage,
  upload: BlobUpload,
  instance: ValidInstance,
  header: DicomHeader,
  version: string,
  layout: EncapsulatedLayout | undefined,
  log: FailureLog,
): Promise<StagedInstance> {
  const blobName = instanceBlobName(instance.key, version);
  const built = buildSidecar(header, layout);
  const metadataJson = encodeMetadata(built);
  const sidecar = encodeSidecar(built, metadataJson);
  const note: PendingBlob = { key: instance.key, version, blobName, createdAt: new Date() };
  await storage.pending.add(note);
  let size: number;
  try {
    const metadata = instanceBlobMetadata(instance.key, version);
    // Independent writes, both covered by the note: a failure of either removes both.
    [size] = await Promise.all([
      upload.commit(metadata),
      storage.blobs.writeSmall(sidecarBlobName(blobName), sidecar, 'application/json', metadata),
    ]);
  } catch (error) {
    await removeOrphan(storage, note, log);
    throw error;
  }
  return {
    record: {
      ...instance.key,
      sopClassUid: instance.sopClassUid,
      version,
      blobName,
      transferSyntaxUid: header.transferSyntax.uid,
      size,
      storedAt: note.createdAt.toISOString(),
      pixelDataOffset: header.pixelDataOffset,
      pixelDataLength: header.pixelDataLength,
      numberOfFrames: instance.numberOfFrames,
      study: instance.study,
      series: instance.series,
      instance: instance.instance,
    },
    sopClassUid: instance.sopClassUid,
    warningReason: warningReason(instance, header),
    problems: instance.problems,
    metadataJson,
    note,
  };
}

/**
 * Change feed entries for the request's stored instances, in one append (a few transactions for
 * a whole study), then their pending notes go. If storage fails here, the instances are still
 * stored; the notes stay and the orphan sweep appends the missing entries later.
 */
async function publish(
  storage: Storage,
  stored: readonly StoredInstance[],
  seriesLog: SeriesLogWriter,
  log: FailureLog,
): Promise<void> {
  if (stored.length === 0) return;
  // The metadata log appends run alongside the change feed append; both are done before the response.
  const logged = seriesLog.done();
  try {
    await storage.changeFeed.append(
      stored.map((instance) => ({ action: 'create', key: instance.key, version: instance.version })),
    );
  } catch (error) {
    await logged;
    log('change feed append failed; the orphan sweep will add the entries', error);
    return;
  }
  await logged;
  const notes = stored.flatMap((instance) => (instance.note ? [instance.note] : []));
  try {
    await storage.pending.removeAll(notes);
  } catch (error) {
    log(`removing the ${notes.length} pending notes of stored instances failed; the orphan sweep clears them`, error);
  }
}

/** Deletes a blob the index does not refer to; if storage fails now, the note stays for the sweep. */
async function removeOrphan(storage: Storage, pending: PendingBlob, log: FailureLog): Promise<void> {
  try {
    await deleteInstanceBlobs(storage, pending.blobName);
    await storage.pending.remove(pending);
  } catch (error) {
    log('removing a staged instance failed; its pending note stays for the orphan sweep', error);
  }
}

/** One warning per instance, as Azure gives it: implicit VR first, then attribute problems. */
function warningReason(instance: ValidInstance, header: DicomHeader): WarningReasonCode | undefined {
  if (!header.transferSyntax.explicitVr) return WarningReason.DatasetDoesNotMatchSOPClass;
  return instance.problems.length > 0 ? WarningReason.DatasetHasValidationWarnings : undefined;
}

function readHeader(
  reader: DicomHeaderReader,
  chunk: Uint8Array | undefined,
  fail: (failure: FailedInstance) => void,
): DicomHeader | undefined {
  try {
    return chunk === undefined ? reader.finish() : reader.push(chunk);
  } catch (error) {
    if (!(error instanceof InvalidDicomError)) throw error;
    fail({ reason: FailureReason.ValidationFailure, problems: [error.message] });
    return undefined;
  }
}

/** 43264 for a file that breaks off or does not add up, with where it broke (PS3.10, PS3.5 §7). */
function incomplete(error: StructureError, accepted: ValidInstance | undefined): FailedInstance {
  return {
    reason: FailureReason.ValidationFailure,
    problems: [`The file is not complete, well-formed DICOM: ${error.message}`],
    sopClassUid: accepted?.sopClassUid,
    sopInstanceUid: accepted?.key.sopInstanceUid,
  };
}

function alreadyStored(key: InstanceKey, sopClassUid: string): FailedInstance {
  return {
    reason: FailureReason.InstanceAlreadyExists,
    problems: [`The instance ${key.sopInstanceUid} is already stored; delete it first to replace it.`],
    sopClassUid,
    sopInstanceUid: key.sopInstanceUid,
  };
}
