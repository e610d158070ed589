import type { HttpMethod, Route } from '../http/routes.js';

/** Every method the Functions host can route; the fallback takes them all so the app answers 404/405. */
export const ALL_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT'] as const;

export interface AzureHttpFunction {
  readonly name: string;
  readonly methods: readonly (HttpMethod | (typeof ALL_METHODS)[number])[];
  readonly route: string;
}

/**
 * The fallback's name sorts after every route function's: the host tries routes in function-name
 * order (FunctionMetadataManager sorts them, OrdinalIgnoreCase) and falls through to the next
 * route when a method constraint fails, so a request no route function takes ends here.
 */
export const FALLBACK_FUNCTION = 'zz-fallback';

/**
 * The HTTP functions to register on the Azure Functions host. The host drops a function whose
 * template equals another's (case-insensitive, slashes trimmed) when their methods intersect
 * (ScriptHost.HttpRoutesConflict), so each template is one function with the union of its
 * routes' methods; the app dispatches inside it exactly as the local host does. A catch-all
 * fallback gives unknown paths and wrong methods the app's own 404/405 instead of the host's
 * empty 404.
 */
export function azureHttpFunctions(routes: readonly Route[]): AzureHttpFunction[] {
  const byTemplate = new Map<string, { route: string; methods: Set<HttpMethod> }>();
  for (const route of routes) {
    const key = route.template.replace(/^\/+|\/+$/g, '').toLowerCase();
    const entry = byTemplate.get(key) ?? { route: route.template, methods: new Set<HttpMethod>() };
    for (const method of route.methods) entry.methods.add(method);
    byTemplate.set(key, entry);
  }
  const functions = [...byTemplate.values()].map(({ route, methods }) => ({
    name: functionName(route),
    // OPTIONS too: CORS preflights are answered by the app, not by the platform.
    methods: [...methods, 'OPTIONS' as const],
    route,
  }));
  return [...functions, { name: FALLBACK_FUNCTION, methods: ALL_METHODS, route: '{*path}' }];
}

/** "v2/studies/{study}/series" → "v2-studies-study-series": what the host allows in a name. */
function functionName(template: string): string {
  return template
    .replace(/[{}]/g, '')
    .replace(/[^a-z0-9]+/gi, '-')
    .toLowerCase();
}
