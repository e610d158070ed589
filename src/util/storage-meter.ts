import { AsyncLocalStorage } from 'node:async_hooks';
import { compareText } from './compare.js';

/**
 * The storage operations one request made: every HTTP round trip to Blob and Table Storage
 * (retries included), by kind. These are what Azure bills, and they carry over from Azurite to
 * Azure unchanged. Counts only: no names, keys or UIDs.
 */
export interface StorageCounts {
  /** Round trips, all kinds together. */
  readonly operations: number;
  /** Round trips by kind, e.g. `blob.put-block`, `table.query`, `table.batch`. */
  readonly byKind: Readonly<Record<string, number>>;
  /** Entity operations carried by the entity-group transactions (`table.batch`). */
  readonly batchEntities: number;
  /** Entities returned by point reads and queries. */
  readonly entitiesRead: number;
  /** Response bytes the service sent (Content-Length). */
  readonly bytesRead: number;
  /** Request body bytes sent to the service. */
  readonly bytesWritten: number;
  /**
   * Round trips in sequence: how many times an operation started while none of the request's
   * was in flight. Operations started together count once, so this is the request's storage
   * latency in round trips (on Azure each is a network round trip), whatever the machine.
   */
  readonly inSequence: number;
}

export interface StorageOperation {
  readonly kind: string;
  readonly batchEntities?: number;
  readonly entitiesRead?: number;
  readonly bytesRead?: number;
  readonly bytesWritten?: number;
}

/** The counts of one request; the Azure adapters' pipeline policy adds to the active one. */
export class StorageMeter {
  private operations = 0;
  private readonly byKind = new Map<string, number>();
  private batchEntities = 0;
  private entitiesRead = 0;
  private bytesRead = 0;
  private bytesWritten = 0;
  private inFlight = 0;
  private inSequence = 0;

  /** An operation goes out; call what it returns when its answer (or failure) is in. */
  begin(): () => void {
    if (this.inFlight === 0) this.inSequence += 1;
    this.inFlight += 1;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.inFlight -= 1;
    };
  }

  record(operation: StorageOperation): void {
    this.operations += 1;
    this.byKind.set(operation.kind, (this.byKind.get(operation.kind) ?? 0) + 1);
    this.batchEntities += operation.batchEntities ?? 0;
    this.entitiesRead += operation.entitiesRead ?? 0;
    this.bytesRead += operation.bytesRead ?? 0;
    this.bytesWritten += operation.bytesWritten ?? 0;
  }

  counts(): StorageCounts {
    return {
      operations: this.operations,
      byKind: Object.fromEntries([...this.byKind].sort(([a], [b]) => compareText(a, b))),
      batchEntities: this.batchEntities,
      entitiesRead: this.entitiesRead,
      bytesRead: this.bytesRead,
      bytesWritten: this.bytesWritten,
      inSequence: this.inSequence,
    };
  }
}

const active = new AsyncLocalStorage<StorageMeter>();

/** Runs `work` (and everything it starts) with `meter` counting its storage operations. */
export function withStorageMeter<T>(meter: StorageMeter, work: () => T): T {
  return active.run(meter, work);
}

/** The meter of the request this code runs for; undefined outside one (start-up, the sweep timer). */
export function currentStorageMeter(): StorageMeter | undefined {
  return active.getStore();
}
