/**
 * Azure Table Storage limits (learn.microsoft.com "Understanding the Table service data model").
 * Azurite enforces only some of them, so they are checked here before anything is sent: what the
 * tests accept, Azure accepts too.
 */
export const TableLimits = {
  /** Custom properties per entity (255 minus PartitionKey, RowKey and Timestamp). */
  maxProperties: 252,
  /** Whole entity, names and values, in bytes. */
  maxEntityBytes: 1024 * 1024,
  /** One string or binary property value in bytes (strings are UTF-16: 32 Ki characters). */
  maxPropertyBytes: 64 * 1024,
  /** PartitionKey and RowKey each, in bytes (UTF-16). */
  maxKeyBytes: 1024,
  /** Operations in one entity-group transaction. */
  maxBatchOperations: 100,
  /** Payload of one entity-group transaction. */
  maxBatchBytes: 4 * 1024 * 1024,
  /**
   * Comparisons in one query's $filter ("Querying tables and entities",
   * https://learn.microsoft.com/rest/api/storageservices/querying-tables-and-entities).
   */
  maxFilterComparisons: 15,
} as const;

export class TableLimitError extends Error {
  override readonly name = 'TableLimitError';
}

type EntityValue = string | number | boolean | Date | Uint8Array | null | undefined;

/** Storage size of one property value as Azure counts it. */
function valueBytes(value: EntityValue): number {
  if (typeof value === 'string') return 4 + value.length * 2;
  if (value instanceof Uint8Array) return 4 + value.byteLength;
  if (typeof value === 'boolean') return 1;
  return 8; // numbers (Int32/Int64/Double) and dates
}

/** Size of an entity as Azure computes it: 4 + keys + per property (8 + name + value). */
export function entityBytes(entity: Readonly<Record<string, EntityValue>>): number {
  let total = 4;
  for (const [name, value] of Object.entries(entity)) {
    if (value === undefined || value === null) continue;
    if (name === 'partitionKey' || name === 'rowKey') total += String(value).length * 2;
    else total += 8 + name.length * 2 + valueBytes(value);
  }
  return total;
}

/** Throws TableLimitError naming the first limit the entity breaks. */
export function checkEntity(entity: Readonly<Record<string, EntityValue>>): number {
  let properties = 0;
  for (const [name, value] of Object.entries(entity)) {
    if (value === undefined || value === null) continue;
    if (name === 'partitionKey' || name === 'rowKey') {
      if (String(value).length * 2 > TableLimits.maxKeyBytes)
        throw new TableLimitError(`${name} is longer than 1 KiB.`);
      continue;
    }
    properties += 1;
    if (
      (typeof value === 'string' || value instanceof Uint8Array) &&
      valueBytes(value) - 4 > TableLimits.maxPropertyBytes
    ) {
      throw new TableLimitError(`Property ${name} is larger than 64 KiB.`);
    }
  }
  if (properties > TableLimits.maxProperties) throw new TableLimitError(`An entity has more than 252 properties.`);
  const bytes = entityBytes(entity);
  if (bytes > TableLimits.maxEntityBytes) throw new TableLimitError(`An entity is larger than 1 MiB.`);
  return bytes;
}

/** Checks a transaction's entities against the per-entity and per-batch limits. */
export function checkBatch(entities: readonly Readonly<Record<string, EntityValue>>[]): void {
  if (entities.length > TableLimits.maxBatchOperations) {
    throw new TableLimitError(`A transaction holds at most ${TableLimits.maxBatchOperations} operations.`);
  }
  // Entities travel as JSON inside a multipart body; twice the stored size bounds that payload.
  const payload = entities.reduce((sum, entity) => sum + checkEntity(entity) * 2, 0);
  if (payload > TableLimits.maxBatchBytes) throw new TableLimitError('A transaction is larger than 4 MiB.');
}
