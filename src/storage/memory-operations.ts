import type { OperationRecord, OperationStore, StoredOperation } from './ports.js';

/** The in-memory operation store: the same conditional writes as Table Storage's ETags. */
export class MemoryOperations implements OperationStore {
  private readonly rows = new Map<string, StoredOperation>();
  private writes = 0;

  create(operation: OperationRecord): Promise<void> {
    if (this.rows.has(operation.id)) return Promise.reject(new Error(`operation ${operation.id} exists`));
    this.rows.set(operation.id, { ...operation, etag: this.nextEtag() });
    return Promise.resolve();
  }

  get(id: string): Promise<StoredOperation | undefined> {
    return Promise.resolve(this.rows.get(id));
  }

  update(operation: OperationRecord, etag: string): Promise<string | undefined> {
    const current = this.rows.get(operation.id);
    if (current?.etag !== etag) return Promise.resolve(undefined);
    const next = this.nextEtag();
    this.rows.set(operation.id, { ...operation, etag: next });
    return Promise.resolve(next);
  }

  unfinished(): Promise<StoredOperation[]> {
    return Promise.resolve(
      [...this.rows.values()]
        .filter((operation) => operation.status === 'notStarted' || operation.status === 'running')
        .sort((a, b) => a.createdTime.localeCompare(b.createdTime)),
    );
  }

  private nextEtag(): string {
    this.writes += 1;
    return `W/"${this.writes}"`;
  }
}
