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
