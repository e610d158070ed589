/**
 * An archive whose name-word, StudyDate and modality pointers were written by a version before the
 * newest-first pointers (`pn|`, `sd|`, `mod|`, some even without `created`) answers every search
 * the same before its migration (both forms read whole), after it (newest first, a page read) and
 * after running it again (docs/storage.md "Migrating search pointers").
 */
import { describe, expect, it } from 'vitest';
import type { TableEntity } from '@azure/data-tables';
import { AzureInstanceIndex } from '../../src/storage/azure-index-store.js';
import { MigrationKeys, NewestFirstKeys } from '../../src/storage/keys.js';
import { migrateSearchPointers } from '../../src/storage/search-pointer-migration.js';
import { loadScaleStudies, scaleArchive } from '../helpers/scale-archive.js';

const OLD_STUDIES = 300;
const ALL_STUDIES = 400;

const SEARCHES = [
  '/v2/studies?PatientName=Smith*&limit=10',
  '/v2/studies?PatientName=naka&fuzzymatching=true&limit=10',
  '/v2/studies?StudyDate=20240101-20241231&limit=10',
  '/v2/studies?StudyDate=20160101-20251231&limit=10&offset=200',
  '/v2/studies?ModalitiesInStudy=CT&limit=10',
  '/v2/studies?ModalitiesInStudy=CT%5CMR&limit=10&offset=30',
  '/v2/series?Modality=MR&limit=10',
];

/** The row an older version wrote for a newest-first pointer row (undefined: not one of those). */
function olderForm(row: TableEntity): TableEntity | undefined {
  const kind = row.partitionKey.slice(0, row.partitionKey.indexOf('|'));
  const study = String(row['study']);
  const properties: Record<string, unknown> = { ...row };
  delete properties['etag'];
  delete properties['timestamp'];
  if (kind === 'pn2') {
    const { word } = NewestFirstKeys.splitNameWordRow(row.rowKey);
    return { ...properties, partitionKey: `pn|${row.partitionKey.slice(4)}`, rowKey: `${word}|${study}` };
  }
  if (kind === 'sd2')
    return { ...properties, partitionKey: `sd|${NewestFirstKeys.dayOf(row.partitionKey)}`, rowKey: study };
  if (kind === 'mod2')
    return {
      ...properties,
      partitionKey: `mod|${row.partitionKey.slice(5)}`,
      rowKey: `${study}|${String(row['series'])}`,
    };
  if (kind === 'sop2') {
    const sop = row.rowKey.slice(0, row.rowKey.indexOf('|'));
    return { ...properties, partitionKey: `sop|${sop}`, rowKey: `${study}|${String(row['series'])}` };
  }
  return undefined;
}

describe('search pointers of an archive written by an older version', () => {
  it('are found before the migration, after it, and after it ran again', async () => {
    const first = scaleArchive();
    const client = first.table.asTableClient();
    const root = `1.2.826.0.1.3680043.10.1234.80.${Date.now()}`;
    await loadScaleStudies(first.storage, root, 0, ALL_STUDIES);
    // Two instances by SOPInstanceUID: of an older study (its pointer rewritten) and of a newer one.
    const sops: string[] = [];
    for await (const row of client.listEntities({
      queryOptions: { filter: "PartitionKey ge 'sop2|' and PartitionKey lt 'sop2}'" },
    })) {
      const number = Number(String(row['study']).split('.').at(-1));
      if ((number <= OLD_STUDIES ? 0 : 1) === sops.length) sops.push(String(row.rowKey).split('|')[0] ?? '');
      if (sops.length === 2) break;
    }
    const searches = [...SEARCHES, ...sops.map((sop) => `/v2/instances?SOPInstanceUID=${sop}`)];
    const expected = [];
    for (const path of searches) expected.push((await first.search(path)).uids);
    expect(searches.length).toBe(SEARCHES.length + 2);
    expect(expected.every((uids) => uids.length > 0)).toBe(true);

    // The first OLD_STUDIES as an older version left them: older pointer forms, every third
    // without `created`, and no migration marker.
    let converted = 0;
    const rows: TableEntity[] = [];
    for await (const row of client.listEntities())
      rows.push({ ...row, partitionKey: row.partitionKey ?? '', rowKey: row.rowKey ?? '' });
    for (const row of rows) {
      const older = olderForm(row);
      const number = Number(String(row['study']).split('.').at(-1));
      if (!older || number > OLD_STUDIES) continue;
      if (converted++ % 3 === 0) delete older['created'];
      await client.createEntity(older);
      await client.deleteEntity(row.partitionKey, row.rowKey);
    }
    await client.deleteEntity(MigrationKeys.partition, MigrationKeys.newestFirstPointers);
    await client.deleteEntity(MigrationKeys.partition, MigrationKeys.groupedSopPointers);
    expect(converted).toBeGreaterThan(OLD_STUDIES);

    /** The app over a new index (a new process: it reads the marker afresh). */
    const restarted = () =>
      scaleArchive({ ...first, storage: { ...first.storage, index: new AzureInstanceIndex(client) } });
    const answers = async () => {
      const archive = restarted();
      const found = [];
      for (const path of searches) found.push(await archive.search(path));
      return found;
    };

    const before = await answers();
    expect(before.map((answer) => answer.uids)).toEqual(expected);

    const report = await migrateSearchPointers(client);
    expect(report).toEqual({ read: converted, written: converted, skipped: 0 });
    const after = await answers();
    expect(after.map((answer) => answer.uids)).toEqual(expected);
    // Newest first now: a page of CT studies reads far less than both forms whole.
    expect(after[4]?.entitiesRead).toBeLessThan((before[4]?.entitiesRead ?? 0) / 2);

    expect(await migrateSearchPointers(client)).toEqual(report);
    expect((await answers()).map((answer) => answer.uids)).toEqual(expected);
  }, 120_000);

  it('need no migration when there are none: the first search marks the archive', async () => {
    const archive = scaleArchive();
    const client = archive.table.asTableClient();
    await loadScaleStudies(archive.storage, `1.2.826.0.1.3680043.10.1234.81.${Date.now()}`, 0, 50);
    // A table the deployment templates created: no marker, and no older pointer either.
    await client.deleteEntity(MigrationKeys.partition, MigrationKeys.newestFirstPointers);
    expect(await new AzureInstanceIndex(client).newestFirstPaths()).toBe(true);
    await expect(client.getEntity(MigrationKeys.partition, MigrationKeys.newestFirstPointers)).resolves.toBeDefined();
    // One older pointer, and no marker: both forms are read until the migration.
    await client.deleteEntity(MigrationKeys.partition, MigrationKeys.newestFirstPointers);
    await client.createEntity({ partitionKey: 'sd|20200101', rowKey: '1.2.3', study: '1.2.3' });
    expect(await new AzureInstanceIndex(client).newestFirstPaths()).toBe(false);
  });
});
