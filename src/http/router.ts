import { DicomwebError } from '../dicomweb/errors.js';
import type { Route } from './routes.js';

/** Methods the fetch standard forbids in a Request: hosts answer them through `App.refuse`. */
export const UNREPRESENTABLE_METHODS: ReadonlySet<string> = new Set(['CONNECT', 'TRACE', 'TRACK']);

export interface RouteMatch {
  readonly route: Route;
  readonly params: Record<string, string>;
}

function matchTemplate(template: string, segments: readonly string[]): Record<string, string> | undefined {
  const parts = template.split('/');
  if (parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, part] of parts.entries()) {
    const segment = segments[i] ?? '';
    const name = /^\{(\w+)\}$/.exec(part)?.[1];
    if (name !== undefined) params[name] = segment;
    else if (part.toLowerCase() !== segment.toLowerCase()) return undefined;
  }
  return params;
}

function pathSegments(pathname: string): string[] {
  try {
    return pathname
      .replace(/^\/+|\/+$/g, '')
      .split('/')
      .map(decodeURIComponent);
  } catch {
    throw new DicomwebError('BadRequest', 'The request path is not valid percent-encoding.');
  }
}

/** The methods a path supports (OPTIONS included), or undefined when no resource is there. */
export function allowedMethods(routes: readonly Route[], pathname: string): string[] | undefined {
  const segments = pathSegments(pathname);
  const methods = routes.filter((route) => matchTemplate(route.template, segments)).flatMap((route) => route.methods);
  return methods.length === 0 ? undefined : [...new Set([...methods, 'OPTIONS'])];
}

/** Finds the route for a path; 404 when none matches, 405 with Allow when only the method is wrong. */
export function matchRoute(routes: readonly Route[], method: string, pathname: string): RouteMatch {
  const segments = pathSegments(pathname);
  for (const route of routes) {
    const params = matchTemplate(route.template, segments);
    if (params && route.methods.includes(method.toUpperCase() as Route['methods'][number])) return { route, params };
  }
  throw unmatched(routes, method, pathname);
}

/** The answer for a method or path no route serves: 405 with Allow for a known resource, else 404. */
export function unmatched(routes: readonly Route[], method: string, pathname: string): DicomwebError {
  const allowed = allowedMethods(routes, pathname);
  if (!allowed) return new DicomwebError('NotFound', `There is no DICOMweb resource at ${pathname}.`);
  return new DicomwebError(
    'MethodNotAllowed',
    `The method ${method} is not supported on ${pathname}; use ${allowed.join(', ')}.`,
    { headers: { allow: allowed.join(', ') } },
  );
}
