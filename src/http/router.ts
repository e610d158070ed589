import { DicomwebError } from '../dicomweb/errors.js';
import type { Route } from './routes.js';

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

/** Finds the route for a path; 404 when none matches, 405 when only the method is wrong. */
export function matchRoute(routes: readonly Route[], method: string, pathname: string): RouteMatch {
  let segments: string[];
  try {
    segments = pathname
      .replace(/^\/+|\/+$/g, '')
      .split('/')
      .map(decodeURIComponent);
  } catch {
    throw new DicomwebError('BadRequest', 'The request path is not valid percent-encoding.');
  }
  let pathMatched = false;
  for (const route of routes) {
    const params = matchTemplate(route.template, segments);
    if (!params) continue;
    pathMatched = true;
    if (route.methods.includes(method.toUpperCase() as Route['methods'][number])) return { route, params };
  }
  if (pathMatched) throw new DicomwebError('MethodNotAllowed', `The method ${method} is not supported on ${pathname}.`);
  throw new DicomwebError('NotFound', `There is no DICOMweb resource at ${pathname}.`);
}
