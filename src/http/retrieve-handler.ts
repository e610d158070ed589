import { createHash } from 'node:crypto';
import { findInstances } from '../dicomweb/retrieve.js';
import { DicomwebError } from '../dicomweb/errors.js';
import { withInstanceUrl } from '../dicomweb/instance-sidecar.js';
import {
  METADATA_BASE,
  readMetadataDocument,
  saveMetadataDocument,
  withVersionBase,
  type MetadataDocument,
} from '../dicomweb/metadata-document.js';
import { metadataOf } from '../dicomweb/series-metadata.js';
import type { InstanceKey, InstanceRecord } from '../storage/ports.js';
import type { Handler } from './context.js';
import { deliveryRules, instanceBytes } from './instance-bytes.js';
import { acceptsDicomJson, requestAccept } from './media-type.js';
import { multipartBody, newBoundary, streamOf, type OutgoingPart } from './multipart-writer.js';
import { retrieveTarget } from './path-params.js';
import { prefetch } from '../util/prefetch.js';
import { negotiateInstances } from './retrieve-negotiation.js';
import { resourceUrls, versionBaseUrl } from './urls.js';
import { compareText } from '../util/compare.js';

/** `GET {base}/studies/{study}[/series/{series}[/instances/{instance}]]` (WADO-RS, PS3.18 §10.4). */
export const handleRetrieve: Handler = async (request, context) => {
  const target = retrieveTarget(context);
  const instances = await findInstances(context.storage, target);
  const single = target.sopInstanceUid !== undefined;
  const rules = deliveryRules(instances);
  const choice = negotiateInstances(
    requestAccept(request),
    instances.map((instance) => instance.transferSyntaxUid),
    single,
    rules.deliverable,
    rules.refusal,
  );
  const signal = request.signal;
  const failures = { log: context.log, signal };
  // The Azure service's header for the versions as first stored, before any bulk update.
  const original = request.headers.get('msdicom-request-original')?.trim().toLowerCase() === 'true';
  if (!choice.multipart) {
    const [instance] = instances as [InstanceRecord];
    const bytes = instanceBytes(context.storage, instance, choice.transferSyntax, signal, original);
    const headers: Record<string, string> = {
      'content-type': `application/dicom; transfer-syntax=${bytes.transferSyntax}`,
    };
    if (bytes.length !== undefined) headers['content-length'] = String(bytes.length);
    return new Response(streamOf(toGenerator(bytes.body), failures), { status: 200, headers });
  }
  const storage = context.storage;
  const open = (instance: InstanceRecord) => {
    const bytes = instanceBytes(storage, instance, choice.transferSyntax, signal, original);
    return { ...bytes, body: prefetch(bytes.body) };
  };
  // One instance ahead: its download starts while the one before it is being sent, so the
  // blob round trip between instances does not stall the response.
  async function* parts(): AsyncGenerator<OutgoingPart> {
    await Promise.resolve();
    let next = instances[0] ? open(instances[0]) : undefined;
    try {
      for (let i = 0; next; i++) {
        const bytes = next;
        const following = instances[i + 1];
        next = following ? open(following) : undefined;
        yield {
          contentType: `application/dicom; transfer-syntax=${bytes.transferSyntax}`,
          body: bytes.body,
          length: bytes.length,
        };
      }
    } finally {
      await next?.body.close();
    }
  }
  const boundary = newBoundary();
  return new Response(multipartBody(parts(), boundary, failures), {
    status: 200,
    headers: { 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}` },
  });
};

async function* toGenerator(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield* source;
}

/** A strong validator over exactly which stored versions make up the response. */
function metadataEtag(versions: readonly string[]): string {
  const hash = createHash('sha256');
  for (const version of [...versions].sort(compareText)) hash.update(`${version}\n`);
  return `"${hash.digest('base64url').slice(0, 27)}"`;
}

function etagMatches(ifNoneMatch: string | null, etag: string): boolean {
  if (ifNoneMatch === null) return false;
  return ifNoneMatch.split(',').some((candidate) => {
    const value = candidate.trim().replace(/^W\//, '');
    return value === '*' || value === etag || `"${value}"` === etag;
  });
}

/** `GET .../metadata` at study, series or instance level (PS3.18 §10.4.1.1.2, Annex F). */
export const handleMetadata: Handler = async (request, context) => {
  if (!acceptsDicomJson(requestAccept(request))) {
    throw new DicomwebError('NotAcceptable', 'Metadata is available as application/dicom+json only.');
  }
  const target = retrieveTarget(context);
  const versionBase = versionBaseUrl(new URL(request.url), context.apiVersion, context.config.publicBaseUrl);
  const notModified = (etag: string): Response | undefined =>
    etagMatches(request.headers.get('if-none-match'), etag)
      ? new Response(null, { status: 304, headers: { etag } })
      : undefined;
  const headers = (etag: string) => ({
    'content-type': 'application/dicom+json',
    etag,
    'cache-control': 'private, no-cache',
  });
  // Study and series metadata: the document the last read built, while nothing has changed since.
  const level = target.sopInstanceUid === undefined;
  const cached = level
    ? await readMetadataDocument(context.storage, target.studyInstanceUid, target.seriesInstanceUid, request.signal)
    : undefined;
  if (cached?.current) {
    const { etag, body, cancel } = cached.current;
    const unchanged = notModified(etag);
    if (unchanged) {
      cancel();
      return unchanged;
    }
    const failures = { log: context.log, signal: request.signal };
    return new Response(streamOf(withVersionBase(body, versionBase), failures), {
      status: 200,
      headers: headers(etag),
    });
  }
  // No study row: nothing of the study is stored (its rows are written together), no query needed.
  if (cached && cached.revision === undefined) {
    throw new DicomwebError('NotFound', `The ${target.seriesInstanceUid ? 'series' : 'study'} was not found.`);
  }
  const instances = await findInstances(context.storage, target);
  // All metadata is read before the first byte goes out, so a failure is still a clean error status.
  const texts = await metadataOf(context.storage, instances);
  // Instances a concurrent delete removed meanwhile are left out, as a read after it would.
  const entries = instances.flatMap((instance, i) => {
    const json = texts[i];
    return json === undefined ? [] : [{ key: instance, version: instance.version, json }];
  });
  if (entries.length === 0) throw new DicomwebError('NotFound', 'It was deleted while it was being read.');
  const document = metadataDocument(entries);
  if (cached?.revision !== undefined && entries.length === instances.length) {
    await saveMetadataDocument(
      context.storage,
      target.studyInstanceUid,
      target.seriesInstanceUid,
      cached.revision,
      document,
      context.log,
    );
  }
  return (
    notModified(document.etag) ??
    new Response(
      document.body.replaceAll(METADATA_BASE, () => versionBase),
      { status: 200, headers: headers(document.etag) },
    )
  );
};

/** The response body with METADATA_BASE for the versioned base URL, as documents are saved. */
function metadataDocument(entries: readonly { key: InstanceKey; version: string; json: string }[]): MetadataDocument {
  const urls = resourceUrls(METADATA_BASE);
  return {
    body: `[${entries.map((entry) => withInstanceUrl(entry.json, urls.instance(entry.key))).join(',')}]`,
    etag: metadataEtag(entries.map((entry) => entry.version)),
    instances: entries.length,
  };
}
