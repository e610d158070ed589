/**
 * `npm run migrate`: brings the archive named in the environment (DICOMWEB_STORAGE_CONNECTION_STRING,
 * or DICOMWEB_BLOB_ENDPOINT and DICOMWEB_TABLE_ENDPOINT with Entra ID) up to this version's
 * storage layout. Today that is the newest-first search pointers and the grouped SOP pointers
 * (docs/storage.md "Migrating search pointers"). Run it once every process of the archive runs
 * this version; it is idempotent, so an interrupted run is run again. `npm start` does it by
 * itself for the Azurite it starts.
 */
import { readConfig, type StorageConfig } from '../config.js';
import { migrateArchiveSearchPointers } from '../storage/azure-storage.js';

/** Migrates and says what it did (a console line per 10,000 pointers, and one at the end). */
export async function migrateArchive(storage: StorageConfig): Promise<void> {
  let shown = 0;
  const report = await migrateArchiveSearchPointers(storage, ({ read, written }) => {
    if (written - shown < 10_000) return;
    shown = written;
    console.log(`Search pointer migration: ${read} read, ${written} written…`);
  });
  if (report === undefined)
    console.log('Search pointers: already in their current forms (newest first, SOP pointers grouped).');
  else {
    console.log(
      `Search pointers migrated: ${report.read} older pointers read, ${report.written} written, ` +
        `${report.skipped} skipped (their study is gone).`,
    );
  }
}

/** For `npm start`: the same, in the background, errors only logged (searches work meanwhile, reading both forms). */
export function migrateLocalArchive(storage: StorageConfig): void {
  migrateArchive(storage).catch((error: unknown) => {
    console.error('Search pointer migration failed (it is retried at the next start):', error);
  });
}

if (process.argv[1]?.endsWith('migrate.ts') || process.argv[1]?.endsWith('migrate.js')) {
  const { storage } = readConfig();
  if (!storage) {
    console.error(
      'Name the archive: DICOMWEB_STORAGE_CONNECTION_STRING, or DICOMWEB_BLOB_ENDPOINT and DICOMWEB_TABLE_ENDPOINT.',
    );
    process.exit(2);
  }
  await migrateArchive(storage);
}
