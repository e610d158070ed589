import { describe, expect, it, vi } from 'vitest';

const registered = vi.hoisted(() => ({
  http: [] as { name: string; options: { methods: string[]; route: string; authLevel: string } }[],
  setup: [] as unknown[],
  timer: [] as { name: string; schedule: string }[],
}));

vi.mock('@azure/functions', async (importOriginal) => {
  const actual = await importOriginal<typeof import('@azure/functions')>();
  const app = {
    setup: (options: unknown) => registered.setup.push(options),
    http: (name: string, options: { methods: string[]; route: string; authLevel: string }) =>
      registered.http.push({ name, options }),
    timer: (name: string, options: { schedule: string }) => registered.timer.push({ name, schedule: options.schedule }),
  };
  // The code reads `app` from the default export, as Node's ESM loader gives a CommonJS module.
  return { ...actual, app, default: { ...actual, app } };
});

describe('Azure Functions registration', () => {
  it('registers every route of the shared table with its methods and template, streaming enabled', async () => {
    await import('../../functions/index.js');
    const { routes } = await import('../../src/http/routes.js');
    expect(registered.setup).toEqual([{ enableHttpStream: true }]);
    expect(registered.http.map(({ name, options }) => [name, options.methods, options.route])).toEqual(
      routes.map((route) => [route.name, [...route.methods, 'OPTIONS'], route.template]),
    );
    const templates = registered.http.map(({ options }) => options.route);
    for (const template of ['v1/studies', 'v1/studies/{study}', 'v2/studies', 'v2/studies/{study}']) {
      expect(templates).toContain(template);
    }
    expect(registered.http.find(({ options }) => options.route === 'v2/studies')?.options.methods).toEqual([
      'POST',
      'OPTIONS',
    ]);
    expect(new Set(registered.http.map(({ name }) => name)).size).toBe(registered.http.length);
    expect(registered.timer).toEqual([{ name: 'sweep-orphans', schedule: '0 */15 * * * *' }]);
  });

  it('host.json serves routes without the /api prefix', async () => {
    const { readFileSync } = await import('node:fs');
    const host = JSON.parse(readFileSync(new URL('../../host.json', import.meta.url), 'utf8')) as {
      extensions: { http: { routePrefix: string } };
    };
    expect(host.extensions.http.routePrefix).toBe('');
  });
});
