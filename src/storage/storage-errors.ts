import { StorageUnavailableError } from './ports.js';

/** HTTP status of an Azure SDK RestError, if it has one. */
export function statusOf(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'statusCode' in error) {
    const status = (error as { statusCode?: unknown }).statusCode;
    return typeof status === 'number' ? status : undefined;
  }
  return undefined;
}

/**
 * Turns an SDK failure that means "storage is not answering" (no response, timeouts, throttling,
 * server errors) into StorageUnavailableError; anything else is rethrown as it is.
 */
export function translateStorageError(error: unknown, what: string): never {
  const status = statusOf(error);
  if (status === undefined || status === 408 || status === 429 || status >= 500) {
    throw new StorageUnavailableError(`Storage did not complete ${what}.`, { cause: error });
  }
  throw error;
}

export async function guarded<T>(what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    return translateStorageError(error, what);
  }
}
