import { DicomwebError } from '../dicomweb/errors.js';
import { retrieveRendered, retrieveThumbnail, type RenderRequest } from '../dicomweb/rendered.js';
import { parseFrameList } from '../dicomweb/retrieve.js';
import type { Handler, RequestContext } from './context.js';
import { requestAccept } from './media-type.js';
import { multipartBody, newBoundary } from './multipart-writer.js';
import { retrieveTarget } from './path-params.js';
import {
  DEFAULT_QUALITY,
  DEFAULT_THUMBNAIL_VIEWPORT,
  negotiateRendered,
  parseQuality,
  parseViewport,
  parseWindow,
  type RenderedChoice,
} from './rendered-params.js';

/** The frame a `frames/{frames}/rendered` or `/thumbnail` path names: exactly one. */
function pathFrame(context: RequestContext): number | undefined {
  const text = context.params['frames'];
  if (text === undefined) return undefined;
  const frames = parseFrameList(text);
  if (frames.length !== 1) {
    throw new DicomwebError('BadRequest', 'A rendered or thumbnail frame resource names one frame number.');
  }
  return frames[0];
}

function imageResponse(request: Request, context: RequestContext, choice: RenderedChoice, image: Uint8Array): Response {
  if (!choice.multipart) {
    // Our images live in plain ArrayBuffers (sharp and the cache blob read give Buffers).
    return new Response(image as Uint8Array<ArrayBuffer>, {
      status: 200,
      headers: { 'content-type': choice.mediaType, 'content-length': String(image.length) },
    });
  }
  async function* bytes() {
    await Promise.resolve();
    yield image;
  }
  async function* parts() {
    await Promise.resolve();
    yield { contentType: choice.mediaType, body: bytes(), length: image.length };
  }
  const boundary = newBoundary();
  return new Response(multipartBody(parts(), boundary, { log: context.log, signal: request.signal }), {
    status: 200,
    headers: { 'content-type': `multipart/related; type="${choice.mediaType}"; boundary=${boundary}` },
  });
}

/** Parses everything the request says before anything is read, so a bad request costs no storage. */
function renderRequest(request: Request, context: RequestContext, thumbnail: boolean) {
  const choice = negotiateRendered(requestAccept(request));
  const params = new URL(request.url).searchParams;
  const target = retrieveTarget(context);
  const frame = pathFrame(context);
  const rendering: RenderRequest = thumbnail
    ? {
        target,
        frame,
        encode: {
          mediaType: choice.mediaType,
          quality: DEFAULT_QUALITY,
          viewport: parseViewport(params, false) ?? DEFAULT_THUMBNAIL_VIEWPORT,
          // Kept and served many times: worth the second pass that makes it smaller.
          smallest: true,
        },
      }
    : {
        target,
        frame,
        encode: { mediaType: choice.mediaType, quality: parseQuality(params), viewport: parseViewport(params, true) },
        window: parseWindow(params),
      };
  const deps = {
    decodeFrame: context.decodeFrame,
    signal: request.signal,
    log: context.log,
    thumbnails: context.thumbnails,
  };
  return { choice, rendering, deps };
}

/** `GET …/rendered` of a study, series, instance or frame (PS3.18 §10.4.1.1.3). */
export const handleRendered: Handler = async (request, context) => {
  const { choice, rendering, deps } = renderRequest(request, context, false);
  return imageResponse(request, context, choice, await retrieveRendered(context.storage, rendering, deps));
};

/** `GET …/thumbnail` of a study, series, instance or frame (PS3.18, Supplement 203), cached per version. */
export const handleThumbnail: Handler = async (request, context) => {
  const { choice, rendering, deps } = renderRequest(request, context, true);
  return imageResponse(request, context, choice, await retrieveThumbnail(context.storage, rendering, deps));
};
