/**
 * Upload sessions (docs/conformance.md "Upload sessions"): an instance of any size goes straight
 * from the client to a staging blob through a short-lived write-only URL, in blocks the client can
 * resend after a failure; the commit then runs STOW's validation and indexing over those bytes,
 * which never pass through the app's request body.
 */
import { createHash } from 'node:crypto';
import { isValidUid } from '../dicom/uid.js';
import { newUploadSessionId, UploadSessionKeys } from '../storage/keys.js';
import type {
  FrozenBlob,
  SessionBlobs,
  StagedBlock,
  StagingBlobState,
  Storage,
  UploadSessionRecord,
  UploadSessionStore,
} from '../storage/ports.js';
import { just } from '../util/streams.js';
import { DicomwebError, type FailureLog } from './errors.js';
import { storeInstances, type StoreOptions, type StoreResult } from './store.js';

/** Azure's block blob limits: 50,000 blocks of up to 4000 MiB. */
export const MAX_BLOCKS = 50_000;
const MAX_BLOCK_BYTES = 4000 * 1024 * 1024;
export const MAX_UPLOAD_BYTES = MAX_BLOCKS * MAX_BLOCK_BYTES;
/** The block size the answer suggests: few requests, and little to resend after a failure. */
export const SUGGESTED_BLOCK_BYTES = 8 * 1024 * 1024;

export interface UploadSessionRequest {
  readonly size?: number | undefined;
  readonly sha256?: string | undefined;
  readonly studyInstanceUid?: string | undefined;
  /** How long the client needs, at most the server's limit. */
  readonly expiresInMinutes?: number | undefined;
}

export interface OpenedSession {
  readonly session: UploadSessionRecord;
  readonly uploadUrl: string;
}

export interface SessionProgress {
  readonly session: UploadSessionRecord;
  /** The upload URL again (same blob, same expiry), for a client resuming without it. */
  readonly uploadUrl: string;
  /** Bytes a commit would store now. */
  readonly receivedBytes: number;
  /** The blocks a commit would join, in order (none when the file was written whole). */
  readonly blocks: readonly StagedBlock[];
}

type Sessions = NonNullable<Storage['sessions']>;

function sessionsOf(storage: Storage): Sessions {
  if (!storage.sessions) {
    throw new DicomwebError(
      'NotImplemented',
      'Upload sessions need a storage account that can sign upload URLs (an account key or Entra ID); this server has neither.',
    );
  }
  return storage.sessions;
}

/** Reads a session that is open: 404 when unknown, ended or expired. */
async function openSession(records: UploadSessionStore, id: string, now: Date): Promise<UploadSessionRecord> {
  const session = /^[0-9a-f]{32}$/.test(id) ? await records.get(id) : undefined;
  if (!session)
    throw new DicomwebError(
      'NotFound',
      `There is no upload session ${id}; it was committed, abandoned or never existed.`,
    );
  if (session.expiresAt <= now) {
    throw new DicomwebError(
      'NotFound',
      `The upload session ${id} expired at ${session.expiresAt.toISOString()}; start a new one.`,
    );
  }
  return session;
}

/** Checks what a client asked for; every mistake is a 400 that says what to change. */
export function checkSessionRequest(request: UploadSessionRequest, maxMinutes: number): void {
  const { size, sha256, studyInstanceUid, expiresInMinutes } = request;
  if (size !== undefined && (!Number.isSafeInteger(size) || size <= 0 || size > MAX_UPLOAD_BYTES)) {
    throw new DicomwebError('BadRequest', `size must be a whole number of bytes from 1 to ${MAX_UPLOAD_BYTES}.`);
  }
  if (sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(sha256)) {
    throw new DicomwebError('BadRequest', 'sha256 must be 64 hexadecimal digits (the SHA-256 of the whole file).');
  }
  if (studyInstanceUid !== undefined && !isValidUid(studyInstanceUid)) {
    throw new DicomwebError('InvalidUid', `studyInstanceUid ${studyInstanceUid} is not a valid UID.`);
  }
  if (
    expiresInMinutes !== undefined &&
    (!Number.isSafeInteger(expiresInMinutes) || expiresInMinutes < 1 || expiresInMinutes > maxMinutes)
  ) {
    throw new DicomwebError('BadRequest', `expiresInMinutes must be a whole number from 1 to ${maxMinutes}.`);
  }
}

/** Opens a session: a record, and a URL that can write its staging blob until the session expires. */
export async function createUploadSession(
  storage: Storage,
  request: UploadSessionRequest,
  maxMinutes: number,
  now = new Date(),
): Promise<OpenedSession> {
  const sessions = sessionsOf(storage);
  checkSessionRequest(request, maxMinutes);
  const id = newUploadSessionId();
  const session: UploadSessionRecord = {
    id,
    blobName: UploadSessionKeys.blobName(id),
    createdAt: now,
    expiresAt: new Date(now.getTime() + (request.expiresInMinutes ?? maxMinutes) * 60_000),
    size: request.size,
    sha256: request.sha256?.toLowerCase(),
    studyInstanceUid: request.studyInstanceUid,
  };
  await sessions.records.create(session);
  return { session, uploadUrl: await sessions.blobs.uploadUrl(session.blobName, session.expiresAt) };
}

/** Byte order of block ids as the commit joins them: by their decoded bytes. */
function blockOrder(a: StagedBlock, b: StagedBlock): number {
  return Buffer.compare(Buffer.from(a.id, 'base64'), Buffer.from(b.id, 'base64'));
}

/**
 * The file a commit would make of what arrived: the committed blocks and those staged since,
 * in block-id order, a block staged again replacing its earlier copy; or, when nothing was
 * staged, the committed content as it is (e.g. written whole by one Put Blob).
 */
function uploadedFile(state: StagingBlobState): { readonly blocks: StagedBlock[] | undefined; readonly size: number } {
  if (state.uncommitted.length === 0) return { blocks: undefined, size: state.committed?.size ?? 0 };
  const byId = new Map<string, StagedBlock>();
  for (const block of [...(state.committed?.blocks ?? []), ...state.uncommitted]) byId.set(block.id, block);
  const blocks = [...byId.values()].sort(blockOrder);
  return { blocks, size: blocks.reduce((sum, block) => sum + block.size, 0) };
}

/** What has arrived so far, so a client can resume by sending only the missing blocks. */
export async function describeUploadSession(storage: Storage, id: string, now = new Date()): Promise<SessionProgress> {
  const sessions = sessionsOf(storage);
  const session = await openSession(sessions.records, id, now);
  const file = uploadedFile(await sessions.blobs.inspect(session.blobName));
  const uploadUrl = await sessions.blobs.uploadUrl(session.blobName, session.expiresAt);
  return { session, uploadUrl, receivedBytes: file.size, blocks: file.blocks ?? [] };
}

/** Joins what arrived into the staging blob (after checking its size) and freezes it. */
async function frozenUpload(blobs: SessionBlobs, session: UploadSessionRecord): Promise<FrozenBlob> {
  const file = uploadedFile(await blobs.inspect(session.blobName));
  if (file.size === 0) {
    throw new DicomwebError(
      'BadRequest',
      `Nothing was uploaded to session ${session.id}; put the file's blocks to its uploadUrl first.`,
    );
  }
  if (session.size !== undefined && file.size !== session.size) {
    throw new DicomwebError(
      'BadRequest',
      `The session received ${file.size} bytes but was opened for ${session.size}; upload the missing blocks, then commit again.`,
    );
  }
  if (file.blocks) {
    if (file.blocks.length > MAX_BLOCKS) {
      throw new DicomwebError(
        'BadRequest',
        `The session holds ${file.blocks.length} blocks; at most ${MAX_BLOCKS} make one file.`,
      );
    }
    await blobs.commitBlocks(
      session.blobName,
      file.blocks.map((block) => block.id),
    );
  }
  return blobs.freeze(session.blobName);
}

/** The frozen bytes, hashed on the way: a mismatch with the announced SHA-256 fails the read at its end. */
async function* checkedBytes(
  blobs: SessionBlobs,
  frozen: FrozenBlob,
  sha256: string | undefined,
): AsyncGenerator<Uint8Array> {
  const hash = sha256 === undefined ? undefined : createHash('sha256');
  for await (const chunk of blobs.read(frozen)) {
    hash?.update(chunk);
    yield chunk;
  }
  const actual = hash?.digest('hex');
  if (actual !== undefined && actual !== sha256) {
    throw new DicomwebError(
      'BadRequest',
      `The uploaded bytes have SHA-256 ${actual}, not the ${sha256 ?? ''} the session was opened with; upload the file again, then commit.`,
    );
  }
}

/**
 * Commits a session: STOW's validation, indexing and change feed over the uploaded bytes, which
 * the storage service copies to the instance's blob. A definite answer (stored, or refused for
 * what the file is) ends the session; a wrong size or checksum, or a storage outage, leaves it
 * open so the client can fix the upload and commit again.
 */
export async function commitUploadSession(
  storage: Storage,
  id: string,
  options: Omit<StoreOptions, 'studyInstanceUid' | 'beginUpload'> & { readonly log: FailureLog },
  now = new Date(),
): Promise<{ readonly session: UploadSessionRecord; readonly result: StoreResult }> {
  const { records, blobs } = sessionsOf(storage);
  const session = await openSession(records, id, now);
  const frozen = await frozenUpload(blobs, session);
  const result = await storeInstances(
    storage,
    just({ mediaType: 'application/dicom', body: checkedBytes(blobs, frozen, session.sha256) }),
    {
      ...options,
      studyInstanceUid: session.studyInstanceUid,
      beginUpload: (name) => blobs.beginCopy(name, frozen, 'application/dicom'),
    },
  );
  await endSession(storage, session, options.log);
  return { session, result };
}

/** Ends a session the client no longer needs: its record, blob and blocks go. */
export async function abandonUploadSession(storage: Storage, id: string, now = new Date()): Promise<void> {
  const { records, blobs } = sessionsOf(storage);
  const session = await openSession(records, id, now);
  await blobs.discard(session.blobName);
  await records.remove(session.id);
}

async function endSession(storage: Storage, session: UploadSessionRecord, log: FailureLog): Promise<void> {
  const { records, blobs } = sessionsOf(storage);
  // The blob first: a record left behind leads the expiry sweep to a blob it still has to remove.
  try {
    await blobs.discard(session.blobName);
  } catch (error) {
    log(`Could not remove the staging blob of upload session ${session.id} (the expiry sweep removes it)`, error);
    return;
  }
  await records.remove(session.id);
}

/**
 * Removes expired sessions with their staging blobs and blocks. The blob goes before the record,
 * so a crash between the two leaves a record the next sweep finds again.
 */
export async function sweepUploadSessions(storage: Storage, now = new Date()): Promise<number> {
  if (!storage.sessions) return 0;
  const { records, blobs } = storage.sessions;
  let removed = 0;
  for await (const session of records.expired(now)) {
    await blobs.discard(session.blobName);
    if (await records.remove(session.id)) removed += 1;
  }
  return removed;
}
