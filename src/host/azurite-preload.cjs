// Loaded with `node -r` into the Azurite process that src/host/azurite.ts starts (npm start, the
// tests, the bench). Azurite keeps its metadata in LokiJS collections, and three LokiJS paths make
// it slow down with the size of the data (docs/development.md "Azurite at scale" has the profile):
//
// 1. Blob deletes: LokiJS `findAndRemove` rebuilds (re-sorts) every binary index of the blob
//    collection to remove even one document, O(B log B) per delete for B blobs in the account.
//    Here the few matching documents are found by their most selective key and removed one by
//    one, which keeps the indexes up to date without a sort.
// 2. Point reads `findOne({ RowKey, PartitionKey })`: LokiJS narrows by the first key's index only.
//    Every study row has the RowKey `study`, so each study-row read scanned all study rows. Here
//    the smaller of the two index ranges is scanned.
// 3. Table queries evaluate the OData filter on every entity of the table. A filter that is an
//    `and` chain starting with `PartitionKey eq` (or a PartitionKey range), its `or`s only inside
//    parenthesised later terms (`... and (RowKey eq 'a' or RowKey eq 'b')`), starts from the
//    PartitionKey index instead; the same filter, continuation, order and limit then apply, so
//    the answer is the same. When the chain (with no `or` or `not` at all) also bounds RowKey from
//    both sides and the RowKey index range is the smaller one, it starts from that range instead:
//    the change feed partition holds every entry ever written, and `RowKey gt 'e|…' and RowKey lt
//    …` after a checkpoint is a few rows of it.
//
// Each patch applies only to the Azurite and LokiJS versions it was written against; with any
// other version Azurite runs unpatched (slower at scale, equally correct).
'use strict';
const path = require('node:path');

const AZURITE_VERSION = '3.37.0';
const LOKIJS_VERSION = '1.5.12';

const azuriteRoot = path.dirname(require.resolve('azurite/package.json'));
const lokiPackage = require.resolve('lokijs/package.json', { paths: [azuriteRoot] });
const versionsMatch =
  require(path.join(azuriteRoot, 'package.json')).version === AZURITE_VERSION &&
  require(lokiPackage).version === LOKIJS_VERSION;

if (versionsMatch) {
  const Loki = require(path.dirname(lokiPackage));
  patchRemove(Loki.Collection.prototype);
  patchPointRead(Loki.Collection.prototype);
  patchTableQuery(
    require(path.join(azuriteRoot, 'dist/src/table/persistence/LokiTableMetadataStore.js')).default.prototype,
    require(path.join(azuriteRoot, 'dist/src/table/persistence/LokiTableStoreQueryGenerator.js')).default,
  );
}

/** Documents removed one by one (adaptive index upkeep) rather than by a batch that re-sorts every index. */
function patchRemove(collection) {
  const original = collection.findAndRemove;
  collection.findAndRemove = function (filter) {
    if (!this.adaptiveBinaryIndices || !filter || typeof filter !== 'object') return original.call(this, filter);
    // Look up by the selective key first, not by accountName, which every blob shares.
    const selective = ['name', 'blobName', 'id'].find((key) => typeof filter[key] === 'string');
    const documents = this.find(selective ? { [selective]: filter[selective], ...filter } : filter);
    if (documents.length > 32) return original.call(this, filter);
    for (const document of documents) this.remove(document);
  };
}

/** `findOne({ RowKey, PartitionKey })` scans the narrower of the two index ranges. */
function patchPointRead(collection) {
  const original = collection.findOne;
  collection.findOne = function (query) {
    const plain =
      query &&
      typeof query.RowKey === 'string' &&
      typeof query.PartitionKey === 'string' &&
      Object.keys(query).length === 2 &&
      this.adaptiveBinaryIndices &&
      !this.cloneObjects &&
      this.binaryIndices.RowKey &&
      this.binaryIndices.PartitionKey;
    if (!plain) return original.call(this, query);
    const byRow = this.calculateRange('$eq', 'RowKey', query.RowKey);
    const byPartition = this.calculateRange('$eq', 'PartitionKey', query.PartitionKey);
    const useRow = byRow[1] - byRow[0] <= byPartition[1] - byPartition[0];
    const [from, to] = useRow ? byRow : byPartition;
    const positions = this.binaryIndices[useRow ? 'RowKey' : 'PartitionKey'].values;
    for (let i = from; i >= 0 && i <= to; i++) {
      const document = this.data[positions[i]];
      if (document && document.RowKey === query.RowKey && document.PartitionKey === query.PartitionKey) return document;
    }
    return null;
  };
}

/** Queries narrowed by PartitionKey start from its index; anything else runs as Azurite wrote it. */
function patchTableQuery(store, generator) {
  const literal = "'((?:[^']|'')*)'";
  const equal = new RegExp(`^\\s*\\(?\\s*PartitionKey\\s+eq\\s+${literal}`);
  const range = new RegExp(
    `^\\s*\\(?\\s*PartitionKey\\s+(?:ge|gt)\\s+${literal}\\s*\\)?\\s+and\\s+\\(?\\s*PartitionKey\\s+(?:lt|le)\\s+${literal}`,
  );
  const unquote = (text) => text.replace(/''/g, "'");
  /**
   * Whether every `or` and `not` of a filter (literals blanked) sits in parentheses deeper than its
   * leading term, as in `PartitionKey eq 'p' and (RowKey eq 'a' or RowKey eq 'b')`: the terms
   * around the leading one are then joined by `and` only, so the leading term must hold.
   */
  const alternativesNested = (bare) => {
    const leading = /^\s*\(/.test(bare) ? 1 : 0;
    let depth = 0;
    for (const [token] of bare.matchAll(/\(|\)|\b(?:or|not)\b/gi)) {
      if (token === '(') depth += 1;
      else if (token === ')') depth -= 1;
      else if (depth <= leading) return false;
    }
    return true;
  };
  /**
   * The index lookup a filter allows: an `and` chain whose first term bounds PartitionKey (a
   * range only without any `or` or `not`: its second term could sit in their group).
   */
  const rowLow = new RegExp(`\\bRowKey\\s+(?:ge|gt)\\s+${literal}`);
  const rowHigh = new RegExp(`\\bRowKey\\s+(?:lt|le)\\s+${literal}`);
  const indexLookup = (filter) => {
    if (typeof filter !== 'string') return undefined;
    const bare = filter.replace(/'(?:[^']|'')*'/g, "''");
    const alternatives = /\b(or|not)\b/i.test(bare);
    if (alternatives && !alternativesNested(bare)) return undefined;
    const between = alternatives ? null : range.exec(filter);
    if (between) return { PartitionKey: { $between: [unquote(between[1]), unquote(between[2])] } };
    const only = equal.exec(filter);
    if (!only) return undefined;
    // In an `and` chain every term holds, so RowKey bounds anywhere in it bound the answer.
    const low = alternatives ? null : rowLow.exec(filter);
    const high = alternatives ? null : rowHigh.exec(filter);
    const rows = low && high ? [unquote(low[1]), unquote(high[1])] : undefined;
    return { lookup: { PartitionKey: unquote(only[1]) }, rows };
  };
  /** The partition's index range, or the RowKey range when that one is smaller. */
  const narrowest = (collection, found) => {
    if (!found.rows || !collection.adaptiveBinaryIndices || !collection.binaryIndices.RowKey) return found.lookup;
    if (!collection.binaryIndices.PartitionKey) return found.lookup;
    const byRow = collection.calculateRange('$between', 'RowKey', found.rows);
    const byPartition = collection.calculateRange('$eq', 'PartitionKey', found.lookup.PartitionKey);
    return byRow[1] - byRow[0] < byPartition[1] - byPartition[0] ? { RowKey: { $between: found.rows } } : found.lookup;
  };
  const compare = (a, b) =>
    a.PartitionKey === b.PartitionKey
      ? a.RowKey === b.RowKey
        ? 0
        : a.RowKey > b.RowKey
          ? 1
          : -1
      : a.PartitionKey > b.PartitionKey
        ? 1
        : -1;
  const original = store.queryTableEntities;
  store.queryTableEntities = async function (context, account, table, queryOptions, nextPartitionKey, nextRowKey) {
    const found = indexLookup(queryOptions && queryOptions.filter);
    if (!found) return original.call(this, context, account, table, queryOptions, nextPartitionKey, nextRowKey);
    const collection = this.getEntityCollection(account, table, context);
    const lookup = found.lookup ? narrowest(collection, found) : found;
    const where = generator.generateQueryForPersistenceLayer(queryOptions, context);
    const max = this.getMaxResultsOption(queryOptions);
    const fromPartition = this.decodeContinuationHeader(nextPartitionKey);
    const fromRow = this.decodeContinuationHeader(nextRowKey);
    const result = collection
      .chain()
      .find(lookup)
      .where(where)
      .where((entity) => {
        if (fromPartition !== undefined && entity.PartitionKey > fromPartition) return true;
        if (fromRow !== undefined) {
          return (
            entity.RowKey >= fromRow && (entity.PartitionKey === fromPartition || entity.PartitionKey === undefined)
          );
        }
        return fromPartition === undefined || entity.PartitionKey >= fromPartition;
      })
      .sort(compare)
      .limit(max + 1)
      .data();
    const page = this.adjustQueryResultforTop(result, max);
    return [result, page.nextPartitionKeyResponse, page.nextRowKeyResponse];
  };
}
