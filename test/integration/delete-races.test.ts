import { describe, expect, it } from 'vitest';
import { raceRounds } from '../helpers/delete-race.js';
import { useTestServer } from '../helpers/server.js';

/**
 * DELETE and STOW on the same study, series and instance, racing through the node host over
 * Azurite (docs/storage.md "Deletes", docs/conformance.md "Delete").
 */
const server = useTestServer();
const ROUNDS = 16;

describe('DELETE and STOW racing on one study', () => {
  it(`answer no 5xx and leave every view in agreement, over ${ROUNDS} rounds of 11 concurrent clients`, async () => {
    // Tight rounds (all start within 5 ms) alternate with spread ones (within 40 ms).
    const { unexpected, outcomes } = await raceRounds(
      (path, init) => fetch(`${server().baseUrl}/v2${path}`, init),
      ROUNDS,
      (round) => (round % 2 === 0 ? 5 : 40),
    );
    expect(unexpected).toEqual([]);
    // Both orders happened: stores refused by a delete, and stores landing beside it.
    expect([...outcomes.keys()]).toEqual(expect.arrayContaining(['DELETE study 204', 'STOW into a new series 200']));
    // A correctness test, not a timed one: 16 rounds took up to 57 s on a loaded 2-core machine.
  }, 240_000);
});
