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
//    the answer is the same. When the chain also bounds RowKey from both sides in terms of its
//    own (not inside a group with an `or`) and the RowKey index range is the smaller one, it
//    starts from that range instead: the change feed partition holds every entry ever written,
//    and `RowKey gt 'e|…' and RowKey lt …` after a checkpoint, or a DELETE's marker read
//    `RowKey ge 'm|…' and RowKey le 'm|…' and (RowKey eq … or …)`, is a few rows of it.
// 4. Blob garbage collection (every 10 minutes, and at start): Azurite lists every blob page by
//    page, each page a scan and sort of all blobs, and every extent, each page a scan of all
//    extents, then deletes the unreferenced extents one by one; all of it without yielding, so
//    the whole collection stalled every request (seconds at 100,000 instances). Here each page
//    walks an index from its marker (a page costs its size), and the collection yields to
//    requests before each page and every few extent deletions.
// 5. Removing a blob document walks every index of the blob collection; three of its four indexes
//    hold a value every blob shares (account, container, snapshot ""), so each walk covered all blobs
//    (16 ms a blob at 240k blobs). Those three are dropped; lookups start from the name index.
//
// Each patch applies only to the Azurite and LokiJS versions it was written against; with any
// other version Azurite runs unpatched (slower at scale, equally correct).
'use strict';
const path = require('node:path');
const { setImmediate } = require('node:timers');

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
  const blobStore = require(path.join(azuriteRoot, 'dist/src/blob/persistence/LokiBlobMetadataStore.js')).default;
  patchBlobIndexes(blobStore.prototype);
  patchGarbageCollection(
    blobStore.prototype,
    require(path.join(azuriteRoot, 'dist/src/common/persistence/LokiExtentMetadataStore.js')).default.prototype,
    require(path.join(azuriteRoot, 'dist/src/common/persistence/MemoryExtentStore.js')).default.prototype,
  );
}

/** Blob properties whose index the preload drops (see patchBlobIndexes). */
const SHARED_BLOB_KEYS = ['accountName', 'containerName', 'snapshot'];

/** A turn for the requests waiting on Azurite's only thread. */
const yieldToRequests = () => new Promise((resolve) => setImmediate(resolve));

/** Extent deletions between two turns for requests: each walks the extent collection's indexes. */
const DELETIONS_PER_TURN = 16;

/** The first position of the sorted `ids` holding an id above `marker`. */
function firstAbove(ids, marker) {
  let low = 0;
  let high = ids.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (ids[middle] <= marker) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Up to `max` documents of `coll` with a `$loki` above `marker` that `keep` accepts, in `$loki` order. */
function afterMarker(coll, marker, max, keep) {
  const docs = [];
  // data[] is in $loki order (inserts append, removes splice), and idIndex mirrors it. LokiJS
  // builds idIndex on the first lookup by $loki (a remove, say) and keeps it up to date after.
  coll.ensureId();
  for (let i = firstAbove(coll.idIndex, marker); i < coll.data.length && docs.length < max; i++) {
    if (keep(coll.data[i])) docs.push(coll.data[i]);
  }
  return docs;
}

/**
 * Indexes of a value every blob shares (one account, a few containers, no snapshots) are dropped
 * once the store has loaded: a lookup by them is a scan anyway, and each blob removed walked each
 * of them whole (a linear search for its entry in one equal range, then every later position
 * shifted). The name index, which every point lookup starts from, stays.
 */
function patchBlobIndexes(blobStore) {
  const init = blobStore.init;
  blobStore.init = async function () {
    await init.call(this);
    const blobs = this.db.getCollection(this.BLOBS_COLLECTION);
    for (const key of SHARED_BLOB_KEYS) Reflect.deleteProperty(blobs.binaryIndices, key);
  };
}

/**
 * The garbage collector's listings (each used by it alone) walk an index from their marker and
 * yield before each page; its extent deletions yield every few. Same pages, order and markers,
 * except that blob names reading as numbers are paged in string order like the rest (Azurite's
 * own listing sorts them by value but compares its marker as a string, and so skipped some).
 */
function patchGarbageCollection(blobStore, extentMetadata, memoryExtents) {
  const listAllBlobs = blobStore.listAllBlobs;
  blobStore.listAllBlobs = async function (maxResults = 5000, marker = '', includeSnapshots, includeUncommitted) {
    await yieldToRequests();
    const coll = this.db.getCollection(this.BLOBS_COLLECTION);
    if (!coll.adaptiveBinaryIndices || !coll.binaryIndices.name) {
      return listAllBlobs.call(this, maxResults, marker, includeSnapshots, includeUncommitted);
    }
    coll.ensureIndex('name');
    const positions = coll.binaryIndices.name.values;
    const wanted = (doc) =>
      doc.name > marker && (includeSnapshots || doc.snapshot.length === 0) && (includeUncommitted || doc.isCommitted);
    // LokiJS orders names that read as numbers ("9", "10") first, by value, and the rest as
    // strings; pages go in string order (their marker is a name compared as a string), so the
    // few numeric names are sorted as strings and merged with the index walk past the marker.
    const numeric = [];
    let i = 0;
    for (; i < positions.length && !Number.isNaN(Number(coll.data[positions[i]].name)); i++) {
      if (wanted(coll.data[positions[i]])) numeric.push(coll.data[positions[i]]);
    }
    numeric.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const named = [];
    const [from, to] = coll.calculateRange('$gt', 'name', marker);
    if (to >= from) {
      for (i = Math.max(i, from); i <= to && named.length <= maxResults; i++) {
        if (wanted(coll.data[positions[i]])) named.push(coll.data[positions[i]]);
      }
    }
    const docs = [];
    for (let n = 0, s = 0; docs.length <= maxResults && (n < numeric.length || s < named.length);) {
      docs.push(
        s >= named.length || (n < numeric.length && numeric[n].name <= named[s].name) ? numeric[n++] : named[s++],
      );
    }
    for (const doc of docs) doc.properties.contentMD5 = this.restoreUint8Array(doc.properties.contentMD5);
    if (docs.length <= maxResults) return [docs, undefined];
    docs.pop();
    return [docs, docs[docs.length - 1].name];
  };

  const listExtents = extentMetadata.listExtents;
  extentMetadata.listExtents = async function (id, maxResults = 5000, marker, queryTime, protectTimeInMs = 0) {
    const coll = this.db.getCollection(this.EXTENTS_COLLECTION);
    // No marker (the first page): from the start, as `$loki: { $gt: undefined }` matches all.
    if (id !== undefined || (marker !== undefined && typeof marker !== 'number')) {
      return listExtents.call(this, id, maxResults, marker, queryTime, protectTimeInMs);
    }
    await yieldToRequests();
    const before = queryTime === undefined ? Infinity : queryTime.getTime() - protectTimeInMs;
    const docs = afterMarker(coll, marker ?? -Infinity, maxResults, (doc) => doc.LastModifyInMS < before);
    return docs.length < maxResults ? [docs, undefined] : [docs, docs[docs.length - 1].$loki];
  };

  blobStore.listUncommittedBlockPersistencyChunks = async function (marker = '-1', maxResults = 2000) {
    const coll = this.db.getCollection(this.BLOCKS_COLLECTION);
    await yieldToRequests();
    const docs = afterMarker(coll, parseInt(marker, 10), maxResults + 1, () => true);
    if (docs.length <= maxResults) return [docs.map((block) => block.persistency), undefined];
    docs.pop();
    return [docs.map((block) => block.persistency), `${docs[maxResults - 1].$loki}`];
  };

  const deleteExtents = memoryExtents.deleteExtents;
  memoryExtents.deleteExtents = async function (extents) {
    let count = 0;
    for (const id of extents) {
      if (count % DELETIONS_PER_TURN === 0) await yieldToRequests();
      count += await deleteExtents.call(this, [id]);
    }
    return count;
  };
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
  const rowLow = /\bRowKey\s+(?:ge|gt)\s+'((?:[^']|'')*)'/g;
  const rowHigh = /\bRowKey\s+(?:lt|le)\s+'((?:[^']|'')*)'/g;
  /**
   * The value of the first RowKey bound of `pattern` that is a term of the top-level `and` chain:
   * not inside a literal, nor in a group deeper than the leading term's (where an `or` may sit).
   * `bare` is the filter with its literals' contents blanked, position for position.
   */
  const topLevelBound = (filter, bare, pattern, leading) => {
    for (const match of filter.matchAll(pattern)) {
      if (!bare.startsWith('RowKey', match.index)) continue;
      const before = bare.slice(0, match.index);
      const depth = (before.match(/\(/g) || []).length - (before.match(/\)/g) || []).length;
      if (depth <= leading) return unquote(match[1]);
    }
    return undefined;
  };
  const indexLookup = (filter) => {
    if (typeof filter !== 'string') return undefined;
    const bare = filter.replace(/'(?:[^']|'')*'/g, (text) => `'${'_'.repeat(text.length - 2)}'`);
    const alternatives = /\b(or|not)\b/i.test(bare);
    if (alternatives && !alternativesNested(bare)) return undefined;
    const between = alternatives ? null : range.exec(filter);
    if (between) return { PartitionKey: { $between: [unquote(between[1]), unquote(between[2])] } };
    const only = equal.exec(filter);
    if (!only) return undefined;
    // Every term of the top-level `and` chain holds, so its RowKey bounds bound the answer; those
    // inside a group with an `or` (`... and (RowKey ge 'a' or n eq 1)`) do not.
    const leading = /^\s*\(/.test(bare) ? 1 : 0;
    const low = topLevelBound(filter, bare, rowLow, leading);
    const high = topLevelBound(filter, bare, rowHigh, leading);
    const rows = low !== undefined && high !== undefined ? [low, high] : undefined;
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
