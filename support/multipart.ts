/** Builds multipart/related bodies the way real STOW clients do. */
export interface PartSpec {
  readonly body: Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
}

export function multipartBody(
  parts: readonly PartSpec[],
  boundary: string,
  options: { preamble?: string } = {},
): Buffer {
  const chunks: Buffer[] = [];
  if (options.preamble !== undefined) chunks.push(Buffer.from(options.preamble, 'latin1'));
  for (const [i, part] of parts.entries()) {
    const headers = Object.entries(part.headers ?? { 'Content-Type': 'application/dicom' })
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    chunks.push(
      Buffer.from(
        `${i === 0 && options.preamble === undefined ? '' : '\r\n'}--${boundary}\r\n${headers}\r\n`,
        'latin1',
      ),
    );
    chunks.push(Buffer.from(part.body));
  }
  chunks.push(Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'));
  return Buffer.concat(chunks);
}

export function dicomParts(files: readonly Uint8Array[]): PartSpec[] {
  return files.map((body) => ({ body, headers: { 'Content-Type': 'application/dicom' } }));
}

/**
 * A STOW request of `files` as one multipart/related body (the form dicomweb-client sends), asking
 * for a DICOM JSON answer: the init for `fetch` or `Request`.
 */
export function stowRequestInit(files: readonly Uint8Array[], boundary = 'stow'): RequestInit {
  return {
    method: 'POST',
    headers: {
      'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      accept: 'application/dicom+json',
    },
    body: multipartBody(dicomParts(files), boundary) as Uint8Array<ArrayBuffer>,
  };
}
