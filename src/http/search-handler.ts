import { DicomwebError } from '../dicomweb/errors.js';
import { parseSearchQuery } from '../dicomweb/search/query.js';
import { search } from '../dicomweb/search/search.js';
import type { Level } from '../dicomweb/search/searchable.js';
import type { Handler } from './context.js';
import { pathUid } from './path-params.js';
import { acceptsDicomJson, requestAccept } from './media-type.js';
import { dicomJsonResponse } from './responses.js';
import { searchResponseBody } from './search-response.js';
import { resourceUrls, versionBaseUrl } from './urls.js';

/** `GET {base}/studies`, `/series`, `/instances` and their study- and series-scoped forms (QIDO-RS). */
export function searchHandler(level: Level): Handler {
  return async (request, context) => {
    const studyInstanceUid = pathUid(context, 'study');
    const seriesInstanceUid = pathUid(context, 'series');
    if (!acceptsDicomJson(requestAccept(request))) {
      throw new DicomwebError(
        'NotAcceptable',
        'QIDO-RS responds with application/dicom+json; the Accept header excludes it.',
      );
    }
    const url = new URL(request.url);
    const query = parseSearchQuery(url.searchParams, { level, studyInstanceUid, seriesInstanceUid });
    const result = await search(context.storage.index, query);
    if (result.matches.length === 0 && context.config.emptySearchStatus === 204)
      return new Response(null, { status: 204 });
    const urls = resourceUrls(versionBaseUrl(url, context.apiVersion, context.config.publicBaseUrl));
    const headers: Record<string, string> = {};
    if (result.truncated) {
      headers['warning'] =
        `299 ${url.host} "There are more results than the limit of ${query.limit}; request them with offset=${query.offset + query.limit}."`;
    }
    return dicomJsonResponse(200, searchResponseBody(result.matches, query, urls), headers);
  };
}
