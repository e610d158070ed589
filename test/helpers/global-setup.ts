import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startAzurite } from '../../src/host/azurite.js';

declare module 'vitest' {
  export interface ProvidedContext {
    azurite: { blobPort: number; tablePort: number; queuePort: number };
  }
}

/** One Azurite for the whole run, on free loopback ports, data in a fresh temporary folder. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const location = mkdtempSync(join(tmpdir(), 'dicomweb-azurite-'));
  const azurite = await startAzurite({ location });
  project.provide('azurite', {
    blobPort: azurite.blobPort,
    tablePort: azurite.tablePort,
    queuePort: azurite.queuePort,
  });
  return async () => {
    await azurite.stop();
    rmSync(location, { recursive: true, force: true });
  };
}
