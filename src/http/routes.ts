import type { ApiVersion } from '../dicomweb/api-version.js';
import type { Handler } from './context.js';
import { handleBulkUpdate, handleOperationStatus } from './bulk-update-handler.js';
import { handleChangeFeed, handleChangeFeedLatest } from './change-feed-handler.js';
import { handleDelete } from './delete-handler.js';
import { handleBulkData, handleFrames, handlePixelData } from './frames-handler.js';
import { handleRendered, handleThumbnail } from './rendered-handler.js';
import { handleMetadata, handleRetrieve } from './retrieve-handler.js';
import { searchHandler } from './search-handler.js';
import { handleHealth } from './health-handler.js';
import { handleStore } from './store-handler.js';
import {
  handleAbandonUploadSession,
  handleCommitUploadSession,
  handleCreateUploadSession,
  handleDescribeUploadSession,
} from './upload-session-handler.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'OPTIONS';

export const API_VERSIONS: readonly ApiVersion[] = ['v1', 'v2'];

/** What a caller needs for a route: DICOM Data Reader for reads, Data Owner for writes. */
export type Permission = 'read' | 'write' | 'public';

/** One route as both hosts register it: an Azure Functions route template and its handler. */
export interface Route {
  /** Unique function name, e.g. "v2-store-study". */
  readonly name: string;
  readonly methods: readonly HttpMethod[];
  /** Azure Functions route template relative to routePrefix "", e.g. "v2/studies/{study}". */
  readonly template: string;
  /** Undefined for the unversioned routes (health). */
  readonly apiVersion: ApiVersion | undefined;
  readonly permission: Permission;
  readonly handler: Handler;
}

interface Resource {
  readonly name: string;
  readonly methods: readonly HttpMethod[];
  readonly path: string;
  readonly handler: Handler;
  /** Default: 'read' for GET, 'write' otherwise. */
  readonly permission?: Permission;
  /** The first API version that has it (default: all). */
  readonly since?: ApiVersion;
}

const RESOURCES: readonly Resource[] = [
  // Bulk update (the Azure service's long-running operation); before studies/{study}, which it would match.
  { name: 'bulk-update', methods: ['POST'], path: 'studies/$bulkUpdate', handler: handleBulkUpdate },
  { name: 'operation-status', methods: ['GET'], path: 'operations/{operation}', handler: handleOperationStatus },
  { name: 'store', methods: ['POST'], path: 'studies', handler: handleStore },
  { name: 'store-study', methods: ['POST'], path: 'studies/{study}', handler: handleStore },
  // Upsert, as the Azure service has it: v2 only (PUT on v1 is 405).
  { name: 'upsert', methods: ['PUT'], path: 'studies', handler: handleStore, since: 'v2' },
  { name: 'upsert-study', methods: ['PUT'], path: 'studies/{study}', handler: handleStore, since: 'v2' },
  { name: 'search-studies', methods: ['GET'], path: 'studies', handler: searchHandler('study') },
  { name: 'search-series', methods: ['GET'], path: 'series', handler: searchHandler('series') },
  { name: 'search-instances', methods: ['GET'], path: 'instances', handler: searchHandler('instance') },
  { name: 'search-study-series', methods: ['GET'], path: 'studies/{study}/series', handler: searchHandler('series') },
  {
    name: 'search-study-instances',
    methods: ['GET'],
    path: 'studies/{study}/instances',
    handler: searchHandler('instance'),
  },
  { name: 'retrieve-study', methods: ['GET'], path: 'studies/{study}', handler: handleRetrieve },
  { name: 'delete-study', methods: ['DELETE'], path: 'studies/{study}', handler: handleDelete },
  { name: 'delete-series', methods: ['DELETE'], path: 'studies/{study}/series/{series}', handler: handleDelete },
  {
    name: 'delete-instance',
    methods: ['DELETE'],
    path: 'studies/{study}/series/{series}/instances/{instance}',
    handler: handleDelete,
  },
  { name: 'change-feed', methods: ['GET'], path: 'changefeed', handler: handleChangeFeed },
  { name: 'change-feed-latest', methods: ['GET'], path: 'changefeed/latest', handler: handleChangeFeedLatest },
  { name: 'retrieve-study-metadata', methods: ['GET'], path: 'studies/{study}/metadata', handler: handleMetadata },
  { name: 'retrieve-series', methods: ['GET'], path: 'studies/{study}/series/{series}', handler: handleRetrieve },
  {
    name: 'retrieve-series-metadata',
    methods: ['GET'],
    path: 'studies/{study}/series/{series}/metadata',
    handler: handleMetadata,
  },
  {
    name: 'retrieve-instance',
    methods: ['GET'],
    path: 'studies/{study}/series/{series}/instances/{instance}',
    handler: handleRetrieve,
  },
  {
    name: 'retrieve-instance-metadata',
    methods: ['GET'],
    path: 'studies/{study}/series/{series}/instances/{instance}/metadata',
    handler: handleMetadata,
  },
  {
    name: 'retrieve-frames',
    methods: ['GET'],
    path: 'studies/{study}/series/{series}/instances/{instance}/frames/{frames}',
    handler: handleFrames,
  },
  {
    name: 'retrieve-pixeldata',
    methods: ['GET'],
    path: 'studies/{study}/series/{series}/instances/{instance}/pixeldata',
    handler: handlePixelData,
  },
  {
    name: 'retrieve-bulkdata',
    methods: ['GET'],
    path: 'studies/{study}/series/{series}/instances/{instance}/bulkdata/{range}',
    handler: handleBulkData,
  },
  {
    name: 'search-series-instances',
    methods: ['GET'],
    path: 'studies/{study}/series/{series}/instances',
    handler: searchHandler('instance'),
  },
  // Upload sessions (docs/conformance.md): all Data Owner, reading a session's progress included.
  { name: 'create-upload-session', methods: ['POST'], path: 'upload-sessions', handler: handleCreateUploadSession },
  {
    name: 'describe-upload-session',
    methods: ['GET'],
    path: 'upload-sessions/{session}',
    handler: handleDescribeUploadSession,
    permission: 'write',
  },
  {
    name: 'abandon-upload-session',
    methods: ['DELETE'],
    path: 'upload-sessions/{session}',
    handler: handleAbandonUploadSession,
  },
  {
    name: 'commit-upload-session',
    methods: ['POST'],
    path: 'upload-sessions/{session}/commit',
    handler: handleCommitUploadSession,
  },
  ...renderedResources(),
];

/** Rendered and thumbnail resources of a study, series, instance and frame (PS3.18 §10.4.1.1.3, Sup 203). */
function renderedResources(): Resource[] {
  const levels = [
    ['study', 'studies/{study}'],
    ['series', 'studies/{study}/series/{series}'],
    ['instance', 'studies/{study}/series/{series}/instances/{instance}'],
    ['frame', 'studies/{study}/series/{series}/instances/{instance}/frames/{frames}'],
  ] as const;
  return levels.flatMap(([level, path]) => [
    { name: `retrieve-${level}-rendered`, methods: ['GET'], path: `${path}/rendered`, handler: handleRendered },
    { name: `retrieve-${level}-thumbnail`, methods: ['GET'], path: `${path}/thumbnail`, handler: handleThumbnail },
  ]);
}

/** The route table: every resource under every API version, and the unversioned health check. */
export const routes: readonly Route[] = [
  ...API_VERSIONS.flatMap((apiVersion) =>
    RESOURCES.filter(
      (resource) =>
        resource.since === undefined || API_VERSIONS.indexOf(apiVersion) >= API_VERSIONS.indexOf(resource.since),
    ).map((resource): Route => ({
      name: `${apiVersion}-${resource.name}`,
      methods: resource.methods,
      template: `${apiVersion}/${resource.path}`,
      apiVersion,
      permission: resource.permission ?? (resource.methods.includes('GET') ? 'read' : 'write'),
      handler: resource.handler,
    })),
  ),
  {
    name: 'health-check',
    methods: ['GET'],
    template: 'health/check',
    apiVersion: undefined,
    permission: 'public',
    handler: handleHealth,
  },
];
