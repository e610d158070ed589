import { DicomAttributes } from '../dicom/attributes.js';
import { DicomHeaderReader, InvalidDicomError, type DicomHeader } from '../dicom/header-reader.js';
import { FragmentScanner, type EncapsulatedLayout } from '../dicom/fragments.js';
import { instanceBlobMetadata, instanceBlobName, newVersion, sidecarBlobName } from '../storage/keys.js';
import type { BlobUpload, InstanceKey, PendingBlob, Storage } from '../storage/ports.js';
import { drain } from '../util/streams.js';
import { DicomwebError } from './errors.js';
import { encodeMetadata, encodeSidecar } from './instance-sidecar.js';
import { SeriesLogWriter } from './series-metadata.js';
import { buildSidecar } from './sidecar-builder.js';
import { FailureReason, WarningReason, type FailureReasonCode, type WarningReasonCode } from './failure-codes.js';
import { isInvalid, validateInstance, type ApiVersion, type ValidInstance } from './instance-validation.js';

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
}

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
 * STOW-RS (PS3.18 §10.5): stores each instance as it streams in. For each part, the header is
 * read from the first bytes while the part is held back; once the UIDs are known and valid, the
 * bytes go to a staged blob, the blob is committed when the part has ended cleanly, and only
 * then is the index row written. Failures of one instance are data; a broken request body or a
 * storage outage is thrown.
 */
export async function storeInstances(
  storage: Storage,
  instances: AsyncIterable<IncomingInstance>,
  options: StoreOptions,
): Promise<StoreResult> {
  const stored: StoredInstance[] = [];
  const failed: FailedInstance[] = [];
  const log = new SeriesLogWriter(storage);
  try {
    for await (const incoming of instances) {
      const first = stored.length + failed.length === 0;
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
      const outcome = await storeOne(storage, log, incoming, options);
      if ('reason' in outcome) failed.push(outcome);
      else stored.push(outcome);
    }
  } finally {
    await publish(storage, stored, log);
  }
  const studies = new Set(stored.map((instance) => instance.key.studyInstanceUid));
  const only = studies.size === 1 ? [...studies][0] : undefined;
  return { stored, failed, studyInstanceUid: only ?? (stored.length === 0 ? options.studyInstanceUid : undefined) };
}

async function storeOne(
  storage: Storage,
  log: SeriesLogWriter,
  incoming: IncomingInstance,
  options: StoreOptions,
): Promise<StoredInstance | FailedInstance> {
  const reader = new DicomHeaderReader(options.maxHeaderBytes);
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
    if (await storage.index.getInstance(verdict.key)) {
      rejection = alreadyStored(verdict);
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
  try {
    for await (const chunk of incoming.body) {
      if (rejection) continue; // drain the rest of a rejected part
      if (upload) {
        await send(chunk);
        continue;
      }
      header = readHeader(reader, chunk, (failure) => (rejection = failure));
      if (header) await admit(header);
    }
    if (!rejection && !header) {
      header = readHeader(reader, undefined, (failure) => (rejection = failure));
      if (header) await admit(header);
    }
  } catch (error) {
    await upload?.abort();
    throw error;
  }
  if (rejection) return rejection;
  if (!upload || !accepted || !header) throw new Error('store: a part ended with neither an upload nor a failure');
  return commit(storage, log, upload, accepted, header, version, scanner?.layout());
}

/**
 * The write order of docs/storage.md: pending note → blob commit → index rows → note removed.
 * Readers only find instances through the index, so nothing is visible before its blob is
 * complete; a failure between the steps leaves a note for the orphan sweep.
 */
async function commit(
  storage: Storage,
  log: SeriesLogWriter,
  upload: BlobUpload,
  instance: ValidInstance,
  header: DicomHeader,
  version: string,
  layout: EncapsulatedLayout | undefined,
): Promise<StoredInstance | FailedInstance> {
  const blobName = instanceBlobName(instance.key, version);
  const built = buildSidecar(header, layout);
  const metadataJson = encodeMetadata(built);
  const sidecar = encodeSidecar(built, metadataJson);
  const pending = { key: instance.key, version, blobName, createdAt: new Date() };
  await storage.pending.add(pending);
  let outcome;
  try {
    const metadata = instanceBlobMetadata(instance.key, version);
    // Independent writes, both covered by the note: a failure of either removes both.
    const [size] = await Promise.all([
      upload.commit(metadata),
      storage.blobs.writeSmall(sidecarBlobName(blobName), sidecar, 'application/json', metadata),
    ]);
    outcome = await storage.index.addInstance({
      ...instance.key,
      sopClassUid: instance.sopClassUid,
      version,
      blobName,
      transferSyntaxUid: header.transferSyntax.uid,
      size,
      storedAt: pending.createdAt.toISOString(),
      pixelDataOffset: header.pixelDataOffset,
      pixelDataLength: header.pixelDataLength,
      numberOfFrames: instance.numberOfFrames,
      study: instance.study,
      series: instance.series,
      instance: instance.instance,
    });
  } catch (error) {
    await removeOrphan(storage, pending);
    throw error;
  }
  if (outcome === 'exists') {
    await removeOrphan(storage, pending);
    return alreadyStored(instance);
  }
  log.add(instance.key, version, metadataJson);
  return {
    key: instance.key,
    sopClassUid: instance.sopClassUid,
    warningReason: warningReason(instance, header),
    problems: instance.problems,
    version,
    note: pending,
  };
}

/**
 * Change feed entries for the request's stored instances, in one append (a few transactions for
 * a whole study), then their pending notes go. If storage fails here, the instances are still
 * stored; the notes stay and the orphan sweep appends the missing entries later.
 */
async function publish(storage: Storage, stored: readonly StoredInstance[], log: SeriesLogWriter): Promise<void> {
  if (stored.length === 0) return;
  // The metadata log appends run alongside the change feed append; both are done before the response.
  const logged = log.done();
  try {
    await storage.changeFeed.append(
      stored.map((instance) => ({ action: 'create', key: instance.key, version: instance.version })),
    );
  } catch {
    await logged;
    return;
  }
  await logged;
  const notes = stored.flatMap((instance) => (instance.note ? [instance.note] : []));
  await Promise.all(notes.map((note) => storage.pending.remove(note).catch(() => undefined)));
}

/** Deletes a blob the index does not refer to; if storage fails now, the note stays for the sweep. */
async function removeOrphan(storage: Storage, pending: PendingBlob): Promise<void> {
  try {
    await storage.blobs.delete(pending.blobName);
    await storage.blobs.delete(sidecarBlobName(pending.blobName));
    await storage.pending.remove(pending);
  } catch {
    // left for sweepOrphans
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

function alreadyStored(instance: Pick<ValidInstance, 'key' | 'sopClassUid'>): FailedInstance {
  return {
    reason: FailureReason.InstanceAlreadyExists,
    problems: [`The instance ${instance.key.sopInstanceUid} is already stored; delete it first to replace it.`],
    sopClassUid: instance.sopClassUid,
    sopInstanceUid: instance.key.sopInstanceUid,
  };
}
