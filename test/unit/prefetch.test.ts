import { describe, expect, it } from 'vitest';
import { prefetch } from '../../src/util/prefetch.js';

describe('prefetch', () => {
  it('starts the source at once and yields all of it in order', async () => {
    const started: string[] = [];
    async function* source() {
      started.push('started');
      await Promise.resolve();
      yield Buffer.from('a');
      yield Buffer.from('b');
    }
    const body = prefetch(source());
    await Promise.resolve();
    expect(started).toEqual(['started']);
    const chunks: string[] = [];
    for await (const chunk of body) chunks.push(Buffer.from(chunk).toString());
    expect(chunks).toEqual(['a', 'b']);
  });

  it('delivers a failure when read, not as an unhandled rejection before', async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      await Promise.resolve();
      if (Date.now() > 0) throw new Error('blob gone');
      yield Buffer.alloc(0);
    }
    const body = prefetch(failing());
    await new Promise((resolve) => setTimeout(resolve, 5));
    await expect(async () => {
      for await (const chunk of body) expect(chunk).toBeUndefined();
    }).rejects.toThrow('blob gone');
  });

  it('closes a source that is never read', async () => {
    let closed = false;
    async function* source() {
      try {
        await Promise.resolve();
        yield Buffer.from('a');
        yield Buffer.from('b');
      } finally {
        closed = true;
      }
    }
    const body = prefetch(source());
    await body.close();
    expect(closed).toBe(true);
  });

  it('tells when the first chunk came or failed, and still yields it', async () => {
    async function* one(): AsyncGenerator<Uint8Array> {
      await Promise.resolve();
      yield Buffer.from('a');
    }
    async function* failing(): AsyncGenerator<Uint8Array> {
      await Promise.resolve();
      if (Date.now() > 0) throw new Error('blob gone');
      yield Buffer.alloc(0);
    }
    const body = prefetch(one());
    expect(await body.ready()).toBe(true);
    const chunks: string[] = [];
    for await (const chunk of body) chunks.push(Buffer.from(chunk).toString());
    expect(chunks).toEqual(['a']);
    expect(await prefetch(failing()).ready()).toBe(false);
  });
});
