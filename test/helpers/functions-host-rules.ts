/**
 * The Azure Functions host's rules for HTTP functions, as its source states them, so a test can
 * hold what functions/index.ts registers against them without the host (Core Tools cannot be
 * installed here). Sources: Azure/azure-functions-host 4.1037 (ScriptHost.cs, Utility.cs,
 * FunctionMetadataManager.cs, WebScriptHostHttpRoutesManager.cs) with
 * Azure/azure-webjobs-sdk-extensions Http 3.2.0 (WebJobsRouteBuilder.cs) and ASP.NET Core's
 * RoutePatternParser / RouteCollection, which the host uses for matching.
 */

export interface HttpFunction {
  readonly name: string;
  readonly methods: readonly string[];
  readonly route: string;
}

/** Utility.FunctionNameValidationRegex (IgnoreCase): a letter, then letters, digits, _ and -; not "host". */
const FUNCTION_NAME = /^[a-z][a-z0-9_-]{0,127}$/i;

/**
 * ScriptHost.HttpRoutesConflict: templates compared as text, case-insensitive, '/' trimmed at
 * both ends; methods intersect when either set is empty (all methods) or they share a name
 * (ordinal, case-sensitive).
 */
export function routesConflict(a: HttpFunction, b: HttpFunction): boolean {
  const trim = (route: string) => route.replace(/^\/+|\/+$/g, '').toLowerCase();
  if (trim(a.route) !== trim(b.route)) return false;
  if (a.methods.length === 0 || b.methods.length === 0) return true;
  return a.methods.some((method) => b.methods.includes(method));
}

/** Why the host would refuse a template (ASP.NET Core RoutePatternParser rules), or undefined. */
export function templateProblem(route: string): string | undefined {
  const trimmed = route.replace(/^~?\/+/, '');
  // ScriptHost.ValidateHttpFunction: a prefix test on the lower-cased, trimmed template.
  const lower = trimmed.replace(/\/+$/, '').toLowerCase();
  if (lower.startsWith('admin') || lower.startsWith('runtime')) return 'conflicts with the built-in routes';
  if (trimmed.includes('//')) return 'has an empty segment';
  const segments = trimmed.split('/');
  const names = new Set<string>();
  for (const [index, segment] of segments.entries()) {
    const parameters = [...segment.matchAll(/\{([^{}]*)\}/g)];
    const literal = segment.replace(/\{[^{}]*\}/g, '');
    if (/[{}]/.test(literal)) return `segment "${segment}" has unbalanced braces`;
    if (literal.includes('?')) return `segment "${segment}" has "?" in literal text`;
    if (parameters.length > 1 && /\}\{/.test(segment)) return `segment "${segment}" has two parameters in a row`;
    for (const [, body = ''] of parameters) {
      const catchAll = body.startsWith('*');
      const name = body
        .replace(/^\*{1,2}/, '')
        .replace(/[:=].*$/, '')
        .replace(/\?$/, '');
      if (name === '' || /[/{}?*]/.test(name)) return `parameter "{${body}}" has no valid name`;
      if (names.has(name.toLowerCase())) return `parameter ${name} appears twice`;
      names.add(name.toLowerCase());
      if (catchAll && (index !== segments.length - 1 || parameters.length > 1 || literal !== '')) {
        return `catch-all "{${body}}" is not the whole last segment`;
      }
      if (catchAll && body.endsWith('?')) return `catch-all "{${body}}" cannot be optional`;
    }
  }
  return undefined;
}

/** Every rule the host applies at start-up; each message names the function it would drop. */
export function hostRuleViolations(functions: readonly HttpFunction[]): string[] {
  return startUp(functions).violations;
}

/** What the host serves after start-up: functions that broke a rule get no route (GetFunctionDescriptorsAsync). */
export function servedFunctions(functions: readonly HttpFunction[]): HttpFunction[] {
  return startUp(functions).served;
}

function startUp(functions: readonly HttpFunction[]): { violations: string[]; served: HttpFunction[] } {
  const violations: string[] = [];
  const served: HttpFunction[] = [];
  const seen = new Map<string, HttpFunction>();
  for (const fn of sortedByName(functions)) {
    const before = violations.length;
    if (!FUNCTION_NAME.test(fn.name) || fn.name.toLowerCase() === 'host') {
      violations.push(`'${fn.name}' is not a valid function name`);
    }
    if (seen.has(fn.name.toLowerCase())) violations.push(`the function name '${fn.name}' is not unique`);
    const problem = templateProblem(fn.route);
    if (problem) violations.push(`${fn.name}: the route "${fn.route}" ${problem}`);
    for (const other of seen.values()) {
      if (routesConflict(fn, other)) {
        violations.push(`${fn.name}: the route specified conflicts with the route defined by function '${other.name}'`);
      }
    }
    if (violations.length === before) served.push(fn);
    seen.set(fn.name.toLowerCase(), fn);
  }
  return { violations, served };
}

/** FunctionMetadataManager.LoadFunctionMetadata: OrderBy(Name, OrdinalIgnoreCase). */
function sortedByName(functions: readonly HttpFunction[]): HttpFunction[] {
  const ordinal = (s: string) => s.toUpperCase();
  return [...functions].sort((a, b) =>
    ordinal(a.name) < ordinal(b.name) ? -1 : ordinal(a.name) > ordinal(b.name) ? 1 : 0,
  );
}

function matches(route: string, path: string): boolean {
  const template = route.replace(/^\/+|\/+$/g, '').split('/');
  const segments = path.replace(/^\/+|\/+$/g, '').split('/');
  for (const [i, part] of template.entries()) {
    if (/^\{\*{1,2}[^}]*\}$/.test(part)) return true; // a catch-all takes the rest, even nothing
    const segment = segments[i];
    if (segment === undefined || segment === '') return false;
    if (!/^\{[^}]*\}$/.test(part) && part.toLowerCase() !== segment.toLowerCase()) return false;
  }
  return segments.length === template.length;
}

/**
 * Which function the host's router gives a request: routes in function-name order
 * (WebScriptHostHttpRoutesManager adds them as the host lists them), the first whose template
 * matches and whose HttpMethodRouteConstraint (case-insensitive) admits the method; a failed
 * constraint falls through to the next route (RouteCollection.RouteAsync). Undefined: the
 * host's own empty 404.
 */
export function hostDispatch(
  functions: readonly HttpFunction[],
  method: string,
  path: string,
): HttpFunction | undefined {
  return sortedByName(servedFunctions(functions)).find(
    (fn) =>
      matches(fn.route, path) &&
      (fn.methods.length === 0 || fn.methods.some((allowed) => allowed.toUpperCase() === method.toUpperCase())),
  );
}

/*
 * The storage queue trigger's rules (Microsoft.Azure.WebJobs.Extensions.Storage.Queues 5.x, the
 * extension the bundle in host.json loads; Azure/azure-sdk-for-net sdk/storage/...Storage.Queues
 * and ...Storage.Common), and how the Node worker hands a message over (@azure/functions 4.x).
 */

/**
 * QueueTriggerAttributeBindingProvider.NormalizeAndValidate lower-cases the trigger's queue name,
 * then QueueClientExtensions.IsValidQueueName: 3 to 63 characters, letters (lower case), digits
 * and '-', no '-' first, last or twice in a row. The lower-casing is only the trigger's: a sender
 * must use the lower-case name itself, so an upper-case letter counts as a problem here.
 */
export function queueNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return 'must be from 3 to 63 characters long';
  if (name.startsWith('-') || name.endsWith('-')) return 'may not start or end with a dash';
  if (/[A-Z]/.test(name)) return 'must be all lower case (the trigger lower-cases it, a sender does not)';
  if (!/^[a-z0-9-]+$/.test(name)) return 'can contain only letters, numbers and dashes';
  if (name.includes('--')) return 'cannot contain consecutive dashes';
  return undefined;
}

/**
 * Where a message goes after maxDequeueCount failed tries: `{queue}-poison`. QueuesOptions
 * (MaxDequeueCount remarks): a queue whose name already ends in "-poison", or is too long to take
 * the suffix, has no poison queue, so its failing messages are never set aside.
 */
export function poisonQueueOf(name: string): string | undefined {
  const poison = `${name}-poison`;
  return name.endsWith('-poison') || queueNameProblem(poison) !== undefined ? undefined : poison;
}

/**
 * Whether the trigger's `connection` resolves from the app settings (learn.microsoft.com,
 * "Azure Queue storage trigger", Connections; StorageClientProvider): a setting of that exact name
 * holds a connection string; otherwise settings under `{connection}__` define an identity-based
 * connection, which needs `__queueServiceUri` (alias `__serviceUri`; for AzureWebJobsStorage also
 * `__accountName`), and with `__credential` = managedidentity, a user-assigned identity's `__clientId`.
 */
export function queueConnectionProblem(
  connection: string,
  settings: ReadonlyMap<string, string | undefined>,
): string | undefined {
  if (settings.has(connection)) return undefined;
  const prefixed = (key: string) => settings.has(`${connection}__${key}`);
  const endpoint =
    prefixed('queueServiceUri') ||
    prefixed('serviceUri') ||
    (connection === 'AzureWebJobsStorage' && prefixed('accountName'));
  if (!endpoint) return `no setting ${connection} nor ${connection}__queueServiceUri names the queue service`;
  const credential = settings.get(`${connection}__credential`);
  if (credential !== undefined && credential !== 'managedidentity') {
    return `${connection}__credential must be managedidentity, not ${credential}`;
  }
  if (credential === 'managedidentity' && !prefixed('clientId') && !prefixed('managedIdentityResourceId')) {
    return `${connection}__clientId is needed to use the user-assigned identity`;
  }
  return undefined;
}

/**
 * What a queue function's handler receives for a message's text. The extension's QueuesOptions
 * MessageEncoding (host.json extensions.queues.messageEncoding, default base64) makes the queue
 * client decode each message with .NET's Convert.FromBase64String, which refuses anything but
 * canonical Base64 (the invocation then fails, and after maxDequeueCount tries the message is
 * poisoned); the text goes to the worker as a string, and @azure/functions' fromRpcTypedData
 * JSON-parses it when it can (tryJsonParse).
 */
export function queueTriggerInput(messageText: string, messageEncoding: 'base64' | 'none'): unknown {
  let text = messageText;
  if (messageEncoding === 'base64') {
    if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(messageText)) {
      throw new Error('the host cannot decode the message: it is not Base64');
    }
    text = Buffer.from(messageText, 'base64').toString('utf8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
