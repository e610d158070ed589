/**
 * Bulk update (the Azure service's `$bulkUpdate`): an operation recorded first, then worked off
 * in the background by whichever worker holds its lease. Every instance of its studies gets a new
 * version whose data set carries the changed attributes, written through the upsert path of
 * store.ts (same atomic index swap, search pointers, study and series attributes, `update`
 * change feed entry); the version first replaced stays as the original.
 */
import { randomBytes } from 'node:crypto';
import { changeAttributes, type ChangedElement } from '../dicom/transcode/change-attributes.js';
import {
  StorageUnavailableError,
  type AttributeChange,
  type InstanceRecord,
  type OperationRecord,
  type Storage,
  type StoredOperation,
} from '../storage/ports.js';
import { prefetch } from '../util/prefetch.js';
import { DicomwebError, type FailureLog } from './errors.js';
import type { BulkUpdateRequest } from './bulk-update-request.js';
import { ALREADY_UPDATED, storeInstances, type IncomingInstance } from './store.js';

/** How long a worker's claim on an operation lasts without renewal; it is renewed after every batch. */
export const DEFAULT_OPERATION_LEASE_MS = 60_000;
/** Instances written per store call: one prepare and few index transactions for all of them. */
export const BULK_UPDATE_BATCH = 32;

export interface BulkUpdateWorker {
  /** Names this worker's leases. */
  readonly owner: string;
  readonly leaseMs?: number | undefined;
  readonly maxHeaderBytes?: number | undefined;
  readonly log?: FailureLog | undefined;
  /** Called after each batch with the instances updated so far by this run (tests stop a worker here). */
  readonly afterBatch?: ((updated: number) => void) | undefined;
  /**
   * Milliseconds since the epoch after which the worker stops at its next batch boundary: it saves
   * its progress, gives up the lease and queues the operation again, so that a function invocation
   * ends before the host's functionTimeout and another one goes on at once.
   */
  readonly stopAt?: number | undefined;
}

function operationsOf(storage: Storage) {
  if (!storage.operations) throw new DicomwebError('NotImplemented', 'This storage keeps no operations.');
  return storage.operations;
}

/**
 * Records a new operation, then queues its id so that a worker starts it at once. The record is
 * what counts: when the queue does not take the message, the request still succeeds and the
 * workers' periodic round (timer, local loop) starts the operation instead; the failure is logged.
 */
export async function startBulkUpdate(
  storage: Storage,
  request: BulkUpdateRequest,
  log?: FailureLog,
): Promise<OperationRecord> {
  // As the Azure service: one operation at a time per study (an unfinished one is a 409).
  const active = (await operationsOf(storage).unfinished()).find((operation) =>
    operation.studyInstanceUids.some((uid) => request.studyInstanceUids.includes(uid)),
  );
  if (active) {
    throw new DicomwebError(
      'Conflict',
      `There is already an active update operation with ID '${active.id}' on one of these studies; wait until it has finished.`,
    );
  }
  const now = new Date().toISOString();
  const operation: OperationRecord = {
    id: randomBytes(16).toString('hex'),
    type: 'update',
    status: 'notStarted',
    createdTime: now,
    lastUpdatedTime: now,
    studyInstanceUids: request.studyInstanceUids,
    changes: request.changes,
    studiesDone: 0,
    studyProgress: NO_PROGRESS,
    studiesUpdated: 0,
    instancesUpdated: 0,
    errors: [],
    owner: '',
    leaseUntil: 0,
  };
  await operationsOf(storage).create(operation);
  await storage.operationQueue?.send(operation.id).catch((error: unknown) => {
    log?.(`Operation ${operation.id} was not queued; the next periodic round starts it`, error);
  });
  return operation;
}

/**
 * Errors an operation keeps, each cut to MAX_ERROR_LENGTH characters, so its record stays within
 * a Table Storage property (32 K characters) however many instances fail; the last one then
 * counts the rest.
 */
export const MAX_ERRORS = 50;
const MAX_ERROR_LENGTH = 300;

export function withErrors(kept: readonly string[], more: readonly string[]): string[] {
  const all = [
    ...kept,
    ...more.map((error) => (error.length > MAX_ERROR_LENGTH ? `${error.slice(0, MAX_ERROR_LENGTH - 1)}…` : error)),
  ];
  if (all.length <= MAX_ERRORS) return all;
  const counted = /^… and (\d+) more errors\.$/.exec(all[MAX_ERRORS - 1] ?? '');
  const dropped = all.length - (MAX_ERRORS - 1) + (counted ? Number(counted[1]) - 1 : 0);
  return [...all.slice(0, MAX_ERRORS - 1), `… and ${dropped} more errors.`];
}

const NO_PROGRESS = { done: 0, total: 0, updated: 0 } as const;

/** Progress in percent: whole studies done, plus the share of the study under way. */
export function percentComplete(operation: OperationRecord): number {
  if (operation.status === 'completed' || operation.status === 'failed') return 100;
  const { done, total } = operation.studyProgress;
  const share = total > 0 ? done / total : 0;
  return Math.min(99, Math.floor((100 * (operation.studiesDone + share)) / operation.studyInstanceUids.length));
}

/**
 * Works off every unfinished operation whose lease is free (or this worker's). Returns how many
 * operations it finished. Safe to run in several workers at once: each write of an operation is
 * conditional on its ETag, and a worker that loses the lease stops.
 */
export async function runBulkUpdates(storage: Storage, worker: BulkUpdateWorker): Promise<number> {
  const operations = storage.operations;
  if (!operations) return 0;
  let finished = 0;
  for (const operation of await operations.unfinished()) {
    if (worker.stopAt !== undefined && Date.now() >= worker.stopAt) break;
    if (operation.owner !== worker.owner && operation.leaseUntil > Date.now()) continue;
    const run = await runOperation(storage, operation, worker);
    if (run === 'finished') finished += 1;
    if (run === 'paused') await queueAgain(storage, operation.id, worker);
  }
  return finished;
}

/** Sends a paused operation's id to the queue again; without one (or when it fails) the next round goes on. */
async function queueAgain(storage: Storage, id: string, worker: BulkUpdateWorker): Promise<void> {
  await storage.operationQueue?.send(id).catch((error: unknown) => {
    worker.log?.(`Paused operation ${id} was not queued again; the next periodic round goes on with it`, error);
  });
}

/** What became of a request to run one operation. */
export type OperationRun =
  /** This worker finished it. */
  | 'finished'
  /** No operation has the id. */
  | 'missing'
  /** It was finished before. */
  | 'done'
  /** Another worker holds its lease (or took it meanwhile); that worker, or a later round, finishes it. */
  | 'busy'
  /** This worker reached `stopAt`: progress saved, lease given up, the id queued again. */
  | 'paused';

/**
 * Works off one operation (the queue trigger's job), lease-protected like a round: another
 * worker's live lease leaves it alone. Throws when storage fails (the message is then retried).
 */
export async function runBulkUpdate(storage: Storage, id: string, worker: BulkUpdateWorker): Promise<OperationRun> {
  const operation = await storage.operations?.get(id);
  if (!operation) return 'missing';
  if (operation.status === 'completed' || operation.status === 'failed') return 'done';
  if (operation.owner !== worker.owner && operation.leaseUntil > Date.now()) return 'busy';
  const run = await runOperation(storage, operation, worker);
  if (run === 'paused') await queueAgain(storage, id, worker);
  return run === 'lost' ? 'busy' : run;
}

/**
 * One operation, from where its record says it got to: 'lost' when another worker took the lease,
 * 'paused' when `stopAt` came first.
 */
async function runOperation(
  storage: Storage,
  claimed: StoredOperation,
  worker: BulkUpdateWorker,
): Promise<'finished' | 'lost' | 'paused'> {
  const operations = operationsOf(storage);
  const leaseMs = worker.leaseMs ?? DEFAULT_OPERATION_LEASE_MS;
  const { etag: claimedEtag, ...state } = claimed;
  let etag = claimedEtag;
  let current: OperationRecord = state;
  const save = async (next: OperationRecord): Promise<boolean> => {
    const written = await operations.update(
      { ...next, lastUpdatedTime: new Date().toISOString(), leaseUntil: next.owner ? Date.now() + leaseMs : 0 },
      etag,
    );
    if (written === undefined) return false;
    etag = written;
    current = next;
    return true;
  };
  if (!(await save({ ...current, status: 'running', owner: worker.owner }))) return 'lost';
  const changes = current.changes.map(encodeChange);
  let updatedThisRun = 0;
  while (current.studiesDone < current.studyInstanceUids.length) {
    const study = current.studyInstanceUids[current.studiesDone] as string;
    const instances = await storage.index.listInstances(study);
    if (instances.length === 0) {
      const errors = withErrors(current.errors, [`Study ${study} was not found.`]);
      if (
        !(await save({
          ...current,
          errors,
          studiesDone: current.studiesDone + 1,
          studyProgress: NO_PROGRESS,
        }))
      )
        return 'lost';
      continue;
    }
    // Instances written before a restart count (their progress may not have been saved); the
    // change feed entry of one whose worker died before appending it is appended now.
    const base = current.instancesUpdated - current.studyProgress.updated;
    const written = instances.filter((each) => each.updatedBy === current.id);
    await logMissingUpdates(storage, written);
    const errors: string[] = [];
    let updated = written.length;
    for (let start = 0; start < instances.length; start += BULK_UPDATE_BATCH) {
      const batch = instances.slice(start, start + BULK_UPDATE_BATCH).filter((each) => each.updatedBy !== current.id);
      const outcome = await updateBatch({ storage, changes, operationId: current.id, worker }, batch);
      updated += outcome.updated;
      updatedThisRun += outcome.updated;
      errors.push(...outcome.errors);
      const done = Math.min(instances.length, start + BULK_UPDATE_BATCH);
      const progress = { done, total: instances.length, updated };
      if (!(await save({ ...current, studyProgress: progress, instancesUpdated: base + updated }))) return 'lost';
      worker.afterBatch?.(updatedThisRun);
      if (worker.stopAt !== undefined && Date.now() >= worker.stopAt && done < instances.length) {
        return (await save({ ...current, owner: '' })) ? 'paused' : 'lost';
      }
    }
    // A study with an instance that failed counts as failed (the Azure service's study is all or
    // nothing); the instances of it that were updated stay updated, and count.
    const next: OperationRecord = {
      ...current,
      studiesDone: current.studiesDone + 1,
      studyProgress: NO_PROGRESS,
      studiesUpdated: current.studiesUpdated + (errors.length === 0 ? 1 : 0),
      instancesUpdated: base + updated,
      errors: withErrors(
        current.errors,
        errors.length > 0 ? [`Failed to update instances for study ${study}`, ...errors] : [],
      ),
    };
    if (!(await save(next))) return 'lost';
    if (
      worker.stopAt !== undefined &&
      Date.now() >= worker.stopAt &&
      current.studiesDone < current.studyInstanceUids.length
    ) {
      return (await save({ ...current, owner: '' })) ? 'paused' : 'lost';
    }
  }
  // As the Azure service: an operation with any error has failed.
  const ended = await save({ ...current, status: current.errors.length > 0 ? 'failed' : 'completed', owner: '' });
  return ended ? 'finished' : 'lost';
}

/** Appends the `update` entries missing for versions this operation wrote (a worker died in between). */
async function logMissingUpdates(storage: Storage, written: readonly InstanceRecord[]): Promise<void> {
  if (written.length === 0) return;
  const logged = await storage.changeFeed.logged(
    'update',
    written.map((each) => each.version),
  );
  const missing = written.filter((each) => !logged.has(each.version));
  if (missing.length === 0) return;
  await storage.changeFeed.append(
    missing.map((each) => ({
      action: 'update' as const,
      key: {
        studyInstanceUid: each.studyInstanceUid,
        seriesInstanceUid: each.seriesInstanceUid,
        sopInstanceUid: each.sopInstanceUid,
      },
      version: each.version,
    })),
  );
}

/** What every batch of one operation's run shares. */
interface Job {
  readonly storage: Storage;
  readonly changes: readonly ChangedElement[];
  readonly operationId: string;
  readonly worker: BulkUpdateWorker;
}

interface BatchOutcome {
  updated: number;
  errors: string[];
}

/**
 * New versions of a batch of instances of one study, each streamed from its blob through the
 * attribute rewrite into the upsert path. An instance this operation already wrote (a resumed
 * run) is skipped by the store, which checks it against the row it replaces.
 */
async function updateBatch(job: Job, batch: readonly InstanceRecord[]): Promise<BatchOutcome> {
  if (batch.length === 0) return { updated: 0, errors: [] };
  try {
    return await storeBatch(job, batch);
  } catch (error) {
    if (error instanceof StorageUnavailableError || batch.length === 1) throw error;
  }
  // A file the rewrite cannot read fails the whole store call: one at a time, to name it.
  const outcome: BatchOutcome = { updated: 0, errors: [] };
  for (const instance of batch) {
    try {
      const one = await storeBatch(job, [instance]);
      outcome.updated += one.updated;
      outcome.errors.push(...one.errors);
    } catch (error) {
      if (error instanceof StorageUnavailableError) throw error;
      outcome.errors.push(
        `Instance ${instance.sopInstanceUid}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
  return outcome;
}

async function storeBatch(
  { storage, changes, operationId, worker }: Job,
  batch: readonly InstanceRecord[],
): Promise<BatchOutcome> {
  const open = (instance: InstanceRecord) => prefetch(storage.blobs.read(instance.blobName));
  // One blob ahead: its download starts while the one before it is rewritten and staged.
  async function* incoming(): AsyncGenerator<IncomingInstance> {
    await Promise.resolve();
    let next = batch[0] ? open(batch[0]) : undefined;
    try {
      for (let i = 0; next; i++) {
        const source = next;
        const following = batch[i + 1];
        next = following ? open(following) : undefined;
        const syntax = (batch[i] as InstanceRecord).transferSyntaxUid;
        yield { mediaType: 'application/dicom', body: changeAttributes(source, syntax, changes) };
      }
    } finally {
      await next?.close();
    }
  }
  const result = await storeInstances(storage, incoming(), {
    apiVersion: 'v2',
    maxHeaderBytes: worker.maxHeaderBytes ?? 8 * 1024 * 1024,
    upsert: true,
    bulkUpdate: { operationId },
    log: worker.log,
  });
  const errors = result.failed
    .filter((failure) => !failure.problems.includes(ALREADY_UPDATED))
    .map((failure) => `Instance ${failure.sopInstanceUid ?? '?'}: ${failure.problems.join(' ')}`);
  return { updated: result.stored.length, errors };
}

/** An attribute change as the element the rewrite writes: DICOM text padded to even length. */
function encodeChange(change: AttributeChange): ChangedElement {
  const text = change.value.length % 2 === 1 ? `${change.value} ` : change.value;
  // `text`: non-ASCII values are encoded per file, in its Specific Character Set (change-attributes.ts).
  return {
    tag: Number.parseInt(change.tag, 16),
    vr: change.vr,
    value: Buffer.from(text, 'latin1'),
    text: change.value,
  };
}
