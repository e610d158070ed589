/**
 * The deployment templates in infra/, read offline through the tree-sitter Bicep grammar: they parse,
 * their modules and parameters fit together, and they keep the security and runtime choices that the
 * app depends on (identity-only storage, Node 22 on Flex Consumption, every setting the code reads).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.js';
import {
  assignedValue,
  at,
  declarations,
  declaredName,
  elements,
  infraDir,
  infraFiles,
  literalValue,
  loadInfra,
  parameters,
  parseBicep,
  property,
  resources,
  resourcesOfType,
  stringValue,
  syntaxProblems,
  walk,
  type BicepFile,
  type Node,
  type Resource,
} from '../helpers/bicep.js';

const ROLE = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
  eventGridDataSender: 'd5a91429-5739-47e2-a06b-3470a27159e7',
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  storageQueueDataReader: '19e7f393-937e-4f77-808e-94535e297925',
  storageQueueDataMessageProcessor: '8a0f0c08-91a1-4084-bc3d-661d67233fed',
  storageQueueDataMessageSender: 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a',
};

/** API versions known to exist for each resource type the templates may use. */
const KNOWN_API_VERSIONS: Record<string, readonly string[]> = {
  'Microsoft.Storage/storageAccounts': ['2023-01-01', '2023-04-01', '2023-05-01', '2024-01-01'],
  'Microsoft.Storage/storageAccounts/blobServices': ['2023-01-01', '2023-04-01', '2023-05-01', '2024-01-01'],
  'Microsoft.Storage/storageAccounts/blobServices/containers': ['2023-01-01', '2023-04-01', '2023-05-01', '2024-01-01'],
  'Microsoft.Storage/storageAccounts/tableServices': ['2023-01-01', '2023-04-01', '2023-05-01', '2024-01-01'],
  'Microsoft.Storage/storageAccounts/tableServices/tables': ['2023-01-01', '2023-04-01', '2023-05-01', '2024-01-01'],
  'Microsoft.Storage/storageAccounts/queueServices': ['2023-01-01', '2023-04-01', '2023-05-01', '2024-01-01'],
  'Microsoft.Storage/storageAccounts/queueServices/queues': ['2023-01-01', '2023-04-01', '2023-05-01', '2024-01-01'],
  'Microsoft.Web/serverfarms': ['2023-12-01', '2024-04-01'],
  'Microsoft.Web/sites': ['2023-12-01', '2024-04-01'],
  'Microsoft.ManagedIdentity/userAssignedIdentities': ['2023-01-31', '2024-11-30'],
  'Microsoft.Authorization/roleAssignments': ['2022-04-01'],
  'Microsoft.OperationalInsights/workspaces': ['2022-10-01', '2023-09-01'],
  'Microsoft.Insights/components': ['2020-02-02'],
  'Microsoft.EventGrid/topics': ['2022-06-15', '2025-02-15'],
};

/** Settings the code reads that the deployment leaves unset on purpose, and why. */
const UNSET_ON_PURPOSE: Record<string, string> = {
  DICOMWEB_STORAGE_CONNECTION_STRING: 'storage is reached with the managed identity, never a key',
  DICOMWEB_DATA_DIR: 'only the local Azurite starter uses it',
  DICOMWEB_AZURITE_MEMORY: 'only the local Azurite starter uses it',
  DICOMWEB_PUBLIC_BASE_URL: 'the request origin is the function app host name',
  DICOMWEB_MAX_HEADER_BYTES: 'the default suits Azure',
  DICOMWEB_QIDO_EMPTY_STATUS: 'the default (200) suits; 204 mimics the Azure service where a client needs it',
  DICOMWEB_AUTH_MODE: 'Entra ID is chosen by DICOMWEB_AUTH_TENANT_ID, which is set',
  DICOMWEB_AUTH_ROLE_CLAIM: 'Entra puts app roles in the default claim, roles',
  DICOMWEB_AUTH_OWNER_ROLES: 'the defaults are the values of infra/app-roles.json',
  DICOMWEB_AUTH_READER_ROLES: 'the defaults are the values of infra/app-roles.json',
  DICOMWEB_AUTH_KEY_DIR: 'only local mode signs its own tokens',
  DICOMWEB_CORS_ORIGINS: 'set it to the viewer origins after deployment; empty means no browser access',
  DICOMWEB_UPLOAD_SESSION_MINUTES: 'the default (2 hours) suits; sessions are an opt-in path for large instances',
  DICOMWEB_URL: 'read by the dicomweb CLI (src/cli), not the server',
  DICOMWEB_TOKEN: 'read by the dicomweb CLI (src/cli), not the server',
  DICOMWEB_SCOPE: 'read by the dicomweb CLI (src/cli), not the server',
  DICOMWEB_EVENTS: 'events are on by default; the Event Grid endpoint is set',
  DICOMWEB_EVENTS_QUEUE: 'events go to the Event Grid topic; a queue is the local default',
  DICOMWEB_OPERATIONS_INTERVAL_MS: 'only the local host polls on an interval; Azure runs the run-operations timer',
  DICOMWEB_EVENTS_WEBHOOK_URL: 'events go to the Event Grid topic, whose subscriptions reach webhooks',
  DICOMWEB_EVENTS_INTERVAL_MS: 'only the local host publishes on an interval; Azure runs a timer function',
  DICOMWEB_EVENTS_SERVICE_HOST: 'the default is the app host name (WEBSITE_HOSTNAME, set by the platform)',
};

/** App settings the Flex Consumption plan rejects or that would bring back storage keys. */
const FORBIDDEN_SETTINGS = [
  'FUNCTIONS_WORKER_RUNTIME',
  'FUNCTIONS_EXTENSION_VERSION',
  'WEBSITE_NODE_DEFAULT_VERSION',
  'WEBSITE_RUN_FROM_PACKAGE',
  'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
  'WEBSITE_CONTENTSHARE',
  'AzureWebJobsStorage',
  'DICOMWEB_STORAGE_CONNECTION_STRING',
  'AZURE_STORAGE_CONNECTION_STRING',
];

let infra: Map<string, BicepFile>;

function file(name: string): BicepFile {
  const found = infra.get(name);
  if (!found) throw new Error(`infra/${name} is missing`);
  return found;
}

function only<T>(items: readonly T[], what: string): T {
  expect(items, what).toHaveLength(1);
  return items[0] as T;
}

function deployed(root: Node, type: string): Resource {
  return only(
    resourcesOfType(root, type).filter((resource) => !resource.existing),
    `one ${type} resource`,
  );
}

/** The declaration of `name` (param, var, resource, module, output) in a file. */
function symbol(root: Node, name: string): Node | undefined {
  return root.namedChildren.find((node) => node.type.endsWith('_declaration') && declaredName(node) === name);
}

function parameterDefault(root: Node, name: string): string | number | boolean | undefined {
  const declaration = symbol(root, name);
  expect(declaration?.type, `param ${name}`).toBe('parameter_declaration');
  return literalValue(declaration && assignedValue(declaration));
}

/** The module declaration in main.bicep that deploys `path` (relative to infra/). */
function moduleFor(path: string): Node {
  const main = file('main.bicep').root;
  return only(
    declarations(main, 'module_declaration').filter((node) => modulePath(node) === path),
    `one module in main.bicep deploys ${path}`,
  );
}

function modulePath(declaration: Node): string | undefined {
  const path = stringValue(declaration.namedChildren.find((node) => node.type === 'string'));
  return path === undefined ? undefined : posix.normalize(path);
}

/** The expression main.bicep passes to parameter `param` of the module that deploys `path`. */
function passedTo(path: string, param: string): string | undefined {
  const module = moduleFor(path);
  return at(assignedValue(module), 'params', param)?.text;
}

/** siteConfig.appSettings of the function app as name → value expression. */
function appSettings(): Map<string, Node> {
  const site = deployed(file('modules/functionapp.bicep').root, 'Microsoft.Web/sites');
  const list = at(site.body, 'properties', 'siteConfig', 'appSettings');
  expect(list?.type, 'siteConfig.appSettings is an array literal').toBe('array');
  const settings = new Map<string, Node>();
  for (const item of elements(list)) {
    const name = stringValue(property(item, 'name'));
    const value = property(item, 'value');
    expect(name, `setting at line ${item.startPosition.row + 1} has a literal name`).toBeTypeOf('string');
    expect(value, `setting ${name} has a value`).toBeDefined();
    expect(settings.has(name ?? ''), `setting ${name} is set once`).toBe(false);
    if (name && value) settings.set(name, value);
  }
  return settings;
}

/**
 * The role definition GUIDs a roleAssignments resource assigns: a literal, a var holding one, or, in a
 * `[for role in roles: ...]` loop, the `id` of every object of the `roles` var.
 */
function assignedRoleIds(root: Node, assignment: Resource): string[] {
  const roleDefinitionId = at(assignment.body, 'properties', 'roleDefinitionId');
  expect(roleDefinitionId?.type, `${assignment.symbol}: roleDefinitionId is a call`).toBe('call_expression');
  expect(roleDefinitionId?.childForFieldName('function')?.text).toBe('subscriptionResourceId');
  const args = roleDefinitionId?.childForFieldName('arguments')?.namedChildren ?? [];
  expect(stringValue(args[0])).toBe('Microsoft.Authorization/roleDefinitions');
  const roleArgument = args[1];
  if (!roleArgument) return [];
  const literal = stringValue(roleArgument);
  if (literal !== undefined) return [literal];
  if (roleArgument.type === 'identifier') {
    const variable = symbol(root, roleArgument.text);
    const value = stringValue(variable && assignedValue(variable));
    return value === undefined ? [] : [value];
  }
  if (roleArgument.type === 'member_expression' && assignment.loopOver) {
    const key = roleArgument.childForFieldName('property')?.text ?? '';
    const collection = symbol(root, assignment.loopOver);
    return elements(collection && assignedValue(collection))
      .map((item) => stringValue(property(item, key)))
      .filter((id): id is string => id !== undefined);
  }
  return [];
}

beforeAll(async () => {
  infra = await loadInfra();
});

describe('infra/: syntax', () => {
  it('has main.bicep and the six modules', () => {
    expect([...infra.keys()]).toEqual(
      expect.arrayContaining([
        'main.bicep',
        'modules/functionapp.bicep',
        'modules/identity.bicep',
        'modules/monitoring.bicep',
        'modules/rbac.bicep',
        'modules/storage.bicep',
        'modules/events.bicep',
      ]),
    );
  });

  it('the grammar reports broken Bicep (so a clean parse means something)', async () => {
    const broken = await parseBicep('broken.bicep', "resource x 'a@1' = {\n  name: 'x\n  properties: {\n}\n");
    expect(syntaxProblems(broken.root)).not.toEqual([]);
  });

  it('every .bicep file parses without ERROR or MISSING nodes', () => {
    for (const { name, root } of infra.values()) {
      expect(syntaxProblems(root), `infra/${name}`).toEqual([]);
    }
  });

  it('main.bicep deploys to a resource group', () => {
    const scope = only(
      declarations(file('main.bicep').root, 'target_scope_assignment'),
      'one targetScope in main.bicep',
    );
    expect(stringValue(scope.namedChildren[0])).toBe('resourceGroup');
  });

  it('uses resource API versions that exist', () => {
    for (const { name, root } of infra.values()) {
      for (const resource of resources(root)) {
        expect(KNOWN_API_VERSIONS[resource.type], `${name}: ${resource.type} is a known type`).toBeDefined();
        expect(KNOWN_API_VERSIONS[resource.type], `${name}: ${resource.type}@${resource.apiVersion}`).toContain(
          resource.apiVersion,
        );
      }
    }
  });
});

describe('infra/: modules and parameters', () => {
  it('every module main.bicep references exists, and every module file is deployed', () => {
    const referenced = declarations(file('main.bicep').root, 'module_declaration').map((node) => modulePath(node));
    for (const path of referenced) {
      expect(path, 'module path is a literal').toBeTypeOf('string');
      expect(existsSync(join(infraDir, path ?? '')), `infra/${path} exists`).toBe(true);
    }
    const moduleFiles = readdirSync(join(infraDir, 'modules')).filter((name) => name.endsWith('.bicep'));
    expect(referenced.sort()).toEqual(moduleFiles.map((name) => `modules/${name}`).sort());
  });

  it('each module gets only parameters it declares, and every one it requires', () => {
    for (const module of declarations(file('main.bicep').root, 'module_declaration')) {
      const path = modulePath(module) ?? '';
      const declared = parameters(file(path).root);
      const params = at(assignedValue(module), 'params');
      const passed = (params?.namedChildren ?? [])
        .filter((node) => node.type === 'object_property')
        .map((node) => node.namedChildren[0]?.text ?? '');
      for (const name of passed) expect(declared.has(name), `${path} declares param ${name}`).toBe(true);
      for (const [name, { hasDefault }] of declared) {
        if (!hasDefault) expect(passed, `main.bicep passes required param ${name} to ${path}`).toContain(name);
      }
    }
  });

  it('main.parameters.json names only parameters main.bicep declares, and every required one', () => {
    expect(infraFiles('.json')).toContain('main.parameters.json');
    const json = JSON.parse(readFileSync(join(infraDir, 'main.parameters.json'), 'utf8')) as {
      parameters: Record<string, { value?: unknown }>;
    };
    const declared = parameters(file('main.bicep').root);
    const given = Object.keys(json.parameters);
    for (const name of given) {
      expect(declared.has(name), `main.bicep declares ${name}`).toBe(true);
      expect(json.parameters[name], `${name} has a value`).toHaveProperty('value');
    }
    for (const [name, { hasDefault }] of declared) {
      if (!hasDefault) expect(given, `main.parameters.json gives required ${name}`).toContain(name);
    }
  });

  it('takes location, namePrefix, Entra tenant and audience, and the scale-out limit as parameters', () => {
    const declared = parameters(file('main.bicep').root);
    for (const name of ['location', 'namePrefix', 'entraTenantId', 'entraAudience', 'maximumInstanceCount']) {
      expect(declared.has(name), `param ${name}`).toBe(true);
    }
  });
});

describe('infra/modules/storage.bicep', () => {
  const account = (): Resource => deployed(file('modules/storage.bicep').root, 'Microsoft.Storage/storageAccounts');

  it('is StorageV2 with shared keys and public blob access off, TLS 1.2 and HTTPS only', () => {
    const { body } = account();
    expect(stringValue(property(body, 'kind'))).toBe('StorageV2');
    expect(literalValue(at(body, 'properties', 'allowSharedKeyAccess'))).toBe(false);
    expect(literalValue(at(body, 'properties', 'minimumTlsVersion'))).toBe('TLS1_2');
    expect(literalValue(at(body, 'properties', 'allowBlobPublicAccess'))).toBe(false);
    expect(literalValue(at(body, 'properties', 'supportsHttpsTrafficOnly'))).toBe(true);
  });

  it('has the instances container and the index table, named by default as the code expects', () => {
    const { root } = file('modules/storage.bicep');
    const defaults = readConfig({});
    const containers = resourcesOfType(root, 'Microsoft.Storage/storageAccounts/blobServices/containers');
    const tables = resourcesOfType(root, 'Microsoft.Storage/storageAccounts/tableServices/tables');
    const containerNames = containers.map((resource) => property(resource.body, 'name')?.text);
    const tableName = only(tables, 'one table').body;
    expect(containerNames).toContain('instancesContainerName');
    expect(property(tableName, 'name')?.text).toBe('indexTableName');
    expect(parameterDefault(root, 'instancesContainerName')).toBe(defaults.container);
    expect(parameterDefault(root, 'indexTableName')).toBe(defaults.table);
    const main = file('main.bicep').root;
    expect(parameterDefault(main, 'instancesContainerName')).toBe(defaults.container);
    expect(parameterDefault(main, 'indexTableName')).toBe(defaults.table);
  });

  it('has a separate container for Flex Consumption deployment packages', () => {
    const { root } = file('modules/storage.bicep');
    const containers = resourcesOfType(root, 'Microsoft.Storage/storageAccounts/blobServices/containers');
    expect(containers.map((resource) => property(resource.body, 'name')?.text)).toContain('deploymentContainerName');
    const output = symbol(root, 'deploymentContainerUrl');
    expect(output?.type).toBe('output_declaration');
    expect(output && assignedValue(output)?.text).toContain('deploymentContainer.name');
  });
});

describe('infra/modules/functionapp.bicep', () => {
  const root = (): Node => file('modules/functionapp.bicep').root;

  it('runs on a Flex Consumption (FC1) Linux plan', () => {
    const plan = deployed(root(), 'Microsoft.Web/serverfarms');
    expect(literalValue(at(plan.body, 'sku', 'name'))).toBe('FC1');
    expect(literalValue(at(plan.body, 'sku', 'tier'))).toBe('FlexConsumption');
    expect(literalValue(at(plan.body, 'properties', 'reserved'))).toBe(true);
    const site = deployed(root(), 'Microsoft.Web/sites');
    expect(at(site.body, 'properties', 'serverFarmId')?.text).toBe(`${plan.symbol}.id`);
  });

  it('is a Linux function app on Node.js 22, the major version the project runs on', () => {
    const { body } = deployed(root(), 'Microsoft.Web/sites');
    expect(literalValue(property(body, 'kind'))).toBe('functionapp,linux');
    const runtime = at(body, 'properties', 'functionAppConfig', 'runtime');
    expect(literalValue(property(runtime, 'name'))).toBe('node');
    expect(literalValue(property(runtime, 'version'))).toBe('22');
    const pkg = JSON.parse(readFileSync(join(infraDir, '..', 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    expect(pkg.devDependencies['node']).toMatch(/^\^?22\./);
  });

  it('deploys from the blob container with the user-assigned identity and scales as configured', () => {
    const { body } = deployed(root(), 'Microsoft.Web/sites');
    const config = at(body, 'properties', 'functionAppConfig');
    const storage = at(config, 'deployment', 'storage');
    expect(literalValue(property(storage, 'type'))).toBe('blobContainer');
    expect(property(storage, 'value')?.text).toBe('deploymentContainerUrl');
    expect(literalValue(at(storage, 'authentication', 'type'))).toBe('UserAssignedIdentity');
    expect(at(storage, 'authentication', 'userAssignedIdentityResourceId')?.text).toBe('identityId');
    expect(literalValue(at(config, 'scaleAndConcurrency', 'instanceMemoryMB'))).toBe(2048);
    expect(at(config, 'scaleAndConcurrency', 'maximumInstanceCount')?.text).toBe('maximumInstanceCount');
    expect(passedTo('modules/functionapp.bicep', 'maximumInstanceCount')).toBe('maximumInstanceCount');
    expect(passedTo('modules/functionapp.bicep', 'deploymentContainerUrl')).toBe(
      'storage.outputs.deploymentContainerUrl',
    );
  });

  it('runs as the user-assigned identity from identity.bicep', () => {
    const { body } = deployed(root(), 'Microsoft.Web/sites');
    expect(literalValue(at(body, 'identity', 'type'))).toBe('UserAssigned');
    expect(at(body, 'identity', 'userAssignedIdentities', "'${identityId}'")?.type).toBe('object');
    const identity = deployed(file('modules/identity.bicep').root, 'Microsoft.ManagedIdentity/userAssignedIdentities');
    expect(property(identity.body, 'location')?.text).toBe('location');
    expect(passedTo('modules/functionapp.bicep', 'identityId')).toBe('identity.outputs.id');
    expect(passedTo('modules/functionapp.bicep', 'identityClientId')).toBe('identity.outputs.clientId');
  });

  it('accepts HTTPS only, TLS 1.2 at least', () => {
    const { body } = deployed(root(), 'Microsoft.Web/sites');
    expect(literalValue(at(body, 'properties', 'httpsOnly'))).toBe(true);
    expect(literalValue(at(body, 'properties', 'siteConfig', 'minTlsVersion'))).toBe('1.2');
  });

  // learn.microsoft.com, "App settings reference for Azure Functions", Flex Consumption plan
  // deprecations: these site properties are deprecated or not valid on Flex Consumption.
  it('sets none of the site properties Flex Consumption deprecates (ftpsState among them)', () => {
    const { body } = deployed(root(), 'Microsoft.Web/sites');
    for (const name of [
      'ftpsState',
      'alwaysOn',
      'use32BitWorkerProcess',
      'linuxFxVersion',
      'windowsFxVersion',
      'javaVersion',
      'netFrameworkVersion',
      'powerShellVersion',
      'functionAppScaleLimit',
      'preWarmedInstanceCount',
      'vnetRouteAllEnabled',
      'vnetContentShareEnabled',
      'vnetImagePullEnabled',
      'vnetBackupRestoreEnabled',
    ]) {
      for (const where of [at(body, 'properties', 'siteConfig'), property(body, 'properties')]) {
        const keys = (where?.namedChildren ?? []).map((node) => node.namedChildren[0]?.text.toLowerCase());
        expect(keys, name).not.toContain(name.toLowerCase());
      }
    }
  });

  // learn.microsoft.com, "Azure Functions Flex Consumption plan hosting" / "Event-driven scaling":
  // the highest maximumInstanceCount is 1000; the lowest is 40 on the plan page (1 on newer pages).
  it('bounds maximumInstanceCount as Flex Consumption documents it', () => {
    for (const [name, param] of [
      ['main.bicep', 'maximumInstanceCount'],
      ['modules/functionapp.bicep', 'maximumInstanceCount'],
    ] as const) {
      // Decorators are the lines right above the declaration.
      expect(file(name).source, name).toMatch(
        new RegExp(`@minValue\\(40\\)\\s*@maxValue\\(1000\\)\\s*param ${param} `),
      );
    }
  });
});

describe('infra/: app settings', () => {
  it('sets every setting the code reads, except those left unset on purpose', () => {
    const settings = appSettings();
    const read = new Set<string>();
    const scan = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) scan(path);
        else if (entry.name.endsWith('.ts')) {
          for (const match of readFileSync(path, 'utf8').matchAll(/['"`](DICOMWEB_[A-Z0-9_]+)['"`]/g)) {
            read.add(match[1] ?? '');
          }
        }
      }
    };
    scan(join(infraDir, '..', 'src'));
    scan(join(infraDir, '..', 'functions'));
    const required = [
      'DICOMWEB_BLOB_ENDPOINT',
      'DICOMWEB_TABLE_ENDPOINT',
      'DICOMWEB_BLOB_CONTAINER',
      'DICOMWEB_TABLE',
      'DICOMWEB_AUTH_TENANT_ID',
      'DICOMWEB_AUTH_AUDIENCE',
      'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT',
      'APPLICATIONINSIGHTS_CONNECTION_STRING',
      'AZURE_CLIENT_ID',
    ];
    expect(read.size, 'found the settings src/ reads').toBeGreaterThan(3);
    for (const name of new Set([...required, ...read])) {
      if (name in UNSET_ON_PURPOSE) continue;
      expect(
        settings.has(name),
        `app setting ${name}: set it in infra/modules/functionapp.bicep or list it in UNSET_ON_PURPOSE`,
      ).toBe(true);
    }
  });

  it('feeds each DICOMweb setting from the storage and monitoring modules and the Entra parameters', () => {
    const settings = appSettings();
    const wiring: Record<string, [param: string, fromMain: string]> = {
      DICOMWEB_BLOB_ENDPOINT: ['blobEndpoint', 'storage.outputs.blobEndpoint'],
      DICOMWEB_TABLE_ENDPOINT: ['tableEndpoint', 'storage.outputs.tableEndpoint'],
      DICOMWEB_BLOB_CONTAINER: ['instancesContainerName', 'storage.outputs.instancesContainerName'],
      DICOMWEB_TABLE: ['indexTableName', 'storage.outputs.indexTableName'],
      DICOMWEB_AUTH_TENANT_ID: ['entraTenantId', 'entraTenantId'],
      DICOMWEB_AUTH_AUDIENCE: ['entraAudience', 'entraAudience'],
      AZURE_CLIENT_ID: ['identityClientId', 'identity.outputs.clientId'],
      APPLICATIONINSIGHTS_CONNECTION_STRING: [
        'applicationInsightsConnectionString',
        'monitoring.outputs.applicationInsightsConnectionString',
      ],
    };
    for (const [setting, [param, fromMain]] of Object.entries(wiring)) {
      expect(settings.get(setting)?.text, setting).toBe(param);
      expect(passedTo('modules/functionapp.bicep', param), `main.bicep → ${param}`).toBe(fromMain);
    }
    const storage = file('modules/storage.bicep').root;
    for (const output of ['blobEndpoint', 'tableEndpoint']) {
      const value = symbol(storage, output);
      const text = value && assignedValue(value);
      // The account URL as the README documents it: https://<account>.<service>.core.windows.net, no path.
      expect(text?.type, output).toBe('string');
      expect(text?.text, output).toMatch(
        /^'https:\/\/\$\{account\.name\}\.(blob|table)\.\$\{environment\(\)\.suffixes\.storage\}'$/,
      );
    }
  });

  /**
   * Azure/azure-webjobs-sdk-extensions (Http 3.2.0) HttpTriggerAttributeBindingProvider: a body with
   * a Content-Length is read whole into a string (UTF-16, 2 bytes per byte) before the Node worker
   * sees it, even with HTTP streaming; Azure/azure-functions-host HttpRequestBodySizeMiddleware
   * applies FUNCTIONS_REQUEST_BODY_SIZE_LIMIT and answers 500 beyond it (host#10519). So the limit
   * must fit the instance's memory at its HTTP concurrency, and the app's own limit must sit below
   * the host's so clients get the app's 413.
   */
  it("sets request limits the Flex instance can hold, the app's 413 below the host's", () => {
    const settings = appSettings();
    expect(settings.get('FUNCTIONS_REQUEST_BODY_SIZE_LIMIT')?.text).toBe('string(requestBodySizeLimit)');
    expect(settings.get('DICOMWEB_MAX_REQUEST_BYTES')?.text).toBe('string(requestBodySizeLimit - 1048576)');
    expect(literalValue(settings.get('FUNCTIONS_NODE_BLOCK_ON_ENTRY_POINT_ERROR'))).toBe('true');
    expect(passedTo('modules/functionapp.bicep', 'requestBodySizeLimit')).toBe('requestBodySizeLimit');
    const limit = Number(parameterDefault(file('main.bicep').root, 'requestBodySizeLimit'));
    const { body } = deployed(file('modules/functionapp.bicep').root, 'Microsoft.Web/sites');
    const scale = at(body, 'properties', 'functionAppConfig', 'scaleAndConcurrency');
    const memoryMiB = Number(literalValue(property(scale, 'instanceMemoryMB')));
    const concurrency = Number(literalValue(at(scale, 'triggers', 'http', 'perInstanceConcurrency')));
    expect(concurrency).toBeGreaterThan(0);
    // Host copies in flight plus 512 MiB for the host, the worker and the platform.
    expect(concurrency * 2 * limit + 512 * 1024 ** 2).toBeLessThanOrEqual(memoryMiB * 1024 ** 2);
    for (const name of ['main.bicep', 'modules/functionapp.bicep']) {
      expect(file(name).source, name).toMatch(new RegExp(`@maxValue\\(${limit}\\)\\s*param requestBodySizeLimit `));
    }
    const parameters = JSON.parse(readFileSync(join(infraDir, 'main.parameters.json'), 'utf8')) as {
      parameters: Record<string, { value: unknown }>;
    };
    expect(parameters.parameters['requestBodySizeLimit']?.value).toBe(limit);
    expect(readFileSync(join(infraDir, '..', 'README.md'), 'utf8')).toContain(`${limit / 1024 ** 2} MiB`);
  });

  it('connects the Functions host to its storage with the managed identity', () => {
    const settings = appSettings();
    expect(settings.get('AzureWebJobsStorage__accountName')?.text).toBe('storageAccountName');
    expect(literalValue(settings.get('AzureWebJobsStorage__credential'))).toBe('managedidentity');
    expect(settings.get('AzureWebJobsStorage__clientId')?.text).toBe('identityClientId');
    expect(passedTo('modules/functionapp.bicep', 'storageAccountName')).toBe('storage.outputs.name');
  });

  it('sets none of the settings Flex Consumption rejects or that carry storage keys', () => {
    const settings = appSettings();
    for (const name of FORBIDDEN_SETTINGS) expect(settings.has(name), name).toBe(false);
  });

  it('has no key, SAS or connection string anywhere in infra/', () => {
    const keyFunctions = /^list(Keys|AccountSas|ServiceSas|ConnectionStrings)$/i;
    const keyText = /AccountKey|SharedAccessSignature|DefaultEndpointsProtocol|SharedAccessKey/i;
    for (const { name, root } of infra.values()) {
      for (const node of walk(root)) {
        if (node.type === 'call_expression') {
          const callee = node.childForFieldName('function');
          const called = callee?.type === 'member_expression' ? callee.childForFieldName('property') : callee;
          expect(called?.text ?? '', `${name}:${node.startPosition.row + 1}`).not.toMatch(keyFunctions);
        }
        if (node.type === 'string_content' || node.type === 'identifier' || node.type === 'property_identifier') {
          expect(node.text, `${name}:${node.startPosition.row + 1}`).not.toMatch(keyText);
        }
      }
    }
    for (const json of infraFiles('.json')) {
      expect(readFileSync(join(infraDir, json), 'utf8'), json).not.toMatch(keyText);
    }
  });
});

describe('infra/modules/rbac.bicep', () => {
  it('grants the identity blob and table data roles on the storage account', () => {
    const { root } = file('modules/rbac.bicep');
    const account = only(
      resourcesOfType(root, 'Microsoft.Storage/storageAccounts').filter((resource) => resource.existing),
      'the storage account, as an existing resource',
    );
    const assignments = resourcesOfType(root, 'Microsoft.Authorization/roleAssignments');
    const onStorage = assignments.filter((assignment) => property(assignment.body, 'scope')?.text === account.symbol);
    const roles = onStorage.flatMap((assignment) => assignedRoleIds(root, assignment));
    expect(roles).toContain(ROLE.storageBlobDataOwner);
    expect(roles).toContain(ROLE.storageTableDataContributor);
    for (const assignment of onStorage) {
      expect(at(assignment.body, 'properties', 'principalId')?.text).toBe('principalId');
      expect(literalValue(at(assignment.body, 'properties', 'principalType'))).toBe('ServicePrincipal');
      const name = property(assignment.body, 'name');
      expect(name?.childForFieldName('function')?.text, 'name is guid(...)').toBe('guid');
      expect(name?.text).toContain('principalId');
    }
    expect(passedTo('modules/rbac.bicep', 'principalId')).toBe('identity.outputs.principalId');
    expect(passedTo('modules/rbac.bicep', 'storageAccountName')).toBe('storage.outputs.name');
  });

  it('lets the identity publish telemetry to Application Insights', () => {
    const { root } = file('modules/rbac.bicep');
    const component = only(
      resourcesOfType(root, 'Microsoft.Insights/components').filter((resource) => resource.existing),
      'the component, as an existing resource',
    );
    const assignments = resourcesOfType(root, 'Microsoft.Authorization/roleAssignments').filter(
      (assignment) => property(assignment.body, 'scope')?.text === component.symbol,
    );
    expect(assignments.flatMap((assignment) => assignedRoleIds(root, assignment))).toContain(
      ROLE.monitoringMetricsPublisher,
    );
    expect(appSettings().get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING')?.text).toBe(
      "'ClientId=${identityClientId};Authorization=AAD'",
    );
  });
});

/**
 * The operations queue (functions/index.ts run-operation): the app sends to DICOMWEB_QUEUE_ENDPOINT's
 * DICOMWEB_OPERATIONS_QUEUE, the trigger reads the same queue over AzureWebJobsStorage; both must
 * name one account's queue service, the queue (and its poison queue) must exist, and the identity
 * needs what the trigger and the sender need (learn.microsoft.com, "Azure Queue storage trigger":
 * Storage Queue Data Reader and Message Processor; output: Contributor or Message Sender).
 */
describe('infra/: the operations queue', () => {
  it('is created with its poison queue, named by default as the code expects', () => {
    const { root } = file('modules/storage.bicep');
    const queues = resourcesOfType(root, 'Microsoft.Storage/storageAccounts/queueServices/queues');
    expect(queues.map((queue) => property(queue.body, 'name')?.text).sort()).toEqual([
      "'${operationsQueueName}-poison'",
      'operationsQueueName',
    ]);
    const defaults = readConfig({});
    expect(parameterDefault(root, 'operationsQueueName')).toBe(defaults.operations.queue);
    expect(parameterDefault(file('main.bicep').root, 'operationsQueueName')).toBe(defaults.operations.queue);
    for (const name of ['main.bicep', 'modules/storage.bicep']) {
      // 56 + '-poison' = 63, the longest queue name.
      expect(file(name).source, name).toMatch(/@maxLength\(56\)\s*param operationsQueueName /);
    }
    expect(passedTo('modules/storage.bicep', 'operationsQueueName')).toBe('operationsQueueName');
    const output = symbol(root, 'queueEndpoint');
    expect(output && assignedValue(output)?.text).toBe(
      "'https://${account.name}.queue.${environment().suffixes.storage}'",
    );
  });

  it('the app sends to, and the trigger reads, that queue of that account', () => {
    const settings = appSettings();
    expect(settings.get('DICOMWEB_OPERATIONS_QUEUE')?.text).toBe('operationsQueueName');
    expect(passedTo('modules/functionapp.bicep', 'operationsQueueName')).toBe('storage.outputs.operationsQueueName');
    expect(settings.get('DICOMWEB_QUEUE_ENDPOINT')?.text).toBe('queueEndpoint');
    expect(settings.get('AzureWebJobsStorage__queueServiceUri')?.text).toBe('queueEndpoint');
    expect(passedTo('modules/functionapp.bicep', 'queueEndpoint')).toBe('storage.outputs.queueEndpoint');
    // The host's storage, which the trigger's connection names, is the same account.
    expect(passedTo('modules/functionapp.bicep', 'storageAccountName')).toBe('storage.outputs.name');
  });

  it('grants the identity what the queue trigger and the sender need on the account', () => {
    const { root } = file('modules/rbac.bicep');
    const account = only(
      resourcesOfType(root, 'Microsoft.Storage/storageAccounts').filter((resource) => resource.existing),
      'the storage account, as an existing resource',
    );
    const roles = new Set(
      resourcesOfType(root, 'Microsoft.Authorization/roleAssignments')
        .filter((assignment) => property(assignment.body, 'scope')?.text === account.symbol)
        .flatMap((assignment) => assignedRoleIds(root, assignment)),
    );
    const contributor = roles.has(ROLE.storageQueueDataContributor);
    expect(
      contributor || (roles.has(ROLE.storageQueueDataReader) && roles.has(ROLE.storageQueueDataMessageProcessor)),
    ).toBe(true);
    expect(contributor || roles.has(ROLE.storageQueueDataMessageSender)).toBe(true);
  });
});

describe('infra/modules/events.bicep', () => {
  it('is an Event Grid topic taking CloudEvents 1.0, with access keys disabled', () => {
    const topic = deployed(file('modules/events.bicep').root, 'Microsoft.EventGrid/topics');
    expect(literalValue(at(topic.body, 'properties', 'inputSchema'))).toBe('CloudEventSchemaV1_0');
    expect(literalValue(at(topic.body, 'properties', 'disableLocalAuth'))).toBe(true);
    expect(property(topic.body, 'location')?.text).toBe('location');
    const endpoint = symbol(file('modules/events.bicep').root, 'endpoint');
    expect(endpoint && assignedValue(endpoint)?.text).toBe(`${topic.symbol}.properties.endpoint`);
  });

  it('gives the app the topic endpoint and a source, and its identity the EventGrid Data Sender role on the topic', () => {
    const settings = appSettings();
    expect(settings.get('DICOMWEB_EVENTS_EVENTGRID_ENDPOINT')?.text).toBe('eventGridEndpoint');
    expect(passedTo('modules/functionapp.bicep', 'eventGridEndpoint')).toBe('events.outputs.endpoint');
    expect(settings.get('DICOMWEB_EVENTS_SOURCE')?.text).toBe("resourceId('Microsoft.Web/sites', appName)");
    const { root } = file('modules/rbac.bicep');
    const topic = only(
      resourcesOfType(root, 'Microsoft.EventGrid/topics').filter((resource) => resource.existing),
      'the topic, as an existing resource',
    );
    expect(property(topic.body, 'name')?.text).toBe('eventGridTopicName');
    expect(passedTo('modules/rbac.bicep', 'eventGridTopicName')).toBe('events.outputs.name');
    const assignments = resourcesOfType(root, 'Microsoft.Authorization/roleAssignments').filter(
      (assignment) => property(assignment.body, 'scope')?.text === topic.symbol,
    );
    expect(assignments.flatMap((assignment) => assignedRoleIds(root, assignment))).toEqual([ROLE.eventGridDataSender]);
    for (const assignment of assignments) {
      expect(at(assignment.body, 'properties', 'principalId')?.text).toBe('principalId');
      expect(literalValue(at(assignment.body, 'properties', 'principalType'))).toBe('ServicePrincipal');
    }
  });
});

describe('infra/modules/monitoring.bicep', () => {
  it('is a Log Analytics workspace with a workspace-based Application Insights component', () => {
    const { root } = file('modules/monitoring.bicep');
    const workspace = deployed(root, 'Microsoft.OperationalInsights/workspaces');
    const component = deployed(root, 'Microsoft.Insights/components');
    expect(at(component.body, 'properties', 'WorkspaceResourceId')?.text).toBe(`${workspace.symbol}.id`);
    expect(literalValue(at(component.body, 'properties', 'Application_Type'))).toBe('web');
    const output = symbol(root, 'applicationInsightsConnectionString');
    expect(output && assignedValue(output)?.text).toBe(`${component.symbol}.properties.ConnectionString`);
  });
});

describe('infra/main.bicep outputs', () => {
  it('gives the DICOMweb base URL https://<host>/v2 and the function app name', () => {
    const { root } = file('main.bicep');
    const outputs = declarations(root, 'output_declaration');
    const byName = new Map(outputs.map((node) => [declaredName(node), assignedValue(node)]));
    const baseUrl = [...byName.values()].find((value) => {
      const parts = value?.namedChildren ?? [];
      return (
        value?.type === 'string' &&
        parts.length === 3 &&
        parts[0]?.text === 'https://' &&
        parts[1]?.type === 'interpolation' &&
        parts[2]?.text === '/v2'
      );
    });
    expect(baseUrl, "an output 'https://${...}/v2'").toBeDefined();
    const host = baseUrl?.namedChildren[1]?.namedChildren[0]?.text;
    const functionAppModule = moduleFor('modules/functionapp.bicep');
    expect(host).toBe(`${declaredName(functionAppModule)}.outputs.defaultHostName`);
    const functionApp = file('modules/functionapp.bicep').root;
    const site = deployed(functionApp, 'Microsoft.Web/sites');
    const defaultHostName = symbol(functionApp, 'defaultHostName');
    expect(defaultHostName && assignedValue(defaultHostName)?.text).toBe(`${site.symbol}.properties.defaultHostName`);
    expect([...byName.values()].map((value) => value?.text)).toContain(
      `${declaredName(functionAppModule)}.outputs.name`,
    );
  });

  it('README documents deploying main.bicep with main.parameters.json', () => {
    const readme = readFileSync(join(dirname(infraDir), 'README.md'), 'utf8');
    expect(readme).toMatch(/^## Deploy to Azure$/m);
    expect(readme).toContain('-f infra/main.bicep');
    expect(readme).toContain('-p infra/main.parameters.json');
  });
});
