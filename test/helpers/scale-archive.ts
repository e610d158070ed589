/**
 * The QIDO scale bench's data set (bench/qido-scale-data.ts) stored through the store layer into
 * the production Table adapters on the in-memory table, and searches over it that report the
 * Table entities they read (the storage meter, as in the audit record).
 */
import { azureAdaptersInMemory, type AzureAdaptersInMemory } from '../../bench/memory-azure-storage.js';
import { storeAll } from '../../bench/qido.js';
import { scaleInstances, scaleStudy } from '../../bench/qido-scale-data.js';
import { createApp } from '../../src/app.js';
import type { AuditRecord } from '../../src/http/audit.js';
import type { Storage } from '../../src/storage/ports.js';
import { defaultAppConfig } from './server.js';

/** Stores studies [from, to) of the data set, 50 per request, in order (so later ones are newer). */
export async function loadScaleStudies(storage: Storage, uidRoot: string, from: number, to: number): Promise<void> {
  for (let start = from; start < to; start += 50) {
    const files = [];
    for (let i = start; i < Math.min(to, start + 50); i++) files.push(...scaleInstances(scaleStudy(i, uidRoot), i));
    await storeAll(storage, files, 'loading');
  }
}

export interface MeteredAnswer {
  readonly status: number;
  /** StudyInstanceUID of each result, in order. */
  readonly uids: string[];
  readonly entitiesRead: number;
  readonly operations: number;
}

/** A new archive of the scale data set, and a search over it through the app that reports its counts. */
export function scaleArchive(adapters: AzureAdaptersInMemory = azureAdaptersInMemory()) {
  const audits: AuditRecord[] = [];
  const app = createApp({
    storage: adapters.storage,
    config: defaultAppConfig,
    log: () => undefined,
    audit: (record) => audits.push(record),
  });
  const search = async (path: string): Promise<MeteredAnswer> => {
    audits.length = 0;
    const response = await app.handle(
      new Request(`http://127.0.0.1${path}`, { headers: { accept: 'application/dicom+json' } }),
    );
    const body = response.status === 200 ? ((await response.json()) as Record<string, { Value?: string[] }>[]) : [];
    const counts = audits[0]?.storage;
    return {
      status: response.status,
      uids: body.map((item) => item['0020000D']?.Value?.[0] ?? ''),
      entitiesRead: counts?.entitiesRead ?? Number.NaN,
      operations: counts?.operations ?? Number.NaN,
    };
  };
  return { ...adapters, search };
}
