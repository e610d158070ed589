import { describeChanges, type ChangeFeedItem } from '../dicomweb/change-feed.js';
import { DicomwebError } from '../dicomweb/errors.js';
import { metadataText } from '../dicomweb/instance-sidecar.js';
import type { Handler, RequestContext } from './context.js';
import { resourceUrls, versionBaseUrl } from './urls.js';

/** Query parameters by lower-cased name (the Azure service matches them case-insensitively). */
function params(url: URL): Map<string, string> {
  const map = new Map<string, string>();
  for (const [key, value] of url.searchParams) map.set(key.toLowerCase(), value.trim());
  return map;
}

function integer(query: Map<string, string>, name: string, fallback: number, min: number, max: number): number {
  const raw = query.get(name.toLowerCase());
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw new DicomwebError(
      'BadRequest',
      `The query parameter '${name}' is invalid: it must be a whole number from ${min} to ${max}.`,
    );
  }
  return value;
}

function includeMetadata(query: Map<string, string>): boolean {
  const raw = query.get('includemetadata');
  if (raw === undefined || raw === '') return true;
  if (!/^(true|false)$/i.test(raw))
    throw new DicomwebError('BadRequest', "The query parameter 'includeMetadata' is invalid: use true or false.");
  return raw.toLowerCase() === 'true';
}

/** ISO 8601 with a time zone (Z or ±hh:mm), as the Azure service requires. */
function time(query: Map<string, string>, name: string, fallback: Date): Date {
  const raw = query.get(name.toLowerCase());
  if (raw === undefined || raw === '') return fallback;
  if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(raw) || Number.isNaN(Date.parse(raw))) {
    throw new DicomwebError(
      'BadRequest',
      `The query parameter '${name}' is invalid: use an ISO 8601 date and time with a time zone, such as 2024-01-31T10:00:00Z.`,
    );
  }
  return new Date(raw);
}

function entryJson(item: ChangeFeedItem): string {
  const { entry } = item;
  const fields = {
    Sequence: entry.sequence,
    StudyInstanceUid: entry.key.studyInstanceUid,
    SeriesInstanceUid: entry.key.seriesInstanceUid,
    SopInstanceUid: entry.key.sopInstanceUid,
    Action: entry.action,
    Timestamp: entry.timestamp,
    State: item.state,
  };
  const head = JSON.stringify(fields).slice(0, -1);
  return item.metadata === undefined ? `${head}}` : `${head},"Metadata":${item.metadata}}`;
}

async function describe(
  request: Request,
  context: RequestContext,
  entries: Parameters<typeof describeChanges>[1],
  metadata: boolean,
) {
  const urls = resourceUrls(versionBaseUrl(new URL(request.url), context.apiVersion, context.config.publicBaseUrl));
  return describeChanges(context.storage, entries, metadata, (record) => urls.instance(record), metadataText);
}

const json = (body: string) => new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });

/**
 * `GET {base}/changefeed`. v1 pages by sequence: entries after `offset` (exclusive), `limit` 1-100
 * (default 10). v2 pages a time window [startTime, endTime) by `offset` (entries to skip) and
 * `limit` 1-200 (default 100). Entries come in sequence order, which is also time order.
 */
export const handleChangeFeed: Handler = async (request, context) => {
  const query = params(new URL(request.url));
  const metadata = includeMetadata(query);
  let entries;
  if (context.apiVersion === 'v1') {
    const offset = integer(query, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = integer(query, 'limit', 10, 1, 100);
    entries = await context.storage.changeFeed.after(offset, limit);
  } else {
    const start = time(query, 'startTime', new Date('0001-01-01T00:00:00Z'));
    const end = time(query, 'endTime', new Date('9999-12-31T23:59:59.999Z'));
    if (end <= start) throw new DicomwebError('BadRequest', 'The startTime must be strictly before the endTime.');
    const offset = integer(query, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = integer(query, 'limit', 100, 1, 200);
    entries = await context.storage.changeFeed.window(start, end, offset, limit);
  }
  const items = await describe(request, context, entries, metadata);
  return json(`[${items.map(entryJson).join(',')}]`);
};

/** `GET {base}/changefeed/latest`: the newest entry, or 204 when the feed is empty. */
export const handleChangeFeedLatest: Handler = async (request, context) => {
  const metadata = includeMetadata(params(new URL(request.url)));
  const latest = await context.storage.changeFeed.latest();
  if (!latest) return new Response(null, { status: 204 });
  const [item] = await describe(request, context, [latest], metadata);
  return json(item ? entryJson(item) : '{}');
};
