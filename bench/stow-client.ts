/** The load generator's side of STOW-RS: real HTTP through node:http, bodies streamed from memory or disk. */
import { createReadStream } from 'node:fs';
import { request as httpRequest, type Agent, type IncomingMessage } from 'node:http';
import { text } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { bodySize, type StowRequest } from './workloads.js';

const REFERENCED_SOP_SEQUENCE = '00081199';
const FAILED_SOP_SEQUENCE = '00081198';
/** File reads in 1 MiB chunks (the raw uploader reads the same way). */
export const FILE_CHUNK = 1024 * 1024;

type DicomJson = Record<string, { vr: string; Value?: unknown[] } | undefined>;

/** POSTs one STOW request and fails unless every instance in it was stored. */
export async function stow(agent: Agent, url: string, request: StowRequest): Promise<void> {
  const req = httpRequest(url, {
    method: 'POST',
    agent,
    headers: {
      accept: 'application/dicom+json',
      'content-type': request.contentType,
      'content-length': String(bodySize(request.body)),
    },
  });
  const responded = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  const { body } = request;
  const sent =
    body.kind === 'buffer'
      ? new Promise<void>((resolve) => req.end(body.bytes, resolve))
      : pipeline(createReadStream(body.path, { highWaterMark: FILE_CHUNK }), req);
  const [response] = await Promise.all([responded, sent]);
  const answer = await text(response);
  checkStored(response.statusCode ?? 0, answer, request.instances);
}

function checkStored(status: number, answer: string, expected: number): void {
  let json: DicomJson | undefined;
  try {
    json = JSON.parse(answer) as DicomJson;
  } catch {
    json = undefined;
  }
  const stored = json?.[REFERENCED_SOP_SEQUENCE]?.Value?.length ?? 0;
  const failed = json?.[FAILED_SOP_SEQUENCE]?.Value?.length ?? 0;
  // 202 is fine as long as nothing failed: v2 also answers 202 for stored instances with warnings.
  if ((status !== 200 && status !== 202) || stored !== expected || failed > 0) {
    throw new Error(
      `STOW answered ${status} with ${stored}/${expected} stored and ${failed} failed: ${answer.slice(0, 500)}`,
    );
  }
}
