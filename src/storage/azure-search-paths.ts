import { odata, type TableClient } from '@azure/data-tables';
import { AccessPathKeys, RECENT_SHARDS } from './keys.js';
import type { AccessPath, SearchPointer } from './ports.js';
import { searchPointerOf, type ReadPointerRow } from './search-pointers.js';
import { queryRows } from './table-query.js';

type PointerEntity = ReadPointerRow & { rowKey?: string };

/** The Table query of one access path (keys.ts AccessPathKeys). */
function filterFor(path: Exclude<AccessPath, { kind: 'recent' }>): string {
  switch (path.kind) {
    case 'patientId':
      return odata`PartitionKey eq ${AccessPathKeys.patientId(path.value)}`;
    case 'accession':
      return odata`PartitionKey eq ${AccessPathKeys.accession(path.value)}`;
    case 'series':
      return odata`PartitionKey eq ${AccessPathKeys.series(path.seriesInstanceUid)}`;
    case 'sop':
      return odata`PartitionKey eq ${AccessPathKeys.sop(path.sopInstanceUid)}`;
    case 'modality':
      return odata`PartitionKey eq ${AccessPathKeys.modality(path.value)}`;
    case 'studyDates':
      return odata`PartitionKey ge ${AccessPathKeys.studyDate(path.from)} and PartitionKey le ${AccessPathKeys.studyDate(path.to)}`;
    case 'nameToken': {
      const { from, to } = AccessPathKeys.nameTokenRows(path.prefix);
      return odata`PartitionKey eq ${AccessPathKeys.nameToken(path.prefix)} and RowKey ge ${from} and RowKey lt ${to}`;
    }
  }
}

const query = (table: TableClient, filter: string, firstPage?: number, pageSize = 1000) =>
  queryRows<PointerEntity>(table, filter, 'a search query', pageSize, firstPage);

/**
 * Newest studies first: a k-way merge of the 16 recency shards, each already in that order.
 * Studies fall into shards by a hash of their UID, so each shard holds about a sixteenth of any
 * page: each is asked for a little more than that first, and a shard the merge drains is asked
 * for twice that much more at a time. A page of `wanted` thus reads about `wanted` pointers plus
 * a few small refills, not 16 × `wanted`.
 */
async function* recent(table: TableClient, wanted?: number): AsyncGenerator<SearchPointer> {
  const share = wanted === undefined ? undefined : Math.ceil(wanted / RECENT_SHARDS.length) + 4;
  const shards = RECENT_SHARDS.map((shard) =>
    query(
      table,
      odata`PartitionKey eq ${AccessPathKeys.recent(shard)}`,
      share,
      share === undefined ? 1000 : Math.min(1000, 2 * share),
    ),
  );
  const heads = await Promise.all(shards.map((shard) => shard.next()));
  for (;;) {
    let best = -1;
    for (const [i, head] of heads.entries()) {
      if (head.done) continue;
      const bestHead = heads[best];
      if (best < 0 || (bestHead && !bestHead.done && (head.value.rowKey ?? '') < (bestHead.value.rowKey ?? '')))
        best = i;
    }
    const chosen = heads[best];
    if (!chosen || chosen.done) return;
    const pointer = searchPointerOf(chosen.value, { kind: 'recent' });
    if (pointer) yield pointer;
    const shard = shards[best];
    if (!shard) return;
    heads[best] = await shard.next();
  }
}

export async function* followAzurePath(table: TableClient, path: AccessPath): AsyncGenerator<SearchPointer> {
  if (path.kind === 'recent') {
    yield* recent(table, path.wanted);
    return;
  }
  for await (const row of query(table, filterFor(path))) {
    const pointer = searchPointerOf(row, path);
    if (pointer) yield pointer;
  }
}
