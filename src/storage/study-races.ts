/**
 * Optimistic concurrency on a study partition: writers that lose the race for its study or
 * series rows (an ETag changed) read them again and retry, with jittered backoff.
 */

/** Lost races retried before giving up with 503. */
export const MAX_ATTEMPTS = 12;

/** The jittered pause before the `attempt`-th retry (up to 200 ms). */
export function pause(attempt: number): Promise<void> {
  const ms = Math.min(200, 5 * 2 ** attempt) * (0.5 + Math.random());
  return new Promise((resolve) => setTimeout(resolve, ms));
}
