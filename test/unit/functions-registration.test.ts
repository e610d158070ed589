import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { hostDispatch, hostRuleViolations, routesConflict, templateProblem } from '../helpers/functions-host-rules.js';

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

/** What the Bicep sets for the Function App (placeholders), so the entry point loads. */
const FUNCTION_APP_ENV = {
  DICOMWEB_BLOB_ENDPOINT: 'https://account.blob.core.windows.net',
  DICOMWEB_TABLE_ENDPOINT: 'https://account.table.core.windows.net',
  DICOMWEB_AUTH_TENANT_ID: '00000000-0000-0000-0000-000000000000',
  DICOMWEB_AUTH_AUDIENCE: 'api://dicomweb',
};

async function registeredFunctions() {
  await import('../../functions/index.js');
  return registered.http.map(({ name, options }) => ({ name, methods: options.methods, route: options.route }));
}

/** A concrete path for a template: each {param} becomes a UID-like value. */
function samplePath(template: string): string {
  return `/${template
    .replace(/\{frames\}/g, '1,2')
    .replace(/\{range\}/g, 'bytes=0-1')
    .replace(/\{\w+\}/g, '1.2.3')}`;
}

describe('the Function App fails closed', () => {
  it.each([
    ['no Entra settings', { ...FUNCTION_APP_ENV, DICOMWEB_AUTH_TENANT_ID: '' }, /DICOMWEB_AUTH_TENANT_ID/],
    ['local token mode', { ...FUNCTION_APP_ENV, DICOMWEB_AUTH_MODE: 'local' }, /DICOMWEB_AUTH_TENANT_ID/],
    ['anonymous mode', { ...FUNCTION_APP_ENV, DICOMWEB_AUTH_MODE: 'none' }, /DICOMWEB_AUTH_TENANT_ID/],
    [
      'no storage endpoints',
      { ...FUNCTION_APP_ENV, DICOMWEB_BLOB_ENDPOINT: '', DICOMWEB_TABLE_ENDPOINT: '' },
      /DICOMWEB_BLOB_ENDPOINT/,
    ],
  ])('with %s the entry point throws and registers no HTTP function', async (_what, env, message) => {
    vi.resetModules();
    registered.http.length = 0;
    for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
    await expect(import('../../functions/index.js')).rejects.toThrow(message);
    expect(registered.http).toEqual([]);
    vi.unstubAllEnvs();
    vi.resetModules();
  });
});

describe('the event-publishing timer', () => {
  it.each([
    ['no sink configured', {}, false],
    [
      'the Event Grid topic the Bicep sets',
      { DICOMWEB_EVENTS_EVENTGRID_ENDPOINT: 'https://t.westeurope-1.eventgrid.azure.net/api/events' },
      true,
    ],
    [
      'the topic, with events turned off',
      {
        DICOMWEB_EVENTS_EVENTGRID_ENDPOINT: 'https://t.westeurope-1.eventgrid.azure.net/api/events',
        DICOMWEB_EVENTS: 'off',
      },
      false,
    ],
  ])('with %s: registered is %s', async (_what, env, expected) => {
    vi.resetModules();
    registered.timer.length = 0;
    for (const [name, value] of Object.entries({ ...FUNCTION_APP_ENV, ...env })) vi.stubEnv(name, value);
    await import('../../functions/index.js');
    const timers = registered.timer.filter((timer) => timer.name === 'publish-events');
    expect(timers).toEqual(expected ? [{ name: 'publish-events', schedule: '*/5 * * * * *' }] : []);
    vi.unstubAllEnvs();
    vi.resetModules();
    for (const list of [registered.http, registered.setup, registered.timer]) list.length = 0;
  });
});

describe('Azure Functions registration', () => {
  beforeAll(() => {
    for (const [name, value] of Object.entries(FUNCTION_APP_ENV)) vi.stubEnv(name, value);
  });

  it('satisfies every start-up rule of the Functions host (names, templates, no route conflicts)', async () => {
    const functions = await registeredFunctions();
    expect(registered.setup).toEqual([{ enableHttpStream: true }]);
    expect(hostRuleViolations(functions)).toEqual([]);
    expect(
      functions.every(({ name }) => registered.http.find((fn) => fn.name === name)?.options.authLevel === 'anonymous'),
    ).toBe(true);
    expect(registered.timer).toEqual([
      { name: 'sweep-orphans', schedule: '0 */15 * * * *' },
      { name: 'expire-studies', schedule: '0 */5 * * * *' },
      { name: 'run-operations', schedule: '*/10 * * * * *' },
    ]);
  });

  it('the host would route every method of every route of the app to a function that serves it', async () => {
    const functions = await registeredFunctions();
    const { routes } = await import('../../src/http/routes.js');
    const { matchRoute } = await import('../../src/http/router.js');
    for (const route of routes) {
      for (const method of [...route.methods, 'OPTIONS']) {
        const path = samplePath(route.template);
        const target = hostDispatch(functions, method, path);
        expect(target, `${method} ${path}`).toBeDefined();
        expect(target?.route, `${method} ${path}`).not.toBe('{*path}');
        if (method !== 'OPTIONS') expect(matchRoute(routes, method, path).route.template).toBe(route.template);
      }
    }
  });

  it("unknown paths and wrong methods reach the app (its 404/405), never the host's empty 404", async () => {
    const functions = await registeredFunctions();
    for (const [method, path] of [
      ['PUT', '/v1/studies'],
      ['PATCH', '/v2/studies/1.2.3'],
      ['POST', '/v1/studies/1.2.3/series/4.5/instances/6.7/metadata'],
      ['GET', '/v2/unknown'],
      ['GET', '/v3/studies'],
      ['GET', '/studies'],
      ['HEAD', '/v2/changefeed'],
      ['TRACE', '/v2/studies'],
      ['DELETE', '/v2/studies/1.2.3/series'],
    ] as const) {
      expect(hostDispatch(functions, method, path)?.name, `${method} ${path}`).toBe('zz-fallback');
    }
  });

  it('the rule checker itself catches what the host refuses', () => {
    // Today's code before this change: one function per route entry, OPTIONS added to each.
    const perEntry = [
      { name: 'v2-store', methods: ['POST', 'OPTIONS'], route: 'v2/studies' },
      { name: 'v2-search-studies', methods: ['GET', 'OPTIONS'], route: 'v2/studies' },
    ];
    expect(hostRuleViolations(perEntry)).toEqual([
      "v2-store: the route specified conflicts with the route defined by function 'v2-search-studies'",
    ]);
    expect(
      routesConflict(
        { name: 'a', methods: ['GET'], route: '/V2/Studies/' },
        { name: 'b', methods: [], route: 'v2/studies' },
      ),
    ).toBe(true);
    expect(
      routesConflict(
        { name: 'a', methods: ['GET'], route: 'v2/studies' },
        { name: 'b', methods: ['POST'], route: 'v2/studies' },
      ),
    ).toBe(false);
    expect(templateProblem('admin/x')).toMatch(/built-in/);
    expect(templateProblem('administration/x')).toMatch(/built-in/);
    expect(templateProblem('v2//studies')).toMatch(/empty segment/);
    expect(templateProblem('v2/{study')).toMatch(/unbalanced/);
    expect(templateProblem('v2/{a}/{A}')).toMatch(/twice/);
    expect(templateProblem('{*path}/x')).toMatch(/catch-all/);
    expect(templateProblem('v2/studies?x')).toMatch(/"\?"/);
    expect(hostRuleViolations([{ name: '1abc', methods: ['GET'], route: 'x' }])).toEqual([
      "'1abc' is not a valid function name",
    ]);
    expect(hostRuleViolations([{ name: 'host', methods: ['GET'], route: 'x' }])).toEqual([
      "'host' is not a valid function name",
    ]);
    expect(
      hostRuleViolations([
        { name: 'Abc', methods: ['GET'], route: 'x' },
        { name: 'abc', methods: ['POST'], route: 'y' },
      ]),
    ).toEqual(["the function name 'abc' is not unique"]);
  });

  it('host.json serves routes without the /api prefix and does not reverse route order', () => {
    const host = JSON.parse(readFileSync(new URL('../../host.json', import.meta.url), 'utf8')) as {
      extensions: { http: { routePrefix: string } };
    };
    expect(host.extensions.http.routePrefix).toBe('');
    // AzureWebJobsUseReverseRoutes would make the fallback shadow every route (WebJobsRouter).
    expect(readFileSync(new URL('../../infra/modules/functionapp.bicep', import.meta.url), 'utf8')).not.toMatch(
      /ReverseRoutes/i,
    );
  });
});
