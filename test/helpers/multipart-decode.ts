/** Splits a multipart/related response into parts, as a client would (for assertions). */
export interface DecodedPart {
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

export function boundaryOf(contentType: string | null): string {
  const match = /boundary="?([^";]+)"?/.exec(contentType ?? '');
  if (!match?.[1]) throw new Error(`no boundary in ${contentType ?? 'null'}`);
  return match[1];
}

export function decodeMultipart(body: Buffer, boundary: string): DecodedPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: DecodedPart[] = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const after = at + delimiter.length;
    if (body.subarray(after, after + 2).toString() === '--') break;
    const headerEnd = body.indexOf('\r\n\r\n', after);
    const next = body.indexOf(Buffer.from(`\r\n--${boundary}`), headerEnd);
    const headers: Record<string, string> = {};
    for (const line of body
      .subarray(after + 2, headerEnd)
      .toString('latin1')
      .split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: body.subarray(headerEnd + 4, next) });
    at = next + 2;
  }
  return parts;
}

export async function fetchParts(url: string, accept: string) {
  const response = await fetch(url, { headers: { accept } });
  const body = Buffer.from(await response.arrayBuffer());
  const type = response.headers.get('content-type');
  return {
    status: response.status,
    type,
    text: body.toString('utf8'),
    parts: response.status === 200 && type?.startsWith('multipart/') ? decodeMultipart(body, boundaryOf(type)) : [],
    body,
  };
}
