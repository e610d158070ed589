import type { InstanceKey } from '../storage/ports.js';

/** Absolute URLs of DICOMweb resources under one versioned base (e.g. https://host/v2). */
export interface ResourceUrls {
  study(studyInstanceUid: string): string;
  series(studyInstanceUid: string, seriesInstanceUid: string): string;
  instance(key: InstanceKey): string;
}

export function resourceUrls(versionBase: string): ResourceUrls {
  const base = versionBase.replace(/\/+$/, '');
  return {
    study: (study) => `${base}/studies/${study}`,
    series: (study, series) => `${base}/studies/${study}/series/${series}`,
    instance: (key) =>
      `${base}/studies/${key.studyInstanceUid}/series/${key.seriesInstanceUid}/instances/${key.sopInstanceUid}`,
  };
}

/**
 * The versioned base URL for links in responses: the configured public base URL when there is
 * one (behind a proxy or Front Door the request URL is not what clients use), else the request's
 * own origin as the host adapter reconstructed it.
 */
export function versionBaseUrl(requestUrl: URL, apiVersion: string, publicBaseUrl: string | undefined): string {
  const root = publicBaseUrl ? publicBaseUrl.replace(/\/+$/, '') : requestUrl.origin;
  return `${root}/${apiVersion}`;
}
