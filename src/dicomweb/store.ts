import { DicomAttributes } from '../dicom/attributes.js';
import { DicomHeaderReader, InvalidDicomError, type DicomHeader } from '../dicom/header-reader.js';
import { FragmentScanner, type EncapsulatedLayout } from '../dicom/fragments.js';
import { DicomStructureValidator, StructureError } from '../dicom/structure/structure-validator.js';
import {
  instanceBlobMetadata,
  instanceBlobName,
  newPendingGroup,
  newVersion,
  sidecarBlobName,
} from '../storage/keys.js';
import {
  INLINE_SIDECAR_LIMIT,
  StorageUnavailableError,
  type BlobUpload,
  type InstanceKey,
  type InstanceRecord,
  type PendingBlob,
  type Storage,
  type StoredVersion,
  type StudyAddOutcome,
} from '../storage/ports.js';
import { createHash, type Hash } from 'node:crypto';
import { drain } from '../util/streams.js';
import { deleteInstanceBlobs } from './delete.js';
import { DicomwebError, type FailureLog } from './errors.js';
import { deflateSidecar, encodeSidecar } from './instance-sidecar.js';
import { buildSidecar } from './sidecar-builder.js';
import { FailureReason, WarningReason, type FailureReasonCode, type WarningReasonCode } from './failure-codes.js';
import type { ApiVersion } from './api-version.js';
import { isInvalid, validateInstance, type ValidInstance } from './instance-validation.js';

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
  /**
   * PUT (upsert, v2): an instance already stored is replaced by the new version in the same
   * transaction that indexes it, instead of failing with 45070.
   */
  readonly upsert?: boolean | undefined;
  /**
   * When the studies this request stores into expire (msdicom-expiry headers, v2); undefined
   * cancels an earlier expiry of those studies, as on the Azure service (the last store decides).
   */
  readonly expiresAt?: Date | undefined;
  /**
   * What a POST does with an instance already stored: 'reject' it (45070, the Azure service's
   * behaviour, the default), or 'accept-identical': a byte-identical re-send (same SHA-256 as the
   * stored copy) is answered as stored, with WarningReason 0xB006, and nothing is written.
   */
  readonly duplicates?: DuplicatePolicy | undefined;
  /** Walk every element to the last byte (false only in the benchmark, to price it). */
  readonly validateStructure?: boolean | undefined;
  /**
   * Where failures the response does not report are told (a change feed append, the removal of
   * a staged copy: the orphan sweep finishes them); the app's logger names the request's
   * correlation id. Default: a warning on the console.
   */
  readonly log?: FailureLog | undefined;
  /**
   * Where an instance's bytes go, by blob name; default a staged upload of the bytes read. Upload
   * sessions pass a copy made by the storage service (SessionBlobs.beginCopy).
   */
  readonly beginUpload?: ((name: string) => BlobUpload) | undefined;
  /**
   * A bulk update's new versions (with `upsert`): only an instance stored now and not yet written
   * by this operation is replaced (others fail, untouched), the version replaced first is kept as
   * the original (no replace note, so the sweep leaves it), and the rows name the operation.
   */
  readonly bulkUpdate?: { readonly operationId: string } | undefined;
}

const warnOnConsole: FailureLog = (message, error) => {
  console.warn(`[dicomweb] ${message}:`, error);
};

export type DuplicatePolicy = 'reject' | 'accept-identical';

export interface StoredInstance {
  readonly key: InstanceKey;
  readonly sopClassUid: string;
  readonly warningReason?: WarningReasonCode | undefined;
  /** ErrorComments of attributes that were not indexed (v2). */
  readonly problems: readonly string[];
  /** The stored version, for its change feed entry. */
  readonly version: string;
  /**
   * Its change feed action: `update` when an upsert replaced a stored version; none for a
   * byte-identical re-send that was accepted without storing anything.
   */
  readonly action: 'create' | 'update' | undefined;
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
 * An instance whose bytes are staged (uncommitted blocks, or held in memory while smaller than
 * one block) but not committed: nothing exists under its name yet, and dropping it costs no
 * storage operation. Only what the index needs is kept, not the header.
 */
interface StagedInstance {
  /** Position in the request, so answers keep the request's order. */
  readonly position: number;
  readonly key: InstanceKey;
  readonly upload: BlobUpload;
  /** The index record but for what the commit tells (its size). */
  readonly record: Omit<InstanceRecord, 'size'>;
  /** The sidecar when it is too large to keep in the index row, written beside the blob. */
  readonly sidecarBlob: Uint8Array | undefined;
  readonly sopClassUid: string;
  readonly warningReason: WarningReasonCode | undefined;
  readonly problems: readonly string[];
}

/**
 * Small parts are held whole until the envelope closes (then one Put Blob each); past this many
 * held bytes in one request the oldest are sent as staged blocks, so memory stays bounded.
 */
const MAX_HELD_BYTES = 32 * 1024 * 1024;

/** Commits (block lists, Put Blobs) sent at once when the envelope has closed. */
const COMMIT_PARALLELISM = 16;

/**
 * STOW-RS (PS3.18 §10.5) in two phases. While the body streams, each part's header is read, the
 * instance validated and its bytes staged as uncommitted blocks (invisible, and discarded by
 * Azure when never committed). Only once the whole envelope has closed cleanly are the instances
 * checked against the index, noted, committed and indexed, a study at a time in few round trips
 * (docs/storage.md "Write order"), so a body that breaks half-way (no close delimiter, a part cut
 * short, the client gone, the size limit) makes nothing visible and leaves nothing to remove.
 * Failures of one instance are data; a broken request body or a storage outage before anything
 * was indexed is thrown.
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
      const position = staged.length + failed.length;
      if (incoming.mediaType !== undefined && incoming.mediaType !== 'application/dicom') {
        // Azure answers 415 for the whole request; once earlier parts are stored, only this one can fail.
        if (position === 0) {
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
      const outcome = await stageOne(storage, incoming, options, position);
      if ('reason' in outcome) failed.push(outcome);
      else {
        staged.push(outcome);
        await limitHeldBytes(staged);
      }
    }
  } catch (error) {
    await Promise.all(staged.map((instance) => instance.upload.abort()));
    throw error;
  }
  const stored = await indexAll(storage, staged, failed, log, {
    upsert: options.upsert === true,
    acceptIdentical: options.duplicates === 'accept-identical',
    expiresAt: options.expiresAt,
    updatedBy: options.bulkUpdate?.operationId,
  });
  const studies = new Set(stored.map((instance) => instance.key.studyInstanceUid));
  const only = studies.size === 1 ? [...studies][0] : undefined;
  return { stored, failed, studyInstanceUid: only ?? (stored.length === 0 ? options.studyInstanceUid : undefined) };
}

/** Sends the oldest held parts as staged blocks while the request holds more than MAX_HELD_BYTES. */
async function limitHeldBytes(staged: readonly StagedInstance[]): Promise<void> {
  let held = staged.reduce((sum, instance) => sum + instance.upload.held, 0);
  for (const instance of staged) {
    if (held <= MAX_HELD_BYTES) return;
    held -= instance.upload.held;
    await instance.upload.release();
  }
}

/**
 * The envelope closed cleanly: each study's instances go into the index together (in request
 * order), then the request's change feed entries are published. If storage fails part-way, the
 * instances already indexed stay (they are complete) and the rest fail with 272; when none was
 * indexed, the outage is thrown (503).
 */
async function indexAll(
  storage: Storage,
  staged: readonly StagedInstance[],
  failed: FailedInstance[],
  log: FailureLog,
  policy: WritePolicy,
): Promise<StoredInstance[]> {
  const stored: Positioned[] = [];
  const studies = new Map<string, StagedInstance[]>();
  for (const instance of staged) {
    const members = studies.get(instance.key.studyInstanceUid) ?? [];
    members.push(instance);
    studies.set(instance.key.studyInstanceUid, members);
  }
  // One request's notes share a partition, so they are written and removed in few transactions.
  const noteGroup = newPendingGroup();
  const spareNotes: PendingBlob[] = [];
  let outage: StorageUnavailableError | undefined;
  for (const members of studies.values()) {
    if (outage) {
      failed.push(...(await dropUnavailable(members)));
      continue;
    }
    try {
      const result = await indexStudy(storage, members, noteGroup, log, policy);
      stored.push(...result.stored);
      failed.push(...result.failed);
      spareNotes.push(...(result.spareNotes ?? []));
      outage = result.outage;
    } catch (error) {
      const dropped = await dropUnavailable(members);
      if (!(error instanceof StorageUnavailableError)) throw error;
      outage = error;
      failed.push(...dropped);
    }
  }
  if (stored.length === 0 && outage) throw outage;
  stored.sort((a, b) => a.position - b.position);
  await publish(storage, stored, spareNotes, log);
  return stored;
}

/** Abandons staged instances nothing was committed for: each fails with 272, storage unavailable. */
async function dropUnavailable(members: readonly StagedInstance[]): Promise<FailedInstance[]> {
  await Promise.all(members.map((instance) => instance.upload.abort()));
  return members.map((instance) => failedFor(instance, FailureReason.ProcessingFailure, UNAVAILABLE));
}

/** How the request treats instances already stored (PUT, and the duplicate policy). */
interface WritePolicy {
  readonly upsert: boolean;
  readonly acceptIdentical: boolean;
  readonly expiresAt: Date | undefined;
  /** StoreOptions.bulkUpdate's operation. */
  readonly updatedBy: string | undefined;
}

/** The problem of an instance a bulk update finds already written by itself (a resumed operation). */
export const ALREADY_UPDATED = 'The instance is already updated by this operation.';

/** A stored instance and its place in the request. */
type Positioned = StoredInstance & { readonly position: number };

const CHANGED_MEANWHILE =
  'Another request stored this instance while this one was replacing it; send it again to replace that version.';

const UNAVAILABLE = 'The storage service became unavailable before this instance was indexed; send it again.';

interface StudyOutcome {
  readonly stored: Positioned[];
  readonly failed: FailedInstance[];
  /** Set when storage failed on the way: the request's later studies are not tried. */
  readonly outage?: StorageUnavailableError | undefined;
  /** Notes written before the rows were read for instances that then did not go on. */
  readonly spareNotes?: readonly PendingBlob[] | undefined;
}

/** The pending note of an instance about to be committed; `replaces`, the version an upsert replaces. */
function storeNote(instance: StagedInstance, createdAt: Date, group: string, replaces?: StoredVersion): PendingBlob {
  return {
    key: instance.key,
    version: instance.record.version,
    blobName: instance.record.blobName,
    createdAt,
    group,
    action: replaces ? 'update' : undefined,
  };
}

/**
 * One study's instances of the request: the index rows they need are read (re-sends and deletion
 * marks found before anything is written), the survivors' pending notes written in one
 * transaction, their blobs committed, and their index rows added in as few transactions as fit.
 * An upsert also notes each version it replaces (in the same transaction): the orphan sweep
 * removes those blobs once the index no longer refers to them and the note is old enough that no
 * reader is still on them (docs/storage.md "Upsert").
 * Throws StorageUnavailableError while nothing is committed yet.
 */
async function indexStudy(
  storage: Storage,
  members: readonly StagedInstance[],
  noteGroup: string,
  log: FailureLog,
  { upsert, acceptIdentical, expiresAt, updatedBy }: WritePolicy,
): Promise<StudyOutcome> {
  const study = (members[0] as StagedInstance).key.studyInstanceUid;
  // A plain store's notes need nothing the rows say (no version is replaced), so they are written
  // while the rows are read: one round trip less before the blobs commit. The notes of instances
  // the rows then turn away are removed with the request's others (StudyOutcome.spareNotes).
  const plain = !upsert && updatedBy === undefined;
  const createdAt = new Date();
  const early = plain
    ? new Map(members.map((instance) => [instance, storeNote(instance, createdAt, noteGroup)]))
    : undefined;
  const [write] = await Promise.all([
    storage.index.prepareStudy(
      study,
      members.map((instance) => instance.key),
    ),
    early && storage.pending.addAll([...early.values()]),
  ]);
  const failed: FailedInstance[] = [];
  const going: StagedInstance[] = [];
  const resent: Positioned[] = [];
  const seen = new Set<string>();
  for (const instance of members) {
    const stored = !upsert && acceptIdentical && !seen.has(instance.key.sopInstanceUid) && write.current(instance.key);
    if (stored && stored.sha256 !== undefined && stored.sha256 === instance.record.sha256) {
      seen.add(instance.key.sopInstanceUid);
      resent.push(identicalResend(instance, stored.version));
      await instance.upload.abort();
      continue;
    }
    const refusal = write.deleting(instance.key)
      ? failedFor(instance, FailureReason.ProcessingFailure, beingDeleted(study))
      : updatedBy !== undefined && write.current(instance.key)?.updatedBy === updatedBy
        ? failedFor(instance, FailureReason.ProcessingFailure, ALREADY_UPDATED)
        : updatedBy !== undefined && !write.current(instance.key)
          ? failedFor(instance, FailureReason.ProcessingFailure, 'The instance is no longer stored.')
          : (!upsert && write.exists(instance.key)) || seen.has(instance.key.sopInstanceUid)
            ? alreadyStored(instance.key, instance.sopClassUid)
            : undefined;
    seen.add(instance.key.sopInstanceUid);
    if (refusal) {
      failed.push(refusal);
      await instance.upload.abort();
    } else going.push(instance);
  }
  const goingOn = new Set(going);
  const spareNotes = early ? [...early].flatMap(([instance, note]) => (goingOn.has(instance) ? [] : [note])) : [];
  if (going.length === 0) return { stored: resent, failed, spareNotes };
  const replaced = going.map((instance) => (upsert ? write.current(instance.key) : undefined));
  const notes = going.map(
    (instance, i): PendingBlob => early?.get(instance) ?? storeNote(instance, createdAt, noteGroup, replaced[i]),
  );
  // The version a bulk update replaces first is the original, kept until the instance is deleted.
  const keeps = (old: StoredVersion | undefined): boolean => updatedBy !== undefined && !old?.originalBlobName;
  const replaceNotes = going.flatMap((instance, i): PendingBlob[] => {
    const old = replaced[i];
    return old && !keeps(old)
      ? [
          {
            kind: 'replace',
            key: instance.key,
            version: old.version,
            blobName: old.blobName,
            createdAt,
            group: noteGroup,
          },
        ]
      : [];
  });
  if (!early) await storage.pending.addAll([...notes, ...replaceNotes]);
  const addOptions = { replace: upsert, replaceOnly: updatedBy !== undefined, expiresAt };
  // The search pointers go beside the blob commits rather than after them (readers verify pointers,
  // so one for an instance whose commit then fails is harmless).
  const [committed] = await Promise.all([
    commitAll(storage, going, notes, failed, log),
    write.writeAhead(
      going.map((instance) => instance.record),
      addOptions,
    ),
  ]);
  if (committed.length === 0) {
    return {
      stored: resent,
      failed,
      spareNotes,
      outage: new StorageUnavailableError('No blob of the request could be committed.'),
    };
  }
  const replacedOf = new Map(going.map((instance, i) => [instance, replaced[i]]));
  const records = committed.map(({ instance, record }): InstanceRecord => {
    const old = replacedOf.get(instance);
    const originalBlobName = old?.originalBlobName ?? (keeps(old) ? old?.blobName : undefined);
    return { ...record, replaces: old?.version, originalBlobName, updatedBy };
  });
  let outcomes: StudyAddOutcome[];
  try {
    outcomes = await write.add(records, addOptions);
  } catch (error) {
    if (!(error instanceof StorageUnavailableError)) throw error;
    outcomes = records.map(() => 'unavailable');
  }
  const stored: Positioned[] = [...resent];
  let outage: StorageUnavailableError | undefined;
  await Promise.all(
    committed.map(async ({ instance, note, record }, i) => {
      let outcome = outcomes[i];
      if (outcome === 'unavailable') {
        outcome = await settleUnconfirmed(storage, record, note, log);
        if (outcome === 'added' && note.action === 'update') outcome = 'replaced';
      }
      if (outcome === 'added' || outcome === 'added-series' || outcome === 'replaced') {
        stored.push({
          action: outcome === 'replaced' ? 'update' : 'create',
          position: instance.position,
          key: instance.key,
          sopClassUid: instance.sopClassUid,
          warningReason: instance.warningReason,
          problems: instance.problems,
          version: record.version,
          note,
        });
      } else if (outcome === 'unavailable') {
        outage ??= new StorageUnavailableError(UNAVAILABLE);
        failed.push(failedFor(instance, FailureReason.ProcessingFailure, UNAVAILABLE));
      } else {
        failed.push(
          outcome === 'deleting'
            ? failedFor(instance, FailureReason.ProcessingFailure, beingDeleted(study))
            : upsert
              ? failedFor(instance, FailureReason.ProcessingFailure, CHANGED_MEANWHILE)
              : alreadyStored(instance.key, instance.sopClassUid),
        );
        await removeOrphan(storage, note, log);
      }
    }),
  );
  return { stored, failed, outage, spareNotes };
}

/**
 * Storage failed before confirming an instance's index transaction: whether it committed is
 * asked once more. Indexed: it is stored. Not indexed: its blob and note go now ('unavailable').
 * Still no answer: the note stays and the orphan sweep settles it later ('unavailable').
 */
async function settleUnconfirmed(
  storage: Storage,
  record: InstanceRecord,
  note: PendingBlob,
  log: FailureLog,
): Promise<StudyAddOutcome> {
  try {
    if (await storage.index.isReferenced(record, record.version)) return 'added';
  } catch (error) {
    log('checking whether an instance was indexed failed; its pending note stays for the orphan sweep', error);
    return 'unavailable';
  }
  await removeOrphan(storage, note, log);
  return 'unavailable';
}

/**
 * Commits the noted instances' blobs (and large sidecars), a bounded number at once. One that
 * fails is reported and its blob removed; the others go on.
 */
async function commitAll(
  storage: Storage,
  going: readonly StagedInstance[],
  notes: readonly PendingBlob[],
  failed: FailedInstance[],
  log: FailureLog,
): Promise<{ instance: StagedInstance; note: PendingBlob; record: InstanceRecord }[]> {
  const committed: ({ instance: StagedInstance; note: PendingBlob; record: InstanceRecord } | undefined)[] = [];
  for (let start = 0; start < going.length; start += COMMIT_PARALLELISM) {
    const batch = going.slice(start, start + COMMIT_PARALLELISM);
    await Promise.all(
      batch.map(async (instance, j) => {
        const note = notes[start + j] as PendingBlob;
        try {
          const metadata = instanceBlobMetadata(instance.key, instance.record.version);
          const [size] = await Promise.all([
            instance.upload.commit(metadata),
            instance.sidecarBlob &&
              storage.blobs.writeSmall(
                sidecarBlobName(instance.record.blobName),
                instance.sidecarBlob,
                'application/json',
                metadata,
              ),
          ]);
          committed[start + j] = { instance, note, record: { ...instance.record, size } };
        } catch (error) {
          if (!(error instanceof StorageUnavailableError)) throw error;
          failed.push(failedFor(instance, FailureReason.ProcessingFailure, UNAVAILABLE));
          await removeOrphan(storage, note, log);
        }
      }),
    );
  }
  return committed.filter((each) => each !== undefined);
}

function beingDeleted(study: string): string {
  return `The ${study} study (or this series) is being deleted; send the instance again once the delete has finished.`;
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
  position: number,
): Promise<StagedInstance | FailedInstance> {
  const reader = new DicomHeaderReader(options.maxHeaderBytes);
  const structure = options.validateStructure === false ? undefined : new DicomStructureValidator();
  let upload: BlobUpload | undefined;
  let accepted: ValidInstance | undefined;
  let rejection: FailedInstance | undefined;
  let version = '';
  let scanner: FragmentScanner | undefined;
  let written = 0;
  const hash: Hash | undefined = options.duplicates === 'accept-identical' ? createHash('sha256') : undefined;
  const send = async (chunk: Uint8Array): Promise<void> => {
    scanner?.feed(chunk, written);
    hash?.update(chunk);
    written += chunk.byteLength;
    await upload?.write(chunk);
  };
  const admit = async (header: DicomHeader): Promise<void> => {
    const verdict = validateInstance(new DicomAttributes(header.dataSet), options.apiVersion, options.studyInstanceUid);
    if (isInvalid(verdict)) {
      rejection = verdict;
      return;
    }
    accepted = verdict;
    version = newVersion();
    const name = instanceBlobName(verdict.key, version);
    upload = options.beginUpload ? options.beginUpload(name) : storage.blobs.beginUpload(name, 'application/dicom');
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
  return staged(upload, accepted, header, version, scanner?.layout(), position, hash?.digest('base64'));
}

/** What the index needs of a staged instance; its sidecar kept inline when small enough. */
function staged(
  upload: BlobUpload,
  instance: ValidInstance,
  header: DicomHeader,
  version: string,
  layout: EncapsulatedLayout | undefined,
  position: number,
  sha256: string | undefined,
): StagedInstance {
  const blobName = instanceBlobName(instance.key, version);
  const sidecar = encodeSidecar(buildSidecar(header, layout));
  const deflated = deflateSidecar(sidecar);
  const inline = deflated.byteLength <= INLINE_SIDECAR_LIMIT;
  return {
    position,
    key: instance.key,
    upload,
    record: {
      ...instance.key,
      sopClassUid: instance.sopClassUid,
      version,
      blobName,
      transferSyntaxUid: header.transferSyntax.uid,
      storedAt: new Date().toISOString(),
      pixelDataOffset: header.pixelDataOffset,
      pixelDataLength: header.pixelDataLength,
      numberOfFrames: instance.numberOfFrames,
      study: instance.study,
      series: instance.series,
      instance: instance.instance,
      inlineSidecar: inline ? deflated : undefined,
      sha256,
    },
    sidecarBlob: inline ? undefined : sidecar,
    sopClassUid: instance.sopClassUid,
    warningReason: warningReason(instance, header),
    problems: instance.problems,
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
  spareNotes: readonly PendingBlob[],
  log: FailureLog,
): Promise<void> {
  if (stored.some((instance) => instance.action)) {
    try {
      await storage.changeFeed.append(
        stored.flatMap(({ action, key, version }) => (action ? [{ action, key, version }] : [])),
      );
    } catch (error) {
      log('change feed append failed; the orphan sweep will add the entries', error);
      return;
    }
  }
  const notes = [...stored.flatMap((instance) => (instance.note ? [instance.note] : [])), ...spareNotes];
  if (notes.length === 0) return;
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

/** A re-send identical to the stored copy, accepted under 'accept-identical': nothing is written. */
function identicalResend(instance: StagedInstance, version: string): Positioned {
  return {
    position: instance.position,
    key: instance.key,
    sopClassUid: instance.sopClassUid,
    warningReason: WarningReason.ElementsDiscarded,
    problems: [],
    version,
    action: undefined,
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
