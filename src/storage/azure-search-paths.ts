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

const query = (table: TableClient, filter: string, firstPage?: number) =>
  queryRows<PointerEntity>(table, filter, 'a search query', 1000, firstPage);

/** Newest studies first: a k-way merge of the 16 recency shards, each already in that order. */
async function* recent(table: TableClient, wanted?: number): AsyncGenerator<SearchPointer> {
  // No shard can contribute more than `wanted` of the newest studies.
  const shards = RECENT_SHARDS.map((shard) =>
    query(table, odata`PartitionKey eq ${AccessPathKeys.recent(shard)}`, wanted),
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
