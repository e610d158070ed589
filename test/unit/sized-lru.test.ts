import { describe, expect, it } from 'vitest';
import { SizedLru } from '../../src/util/sized-lru.js';

describe('SizedLru', () => {
  it('keeps at most its entries and bytes, dropping the least recently used first', () => {
    const lru = new SizedLru<string>(3, 10, (value) => value.length);
    lru.set('a', 'aaa');
    lru.set('b', 'bbb');
    lru.set('c', 'ccc');
    expect(lru.get('a')).toBe('aaa'); // a is now the most recent
    lru.set('d', 'dd'); // 11 bytes: b goes
    expect([lru.get('b'), lru.get('c'), lru.get('a'), lru.get('d')]).toEqual([undefined, 'ccc', 'aaa', 'dd']);
    expect(lru.heldBytes).toBe(8);
    lru.set('e', 'e'); // 4 entries: c, the least recent, goes
    expect(lru.size).toBe(3);
    expect(lru.get('c')).toBeUndefined();
    lru.set('a', 'a'); // replacing counts the new size only
    expect(lru.heldBytes).toBe(4);
    lru.set('huge', 'x'.repeat(11)); // larger than the whole budget: not kept, nothing evicted
    expect([lru.get('huge'), lru.size]).toEqual([undefined, 3]);
    lru.delete('a');
    expect([lru.get('a'), lru.heldBytes]).toEqual([undefined, 3]);
  });
});
