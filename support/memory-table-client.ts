/**
 * An in-process stand-in for @azure/data-tables' TableClient: the calls our Table adapters make
 * (point reads, paged queries, inserts, upserts, updates, deletes, entity-group transactions),
 * with the service's answers (404, 409, 412, ETags that change on every write, pages of at most
 * 1000 entities with a continuation when more rows match) and its costs: each call records one
 * operation of the kind the storage meter's pipeline policy gives the same HTTP request
 * (src/storage/azure-storage-meter.ts), so the real adapters over this client count what they
 * would count on Azure. Rows are kept in key order and a query reads only its key range, as
 * the service does; Azurite, which scans its whole table per query, cannot hold 100k studies.
 *
 * Continuations follow Azurite: one is returned exactly when more rows match. The service may
 * also stop early (at partition boundaries or after 5 seconds), which adds queries this client
 * never makes.
 */
import type {
  TableClient,
  TableEntity,
  TableEntityResult,
  TableEntityResultPage,
  TransactionAction,
  UpdateMode,
} from '@azure/data-tables';
import { parseFilter, type ParsedFilter } from './odata-filter.js';
import {
  compositeKey,
  rowJson,
  rowLength,
  rowVersion,
  splitKey,
  storedRow,
  TableRows,
  type StoredRow,
} from './memory-table-rows.js';

/** What a storage meter takes (util/storage-meter.ts StorageOperation), named here so support imports nothing of ours. */
export interface MeteredOperation {
  readonly kind: string;
  readonly batchEntities?: number;
  readonly entitiesRead?: number;
  readonly bytesRead?: number;
  readonly bytesWritten?: number;
}

export interface OperationMeter {
  record(operation: MeteredOperation): void;
}

export interface MemoryTableOptions {
  /** The meter of the request running now, if any (util/storage-meter.ts currentStorageMeter). */
  readonly meter?: () => OperationMeter | undefined;
}

const EVERY_KEY = { fromInclusive: true, toInclusive: true } as const;
/** The service's largest page, and its default. */
const MAX_PAGE = 1000;
/** Operations in one entity-group transaction. */
const MAX_TRANSACTION = 100;

/** An error the adapters read as the SDK's RestError: they look only at `statusCode`. */
export class TableServiceError extends Error {
  override readonly name = 'RestError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
  ) {
    super(`${statusCode} ${code}`);
  }
}

/** A binary (Edm.Binary) value as kept in a row's JSON: base64 under this one key. */
interface BinaryValue {
  readonly $binary: string;
}
type Properties = Record<string, string | number | boolean | BinaryValue>;

/** A row's properties as the SDK returns them: binary values as Uint8Array. */
function fromRow(json: string): Record<string, unknown> {
  return JSON.parse(json, (_, value: unknown) =>
    value !== null && typeof value === 'object' && typeof (value as Partial<BinaryValue>).$binary === 'string'
      ? new Uint8Array(Buffer.from((value as BinaryValue).$binary, 'base64'))
      : value,
  ) as Record<string, unknown>;
}

const KEY_NAMES = new Set(['partitionKey', 'rowKey', 'etag', 'timestamp', 'odata.etag']);

function propertiesOf(entity: object): Properties {
  const properties: Properties = {};
  for (const [name, value] of Object.entries(entity)) {
    if (KEY_NAMES.has(name) || value === undefined) continue;
    if (value instanceof Uint8Array) {
      properties[name] = { $binary: Buffer.from(value).toString('base64') };
      continue;
    }
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      // Our adapters write only these; a typed value ({ value, type }) would need its EDM rules.
      throw new Error(`memory table: property ${name} is a ${typeof value}, not a string, number or boolean`);
    }
    properties[name] = value;
  }
  return properties;
}

function keysOf(entity: { partitionKey?: unknown; rowKey?: unknown }): { partitionKey: string; rowKey: string } {
  if (typeof entity.partitionKey !== 'string' || typeof entity.rowKey !== 'string') {
    throw new TableServiceError(400, 'PropertiesNeedValue');
  }
  return { partitionKey: entity.partitionKey, rowKey: entity.rowKey };
}

const etagOf = (row: StoredRow): string => `W/"${rowVersion(row)}"`;

interface ListOptions {
  readonly queryOptions?: { readonly filter?: string; readonly select?: readonly string[] };
}

export class MemoryTableClient {
  private readonly rows = new TableRows();
  private version = 0;

  constructor(private readonly options: MemoryTableOptions = {}) {}

  /** Rows held (every partition), for the bench's memory report. */
  get size(): number {
    return this.rows.size;
  }

  /** This client where the adapters want a TableClient: they use only the methods above. */
  asTableClient(): TableClient {
    return this as unknown as TableClient;
  }

  private record(operation: MeteredOperation): void {
    this.options.meter?.()?.record(operation);
  }

  private nextRow(properties: Properties): StoredRow {
    this.version += 1;
    return storedRow(this.version, properties);
  }

  /**
   * A round trip: the caller continues after other work queued meanwhile, as over a network (a
   * microtask, not a timer: a million studies are some thirty million calls).
   */
  private async roundTrip<T>(work: () => T): Promise<T> {
    await Promise.resolve();
    return work();
  }

  /** Every row in key order, as the entity that would write it (to copy the table elsewhere). */
  *entities(): Generator<TableEntity<Properties>> {
    for (const key of this.rows.keys('', EVERY_KEY, EVERY_KEY)) {
      const row = this.rows.get(key);
      if (row) yield { ...fromRow(rowJson(row)), ...splitKey(key) };
    }
  }

  createTable(): Promise<void> {
    this.record({ kind: 'table.table-post' });
    return this.roundTrip(() => undefined);
  }

  async getEntity<T extends object = Record<string, unknown>>(
    partitionKey: string,
    rowKey: string,
  ): Promise<TableEntityResult<T>> {
    return this.roundTrip(() => {
      const row = this.rows.get(compositeKey(partitionKey, rowKey));
      const bytes = row ? rowLength(row) + partitionKey.length + rowKey.length : 0;
      this.record({ kind: 'table.get-entity', entitiesRead: row ? 1 : 0, bytesRead: bytes });
      if (!row) throw new TableServiceError(404, 'ResourceNotFound');
      return this.result<T>(partitionKey, rowKey, row);
    });
  }

  private result<T extends object>(
    partitionKey: string,
    rowKey: string,
    row: StoredRow,
    select?: readonly string[],
  ): TableEntityResult<T> {
    const all = fromRow(rowJson(row));
    const entity: Record<string, unknown> = { etag: etagOf(row) };
    if (!select) return { ...all, ...entity, partitionKey, rowKey } as TableEntityResult<T>;
    for (const name of select) {
      if (name === 'partitionKey' || name === 'PartitionKey') entity['partitionKey'] = partitionKey;
      else if (name === 'rowKey' || name === 'RowKey') entity['rowKey'] = rowKey;
      else if (name in all) entity[name] = all[name];
    }
    return entity as TableEntityResult<T>;
  }

  listEntities<T extends object = Record<string, unknown>>(options: ListOptions = {}) {
    const filter = parseFilter(options.queryOptions?.filter);
    const select = options.queryOptions?.select;
    const pages = (settings: { maxPageSize?: number; continuationToken?: string } = {}) =>
      this.pages<T>(filter, select, settings);
    async function* entities(): AsyncGenerator<TableEntityResult<T>> {
      for await (const page of pages()) yield* page;
    }
    const all = entities();
    return {
      next: () => all.next(),
      [Symbol.asyncIterator]() {
        return this;
      },
      byPage: pages,
    };
  }

  /** Pages as the SDK fetches them: the first at once, each further one only when asked for. */
  private async *pages<T extends object>(
    filter: ParsedFilter,
    select: readonly string[] | undefined,
    settings: { maxPageSize?: number; continuationToken?: string },
  ): AsyncGenerator<TableEntityResultPage<T>> {
    const top = Math.min(MAX_PAGE, Math.max(1, settings.maxPageSize ?? MAX_PAGE));
    let start = settings.continuationToken;
    for (;;) {
      const page = await this.roundTrip(() => this.page<T>(filter, select, top, start));
      yield page;
      if (!page.continuationToken) return;
      start = page.continuationToken;
    }
  }

  /** One query request: up to `top` matching rows from `start`, and where the next page starts if more match. */
  private page<T extends object>(
    filter: ParsedFilter,
    select: readonly string[] | undefined,
    top: number,
    start: string | undefined,
  ): TableEntityResultPage<T> {
    const found: TableEntityResult<T>[] = [];
    let bytes = 0;
    let continuationToken: string | undefined;
    for (const key of this.rows.keys(start ?? '', filter.partitions, filter.rows)) {
      const row = this.rows.get(key) as StoredRow;
      const { partitionKey, rowKey } = splitKey(key);
      const keys = { PartitionKey: partitionKey, RowKey: rowKey };
      const passes = filter.keysOnly
        ? filter.matches(keys)
        : filter.matches({ ...(JSON.parse(rowJson(row)) as Properties), ...keys });
      if (!passes) continue;
      if (found.length === top) {
        continuationToken = key;
        break;
      }
      found.push(this.result<T>(partitionKey, rowKey, row, select));
      bytes += rowLength(row) + key.length;
    }
    this.record({ kind: 'table.query', entitiesRead: found.length, bytesRead: bytes });
    return Object.assign(found, { continuationToken });
  }

  createEntity<T extends object>(entity: TableEntity<T>): Promise<object> {
    return this.write('table.insert', entity, () => {
      this.apply(this.liveView(), ['create', entity]);
    });
  }

  upsertEntity<T extends object>(entity: TableEntity<T>, mode: UpdateMode = 'Merge'): Promise<object> {
    return this.write(mode === 'Replace' ? 'table.upsert' : 'table.upsert-merge', entity, () => {
      this.apply(this.liveView(), ['upsert', entity, mode]);
    });
  }

  updateEntity<T extends object>(
    entity: TableEntity<T>,
    mode: UpdateMode = 'Merge',
    options: { etag?: string } = {},
  ): Promise<object> {
    // The SDK always sends If-Match (`*` without an ETag), so the meter names these update and merge.
    return this.write(mode === 'Replace' ? 'table.update' : 'table.merge', entity, () => {
      this.apply(this.liveView(), ['update', entity, mode, options]);
    });
  }

  deleteEntity(partitionKey: string, rowKey: string, options: { etag?: string } = {}): Promise<object> {
    return this.write('table.delete', { partitionKey, rowKey }, () => {
      this.apply(this.liveView(), ['delete', { partitionKey, rowKey }, options]);
    });
  }

  /**
   * An entity-group transaction: every action in one partition, at most 100, no row twice; all
   * apply or none (the first failing action's status, as the service answers the change set).
   */
  submitTransaction(actions: TransactionAction[]): Promise<object> {
    const bytes = actions.reduce((sum, action) => sum + JSON.stringify(action[1]).length, 0);
    this.record({ kind: 'table.batch', batchEntities: actions.length, bytesWritten: bytes });
    return this.roundTrip(() => {
      const keys = actions.map((action) => keysOf(action[1]));
      const partitions = new Set(keys.map((key) => key.partitionKey));
      const distinct = new Set(keys.map((key) => compositeKey(key.partitionKey, key.rowKey)));
      if (actions.length === 0 || actions.length > MAX_TRANSACTION || partitions.size > 1) {
        throw new TableServiceError(400, 'InvalidInput');
      }
      if (distinct.size !== actions.length) throw new TableServiceError(400, 'InvalidDuplicateRow');
      const staged = new Map<string, StoredRow | undefined>();
      const view: RowView = {
        get: (key) => (staged.has(key) ? staged.get(key) : this.rows.get(key)),
        set: (key, row) => staged.set(key, row),
        delete: (key) => staged.set(key, undefined),
      };
      for (const action of actions) this.apply(view, action);
      for (const [key, row] of staged) {
        if (row) this.rows.set(key, row);
        else this.rows.delete(key);
      }
      // As the service answers: each written entity's new ETag, found by its RowKey.
      const subResponses = keys.map((key) => {
        const row = staged.get(compositeKey(key.partitionKey, key.rowKey));
        return { status: 204, rowKey: key.rowKey, etag: row ? etagOf(row) : undefined };
      });
      return {
        status: 202,
        subResponses,
        getResponseForEntity: (rowKey: string) => subResponses.find((each) => each.rowKey === rowKey),
      };
    });
  }

  private write(kind: string, entity: object, work: () => void): Promise<object> {
    this.record({ kind, bytesWritten: JSON.stringify(entity).length });
    return this.roundTrip(() => {
      work();
      return {};
    });
  }

  private liveView(): RowView {
    return {
      get: (key) => this.rows.get(key),
      set: (key, row) => {
        this.rows.set(key, row);
      },
      delete: (key) => {
        this.rows.delete(key);
      },
    };
  }

  /** One entity operation with the service's checks: 409 on a create of a row that exists, 404 and 412 on updates and deletes. */
  private apply(view: RowView, action: Operation): void {
    const { partitionKey, rowKey } = keysOf(action[1]);
    const key = compositeKey(partitionKey, rowKey);
    const current = view.get(key);
    const etagMatches = (etag: string | undefined) =>
      etag === undefined || etag === '*' || (current !== undefined && etag === etagOf(current));
    switch (action[0]) {
      case 'create':
        if (current) throw new TableServiceError(409, 'EntityAlreadyExists');
        view.set(key, this.nextRow(propertiesOf(action[1])));
        return;
      case 'upsert':
        view.set(key, this.nextRow(merged(current, action[1], action[2] ?? 'Merge')));
        return;
      case 'update': {
        if (!current) throw new TableServiceError(404, 'ResourceNotFound');
        if (!etagMatches(action[3]?.etag)) throw new TableServiceError(412, 'UpdateConditionNotSatisfied');
        view.set(key, this.nextRow(merged(current, action[1], action[2] ?? 'Merge')));
        return;
      }
      case 'delete':
        if (!current) throw new TableServiceError(404, 'ResourceNotFound');
        if (action.length === 3 && !etagMatches(action[2].etag)) {
          throw new TableServiceError(412, 'UpdateConditionNotSatisfied');
        }
        view.delete(key);
        return;
    }
  }
}

/** A transaction action, or a single delete with its If-Match (a transaction's deletes carry none). */
type Operation = TransactionAction | ['delete', TableEntity, { etag?: string | undefined }];

interface RowView {
  get(key: string): StoredRow | undefined;
  set(key: string, row: StoredRow): void;
  delete(key: string): void;
}

function merged(current: StoredRow | undefined, entity: object, mode: UpdateMode): Properties {
  const next = propertiesOf(entity);
  if (mode === 'Replace' || !current) return next;
  return { ...(JSON.parse(rowJson(current)) as Properties), ...next };
}
