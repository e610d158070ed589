import { createApp } from '../../src/app.js';
import { createMemoryStorage } from '../../src/storage/memory-storage.js';

/** The app over in-memory storage, as unit tests drive it: no authentication, no audit output. */
export function memoryApp() {
  const storage = createMemoryStorage();
  const app = createApp({
    storage,
    config: { publicBaseUrl: undefined, maxHeaderBytes: 1 << 20, emptySearchStatus: 200 },
    log: () => undefined,
  });
  return { storage, app };
}
