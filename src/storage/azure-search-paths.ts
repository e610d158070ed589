import { odata, type TableClient, type TableEntityResult } from '@azure/data-tables';
import { mergeSorted } from '../util/merge-sorted.js';
import { compareText } from '../util/compare.js';
import { AccessPathKeys, keyText, NewestFirstKeys, RECENT_SHARDS, SopPointerKeys } from './keys.js';
import type { AccessPath, SearchPointer } from './ports.js';
import { searchPointerOf, type ReadPointerRow } from './search-pointers.js';
import { queryRows } from './table-query.js';

type PointerEntity = TableEntityResult<ReadPointerRow & { rowKey?: string }>;
type OrderedPath = Extract<AccessPath, { kind: 'nameToken' | 'studyDates' | 'modality' }>;

const query = (table: TableClient, filter: string, firstPage?: number, pageSize = 1000) =>
  queryRows<ReadPointerRow & { rowKey?: string }>(table, filter, 'a search query', pageSize, firstPage);

/**
 * Page sizes for a stream of which the caller likely needs `wanted` rows: a small first page, then
 * larger ones. Search checks candidates 16 at a time, so it may take up to 15 beyond its page.
 */
function paged(table: TableClient, filter: string, wanted: number | undefined) {
  const first = wanted === undefined ? 1000 : Math.min(1000, wanted + 16);
  return query(table, filter, first, Math.min(1000, 2 * first));
}

/** The rows of one partition from `from` (inclusive) to `to` (exclusive). */
const rowRange = (partition: string, { from, to }: { readonly from: string; readonly to: string }) =>
  odata`PartitionKey eq ${partition} and RowKey ge ${from} and RowKey lt ${to}`;

const byRowKey = (a: PointerEntity, b: PointerEntity) => compareText(a.rowKey ?? '', b.rowKey ?? '');
/** Name-word rows of different words, by what follows the word: newest study first. */
const byNameOrder = (a: PointerEntity, b: PointerEntity) =>
  compareText(
    NewestFirstKeys.splitNameWordRow(a.rowKey ?? '').order,
    NewestFirstKeys.splitNameWordRow(b.rowKey ?? '').order,
  );

/**
 * Newest studies first: a k-way merge of the 16 recency shards, each already in that order.
 * Studies fall into shards by a hash of their UID, so each shard holds about a sixteenth of any
 * page: each is asked for a little more than that first, and a shard the merge drains is asked
 * for twice that much more at a time. A page of `wanted` thus reads about `wanted` pointers plus
 * a few small refills, not 16 × `wanted`.
 */
function recent(table: TableClient, wanted?: number): AsyncGenerator<PointerEntity> {
  const share = wanted === undefined ? undefined : Math.ceil(wanted / RECENT_SHARDS.length) + 4;
  const shards = RECENT_SHARDS.map((shard) =>
    query(
      table,
      odata`PartitionKey eq ${AccessPathKeys.recent(shard)}`,
      share,
      share === undefined ? 1000 : Math.min(1000, 2 * share),
    ),
  );
  return mergeSorted(shards, byRowKey);
}

async function* rowsOf(rows: readonly PointerEntity[], then?: () => AsyncIterator<PointerEntity>) {
  yield* rows;
  if (!then) return;
  const rest = then();
  for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
}

/** Above this many distinct words, a name prefix reads the rest of its words' rows whole. */
export const MAX_WORD_SEEKS = 1000;

/**
 * Studies with a name word that starts with `prefix`, newest first: each word's rows are already
 * in that order, so this seeks from word to word (one query each, which also returns that word's
 * newest rows) and merges the words. The cost follows the number of distinct words the prefix
 * begins, not the number of studies; past MAX_WORD_SEEKS words the remaining rows are read whole
 * and sorted (docs/storage.md "QIDO at scale, in operations").
 */
async function* namePrefix(table: TableClient, prefix: string, wanted?: number): AsyncGenerator<PointerEntity> {
  const partition = NewestFirstKeys.nameWord(prefix);
  const end = `${keyText(prefix)}~`;
  // Each seek reads a word's newest few: enough for a page when a handful of words hold it, and
  // few per word when hundreds share the prefix (a word the merge drains is read on in pages).
  const share = wanted === undefined ? 1000 : 8;
  const streams: AsyncIterator<PointerEntity>[] = [];
  let cursor = keyText(prefix);
  for (let seeks = 0; ; seeks++) {
    const range = rowRange(partition, { from: cursor, to: end });
    if (seeks >= MAX_WORD_SEEKS) {
      const rest: PointerEntity[] = [];
      for await (const row of query(table, range)) rest.push(row);
      streams.push(rowsOf(rest.sort(byNameOrder)));
      break;
    }
    const page: PointerEntity[] = [];
    for await (const row of query(table, range, share, share)) {
      page.push(row);
      if (page.length >= share) break;
    }
    const words = new Map<string, PointerEntity[]>();
    for (const row of page) {
      const { word } = NewestFirstKeys.splitNameWordRow(row.rowKey ?? '');
      const rows = words.get(word);
      if (rows) rows.push(row);
      else words.set(word, [row]);
    }
    const full = page.length >= share;
    const last = [...words.keys()].at(-1);
    for (const [word, rows] of words) {
      if (!full || word !== last) {
        streams.push(rowsOf(rows));
        continue;
      }
      // The page ended inside this word: the rest of it is read only if the merge gets there.
      const after = rows.at(-1)?.rowKey ?? '';
      const { to } = NewestFirstKeys.nameWordRows(NewestFirstKeys.splitNameWordRow(after).word);
      streams.push(
        rowsOf(rows, () =>
          paged(table, odata`PartitionKey eq ${partition} and RowKey gt ${after} and RowKey lt ${to}`, wanted),
        ),
      );
      cursor = to;
    }
    if (!full || last === undefined) break;
  }
  yield* mergeSorted(streams, byNameOrder);
}

/** The newest-first Table query of a path whose pointers have been migrated (keys.ts NewestFirstKeys). */
function newestFirst(table: TableClient, path: OrderedPath): AsyncGenerator<PointerEntity> {
  switch (path.kind) {
    case 'nameToken': {
      if (!path.whole) return namePrefix(table, path.prefix, path.wanted);
      const rows = rowRange(NewestFirstKeys.nameWord(path.prefix), NewestFirstKeys.nameWordRows(path.prefix));
      return paged(table, rows, path.wanted);
    }
    case 'studyDates':
      // Day partitions sort later days first, so a range of days is one query in result order.
      return paged(
        table,
        odata`PartitionKey ge ${NewestFirstKeys.day(path.to)} and PartitionKey le ${NewestFirstKeys.day(path.from)}`,
        path.wanted,
      );
    case 'modality':
      return paged(table, odata`PartitionKey eq ${NewestFirstKeys.modality(path.value)}`, path.wanted);
  }
}

/** Before the migration: the older pointers and the newest-first ones stores write now, each read whole. */
async function* bothForms(table: TableClient, path: OrderedPath): AsyncGenerator<PointerEntity> {
  switch (path.kind) {
    case 'nameToken': {
      const words = AccessPathKeys.nameTokenRows(path.prefix);
      yield* query(table, rowRange(AccessPathKeys.nameToken(path.prefix), words));
      yield* query(table, rowRange(NewestFirstKeys.nameWord(path.prefix), words));
      return;
    }
    case 'studyDates':
      yield* query(
        table,
        odata`PartitionKey ge ${AccessPathKeys.studyDate(path.from)} and PartitionKey le ${AccessPathKeys.studyDate(path.to)}`,
      );
      yield* newestFirst(table, { ...path, wanted: undefined });
      return;
    case 'modality':
      yield* query(table, odata`PartitionKey eq ${AccessPathKeys.modality(path.value)}`);
      yield* newestFirst(table, { ...path, wanted: undefined });
  }
}

function groupedSop(table: TableClient, sopUid: string): AsyncGenerator<PointerEntity> {
  return query(table, rowRange(SopPointerKeys.partition(sopUid), SopPointerKeys.rows(sopUid)));
}

/** Before the SOP pointers are regrouped: the older partition of the UID too. */
async function* bothSopForms(table: TableClient, sopUid: string): AsyncGenerator<PointerEntity> {
  yield* query(table, odata`PartitionKey eq ${AccessPathKeys.sop(sopUid)}`);
  yield* groupedSop(table, sopUid);
}

function rowsFor(table: TableClient, path: AccessPath, migrated: boolean): AsyncGenerator<PointerEntity> {
  switch (path.kind) {
    case 'recent':
      return recent(table, path.wanted);
    case 'patientId':
      return query(table, odata`PartitionKey eq ${AccessPathKeys.patientId(path.value)}`);
    case 'accession':
      return query(table, odata`PartitionKey eq ${AccessPathKeys.accession(path.value)}`);
    case 'series':
      return query(table, odata`PartitionKey eq ${AccessPathKeys.series(path.seriesInstanceUid)}`);
    case 'sop':
      return migrated ? groupedSop(table, path.sopInstanceUid) : bothSopForms(table, path.sopInstanceUid);
    default:
      return migrated ? newestFirst(table, path) : bothForms(table, path);
  }
}

/**
 * The pointers of one access path. `migrated`: the migration of the path's pointers is done
 * (src/storage/search-pointer-migration.ts): the name, date and modality pointers all have their
 * newest-first form, so those paths stream in result order, or the SOP pointers are all grouped;
 * before that both forms are read.
 */
export async function* followAzurePath(
  table: TableClient,
  path: AccessPath,
  migrated: boolean,
): AsyncGenerator<SearchPointer> {
  for await (const row of rowsFor(table, path, migrated)) {
    const pointer = searchPointerOf(row, path);
    if (pointer) yield pointer;
  }
}
