import type { TableEntityResult } from '@azure/data-tables';
import { SizedLru } from '../util/sized-lru.js';
import { entityBytes } from './table-limits.js';

type StoredRow = TableEntityResult<Record<string, unknown>>;

/** Studies whose rows are remembered, and the bytes they may hold (a study row and its series rows each). */
const MAX_STUDIES = 1024;
const MAX_BYTES = 16 * 1024 * 1024;
/**
 * The longest a writer waits for its turn: one whose storage call hangs must not hold up the
 * study's other writers for good (past this they write anyway, and the ETags still decide).
 */
const MAX_TURN_WAIT_MS = 10_000;

/** A row as a write's answer or a read left it (undefined: found gone), and when (performance.now()). */
interface Seen {
  readonly row: StoredRow | undefined;
  readonly at: number;
}

/**
 * One process's index writers into one study, taken in turn, with the study and series rows the
 * last of them left. Every STOW's index transaction is conditional on those rows' ETags; when
 * several requests of one process store into one study at once (a series sent as concurrent
 * batches, the usual way to upload one), each would read the rows before the others commit and
 * all but one would fail on the ETag, back off, read again and retry. Taken in turn, each starts
 * from the rows the one before it committed: no failed transaction, no extra read. Writers in
 * other processes still race as before, and the ETags keep every outcome right whatever this
 * memory holds: a stale row only costs the retry it was there to spare.
 */
export class StudyRowMemory {
  private readonly seen = new SizedLru<Map<string, Seen>>(MAX_STUDIES, MAX_BYTES, (rows) => {
    let bytes = 0;
    for (const { row } of rows.values()) bytes += 64 + (row ? entityBytes(row as never) : 0);
    return bytes;
  });
  private readonly turns = new Map<string, Promise<void>>();

  /** Runs `work` once the study's earlier writers of this process are done. */
  async inTurn<T>(study: string, work: () => Promise<T>): Promise<T> {
    const before = this.turns.get(study) ?? Promise.resolve();
    let done = (): void => undefined;
    const mine = new Promise<void>((resolve) => {
      done = resolve;
    });
    const tail = before.then(() => mine);
    this.turns.set(study, tail);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      before,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, MAX_TURN_WAIT_MS);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    try {
      return await work();
    } finally {
      done();
      if (this.turns.get(study) === tail) this.turns.delete(study);
    }
  }

  /** The study's rows this process saw after `since` (undefined: found gone). */
  newerThan(study: string, since: number): [string, StoredRow | undefined][] {
    const rows = this.seen.get(study);
    if (!rows) return [];
    return [...rows].flatMap(([rowKey, { row, at }]) =>
      at > since ? [[rowKey, row] as [string, StoredRow | undefined]] : [],
    );
  }

  /** Rows as a write's answer or a read just showed them, at `at`; undefined for a row found gone. */
  saw(study: string, rows: Iterable<readonly [string, StoredRow | undefined]>, at: number): void {
    const known = new Map(this.seen.get(study));
    for (const [rowKey, row] of rows) known.set(rowKey, { row, at });
    this.seen.set(study, known);
  }
}
