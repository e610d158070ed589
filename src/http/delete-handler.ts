import { deleteResource } from '../dicomweb/delete.js';
import type { Handler } from './context.js';
import { retrieveTarget } from './path-params.js';

/** `DELETE {base}/studies/{study}[/series/{series}[/instances/{instance}]]`: 204, or 404 when nothing matched. */
export const handleDelete: Handler = async (_request, context) => {
  await deleteResource(context.storage, retrieveTarget(context));
  return new Response(null, { status: 204 });
};
