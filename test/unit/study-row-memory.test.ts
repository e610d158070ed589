import { afterEach, describe, expect, it, vi } from 'vitest';
import { StudyRowMemory } from '../../src/storage/study-row-memory.js';

const row = (rowKey: string, etag: string) => ({ partitionKey: 'study-1', rowKey, etag });

describe('StudyRowMemory', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs the writers of one study one at a time, in order, and other studies beside them', async () => {
    const memory = new StudyRowMemory();
    const events: string[] = [];
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = memory.inTurn('a', async () => {
      events.push('a1 start');
      await held;
      events.push('a1 end');
    });
    const second = memory.inTurn('a', () => {
      events.push('a2');
      return Promise.resolve();
    });
    const other = memory.inTurn('b', () => {
      events.push('b1');
      return Promise.resolve();
    });
    await other;
    expect(events).toEqual(['a1 start', 'b1']);
    release();
    await Promise.all([first, second]);
    expect(events).toEqual(['a1 start', 'b1', 'a1 end', 'a2']);
  });

  it('lets the next writer go after 10 s when one never finishes, and goes on after a failed one', async () => {
    vi.useFakeTimers();
    const memory = new StudyRowMemory();
    void memory.inTurn('a', () => new Promise<void>(() => undefined));
    let ran = false;
    const next = memory.inTurn('a', () => {
      ran = true;
      return Promise.reject(new Error('storage failed'));
    });
    const outcome = next.catch((error: unknown) => (error as Error).message);
    await vi.advanceTimersByTimeAsync(9_999);
    expect(ran).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await outcome).toBe('storage failed');
    expect(ran).toBe(true);
    vi.useRealTimers();
    // A writer after the failed one gets its turn.
    await expect(memory.inTurn('b', () => Promise.resolve('ok'))).resolves.toBe('ok');
  });

  it('gives back only the rows seen after a time, a row found gone as undefined', () => {
    const memory = new StudyRowMemory();
    memory.saw('study-1', [['study', row('study', 'e1')]], 10);
    memory.saw(
      'study-1',
      [
        ['series|1', row('series|1', 'e2')],
        ['series|2', undefined],
      ],
      20,
    );
    expect(memory.newerThan('study-1', 5).map(([key, seen]) => [key, seen?.etag])).toEqual([
      ['study', 'e1'],
      ['series|1', 'e2'],
      ['series|2', undefined],
    ]);
    expect(memory.newerThan('study-1', 15).map(([key]) => key)).toEqual(['series|1', 'series|2']);
    expect(memory.newerThan('study-1', 20)).toEqual([]);
    expect(memory.newerThan('study-2', 0)).toEqual([]);
  });
});
