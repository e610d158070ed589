import type { TableEntityResult } from '@azure/data-tables';
import {
  instanceEntity,
  nextSeriesEntity,
  nextStudyEntity,
  recordFromEntity,
  seriesFromEntity,
  studyFromEntity,
} from './index-entities.js';
import { instanceRowKey, seriesRowKey, StudyRowKey } from './keys.js';
import type {
  AddInstanceOutcome,
  BlobStore,
  BlobUpload,
  InstanceIndex,
  InstanceKey,
  InstanceRecord,
  PendingBlob,
  PendingBlobs,
  SeriesAggregate,
  Storage,
  StudyAggregate,
} from './ports.js';

type StoredRow = TableEntityResult<Record<string, unknown>>;

interface MemoryBlob {
  bytes: Buffer;
  metadata: Record<string, string>;
  createdOn: Date;
}

/** In-memory blobs for unit tests: same visibility rules as the Azure adapter. */
export class MemoryBlobStore implements BlobStore {
  readonly blobs = new Map<string, MemoryBlob>();

  beginUpload(name: string): BlobUpload {
    const chunks: Buffer[] = [];
    return {
      write: (chunk) => {
        chunks.push(Buffer.from(chunk));
        return Promise.resolve();
      },
      commit: (metadata) => {
        const bytes = Buffer.concat(chunks);
        this.blobs.set(name, { bytes, metadata, createdOn: new Date() });
        return Promise.resolve(bytes.byteLength);
      },
      abort: () => {
        chunks.length = 0;
        return Promise.resolve();
      },
    };
  }

  delete(name: string): Promise<void> {
    this.blobs.delete(name);
    return Promise.resolve();
  }

  async *list(prefix: string): AsyncIterable<{ name: string; metadata: Record<string, string>; createdOn: Date }> {
    await Promise.resolve();
    for (const [name, blob] of this.blobs) {
      if (name.startsWith(prefix)) yield { name, metadata: blob.metadata, createdOn: blob.createdOn };
    }
  }
}

/** In-memory index built from the same row shapes as the Table adapter; writes are atomic. */
export class MemoryInstanceIndex implements InstanceIndex {
  private readonly rows = new Map<string, StoredRow>();

  getInstance(key: InstanceKey): Promise<InstanceRecord | undefined> {
    const row = this.row(key.studyInstanceUid, instanceRowKey(key));
    return Promise.resolve(row ? recordFromEntity(row) : undefined);
  }

  getStudy(studyInstanceUid: string): Promise<StudyAggregate | undefined> {
    const row = this.row(studyInstanceUid, StudyRowKey);
    return Promise.resolve(row ? studyFromEntity(row) : undefined);
  }

  getSeries(studyInstanceUid: string, seriesInstanceUid: string): Promise<SeriesAggregate | undefined> {
    const row = this.row(studyInstanceUid, seriesRowKey(seriesInstanceUid));
    return Promise.resolve(row ? seriesFromEntity(row) : undefined);
  }

  async isReferenced(key: InstanceKey, version: string): Promise<boolean> {
    return (await this.getInstance(key))?.version === version;
  }

  addInstance(record: InstanceRecord): Promise<AddInstanceOutcome> {
    const pk = record.studyInstanceUid;
    if (this.row(pk, instanceRowKey(record))) return Promise.resolve('exists');
    const series = this.row(pk, seriesRowKey(record.seriesInstanceUid));
    const study = this.row(pk, StudyRowKey);
    for (const entity of [
      instanceEntity(record),
      nextSeriesEntity(record, series),
      nextStudyEntity(record, study, series === undefined),
    ]) {
      this.rows.set(`${pk}\n${entity.rowKey}`, { ...entity, etag: String(Date.now()) });
    }
    return Promise.resolve('added');
  }

  private row(partitionKey: string, rowKey: string): StoredRow | undefined {
    return this.rows.get(`${partitionKey}\n${rowKey}`);
  }
}

export class MemoryPendingBlobs implements PendingBlobs {
  readonly notes = new Map<string, PendingBlob>();

  add(pending: PendingBlob): Promise<void> {
    this.notes.set(pending.version, pending);
    return Promise.resolve();
  }

  remove(pending: PendingBlob): Promise<void> {
    this.notes.delete(pending.version);
    return Promise.resolve();
  }

  async *olderThan(cutoff: Date): AsyncIterable<PendingBlob> {
    await Promise.resolve();
    const old = [...this.notes.values()].filter((note) => note.createdAt < cutoff);
    yield* old.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }
}

export type MemoryStorage = Storage & {
  blobs: MemoryBlobStore;
  index: MemoryInstanceIndex;
  pending: MemoryPendingBlobs;
};

export function createMemoryStorage(): MemoryStorage {
  return { blobs: new MemoryBlobStore(), index: new MemoryInstanceIndex(), pending: new MemoryPendingBlobs() };
}
