import type { AppConfig } from './http/context.js';
import { errorResponse, type ErrorLogger } from './http/error-response.js';
import { matchRoute } from './http/router.js';
import { routes, type Route } from './http/routes.js';
import type { Storage } from './storage/ports.js';

export interface App {
  /** The web-standard core both hosts call. */
  handle(request: Request): Promise<Response>;
  readonly routes: readonly Route[];
}

export interface AppOptions {
  readonly storage: Storage;
  readonly config: AppConfig;
  readonly log?: ErrorLogger;
}

const defaultLog: ErrorLogger = (message, error) => {
  console.error(`[dicomweb] ${message}:`, error);
};

/** Composition root: one app, served by the node:http host locally and by Azure Functions. */
export function createApp({ storage, config, log = defaultLog }: AppOptions): App {
  return {
    routes,
    async handle(request: Request): Promise<Response> {
      try {
        const { route, params } = matchRoute(routes, request.method, new URL(request.url).pathname);
        return await route.handler(request, { apiVersion: route.apiVersion, params, storage, config });
      } catch (error) {
        return errorResponse(error, log);
      }
    },
  };
}
