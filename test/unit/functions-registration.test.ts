import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_OPERATIONS_QUEUE } from '../../src/config.js';
import { decodeOperationMessage, encodeOperationMessage } from '../../src/storage/azure-operation-queue.js';
import { OPERATION_QUEUE_RULES, OPERATION_RUN_BUDGET_MS, runQueuedOperation } from '../../src/host/operations.js';
import { functionAppSettings } from '../helpers/bicep.js';
import {
  hostDispatch,
  hostRuleViolations,
  poisonQueueOf,
  queueConnectionProblem,
  queueNameProblem,
  queueTriggerInput,
  routesConflict,
  templateProblem,
} from '../helpers/functions-host-rules.js';
import { createMemoryStorage } from '../../src/storage/memory-storage.js';

const registered = vi.hoisted(() => ({
  http: [] as { name: string; options: { methods: string[]; route: string; authLevel: string } }[],
  setup: [] as unknown[],
  timer: [] as { name: string; schedule: string }[],
  queue: [] as {
    name: string;
    options: { queueName: string; connection: string; handler: (entry: unknown, context: unknown) => Promise<void> };
  }[],
}));

vi.mock('@azure/functions', async (importOriginal) => {
  const actual = await importOriginal<typeof import('@azure/functions')>();
  const app = {
    setup: (options: unknown) => registered.setup.push(options),
    http: (name: string, options: { methods: string[]; route: string; authLevel: string }) =>
      registered.http.push({ name, options }),
    timer: (name: string, options: { schedule: string }) => registered.timer.push({ name, schedule: options.schedule }),
    storageQueue: (name: string, options: (typeof registered.queue)[number]['options']) =>
      registered.queue.push({ name, options }),
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
    for (const list of [registered.http, registered.setup, registered.timer, registered.queue]) list.length = 0;
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
      { name: 'run-operations', schedule: '0 */5 * * * *' },
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

describe('the operations queue trigger', () => {
  const host = JSON.parse(readFileSync(new URL('../../host.json', import.meta.url), 'utf8')) as {
    functionTimeout: string;
    extensions: { queues: { messageEncoding: 'base64' | 'none' } & Record<string, unknown> };
  };

  async function queueTriggers(env: Record<string, string> = {}) {
    vi.resetModules();
    registered.queue.length = 0;
    for (const [name, value] of Object.entries({ ...FUNCTION_APP_ENV, ...env })) vi.stubEnv(name, value);
    await import('../../functions/index.js');
    vi.unstubAllEnvs();
    return [...registered.queue];
  }

  it('reads the configured queue, whose name and poison queue Azure accepts, over a connection the Bicep defines', async () => {
    const [trigger, ...others] = await queueTriggers();
    expect(others).toEqual([]);
    expect(trigger?.name).toBe('run-operation');
    const { queueName, connection } = trigger?.options ?? { queueName: '', connection: '' };
    expect(queueName).toBe(DEFAULT_OPERATIONS_QUEUE);
    expect(queueNameProblem(queueName)).toBeUndefined();
    expect(poisonQueueOf(queueName)).toBe(`${queueName}-poison`);
    expect(queueConnectionProblem(connection, await functionAppSettings())).toBeUndefined();
    expect((await queueTriggers({ DICOMWEB_OPERATIONS_QUEUE: 'other-ops' }))[0]?.options.queueName).toBe('other-ops');
    // A name whose poison queue Azure would refuse is refused at start-up.
    await expect(queueTriggers({ DICOMWEB_OPERATIONS_QUEUE: 'q'.repeat(57) })).rejects.toThrow(
      /DICOMWEB_OPERATIONS_QUEUE/,
    );
    await expect(queueTriggers({ DICOMWEB_OPERATIONS_QUEUE: 'Ops' })).rejects.toThrow(/DICOMWEB_OPERATIONS_QUEUE/);
    vi.resetModules();
  });

  it('the rule checker itself catches what the queue extension refuses', () => {
    expect(queueNameProblem('ab')).toMatch(/3 to 63/);
    expect(queueNameProblem('Operations')).toMatch(/lower case/);
    expect(queueNameProblem('a--b')).toMatch(/consecutive/);
    expect(queueNameProblem('-ab')).toMatch(/dash/);
    expect(queueNameProblem('a_b')).toMatch(/only letters/);
    expect(poisonQueueOf('q'.repeat(57))).toBeUndefined();
    expect(poisonQueueOf('jobs-poison')).toBeUndefined();
    const identity = new Map([
      ['AzureWebJobsStorage__accountName', 'x'],
      ['AzureWebJobsStorage__credential', 'managedidentity'],
    ]);
    expect(queueConnectionProblem('AzureWebJobsStorage', identity)).toMatch(/clientId/);
    expect(queueConnectionProblem('Other', new Map([['Other__accountName', 'x']]))).toMatch(/queueServiceUri/);
    expect(queueConnectionProblem('Other', new Map([['Other', 'DefaultEndpointsProtocol=https;…']]))).toBeUndefined();
  });

  it("host.json's queue settings are the ones the local poller applies", () => {
    expect(host.extensions.queues).toEqual(OPERATION_QUEUE_RULES);
  });

  it("an invocation pauses its operation well before host.json's functionTimeout", () => {
    const [h, m, sec] = host.functionTimeout.split(':').map(Number) as [number, number, number];
    const timeoutMs = ((h * 60 + m) * 60 + sec) * 1000;
    // A batch under way when the budget runs out: 32 instances, allowed 5 minutes.
    expect(OPERATION_RUN_BUDGET_MS + 5 * 60_000).toBeLessThanOrEqual(timeoutMs);
  });

  it("the message $bulkUpdate sends is the operation id the trigger's handler gets, under host.json's encoding", async () => {
    // All digits: as bare text the worker would JSON-parse it into a rounded number.
    const id = '12345678901234567890123456789012';
    const text = encodeOperationMessage(id);
    expect(Buffer.byteLength(text)).toBeLessThan(64 * 1024);
    const entry = queueTriggerInput(text, host.extensions.queues.messageEncoding);
    expect(entry).toEqual({ operationId: id });
    expect(decodeOperationMessage(text)).toBe(id);

    const storage = createMemoryStorage();
    const logged: string[] = [];
    const worker = { owner: 'w', log: (message: string) => logged.push(message) };
    expect(await runQueuedOperation(storage, entry, worker)).toBe('missing');
    const { startBulkUpdate } = await import('../../src/dicomweb/bulk-update.js');
    const operation = await startBulkUpdate(storage, {
      studyInstanceUids: ['1.2.3'],
      changes: [{ tag: '00100010', vr: 'PN', value: 'A^B' }],
    });
    const started = queueTriggerInput(encodeOperationMessage(operation.id), host.extensions.queues.messageEncoding);
    expect(await runQueuedOperation(storage, started, worker)).toBe('finished');
    expect(await runQueuedOperation(storage, started, worker)).toBe('done');

    // What a sender without the encoding would write: the host refuses JSON text, and the bare id
    // decodes to bytes that name no operation; both are dropped, not retried forever.
    expect(() => queueTriggerInput(JSON.stringify({ operationId: id }), 'base64')).toThrow(/not Base64/);
    expect(await runQueuedOperation(storage, queueTriggerInput(id, 'base64'), worker)).toBe('invalid');
    expect(decodeOperationMessage(id)).toBeUndefined();
    expect(logged.filter((line) => /dropped/.test(line))).toHaveLength(2);
  });
});
