/**
 * The independent judge of a stored blob: dicom-parser's full parse (no untilTag), which must
 * finish without an exception or a warning and account for every byte it points at: each
 * element's value, each item and each fragment of encapsulated pixel data must lie inside the
 * (inflated) file. dicom-parser is lenient in places; where the server rejects what it accepts,
 * the server is stricter, which is fine. What must never happen is a visible instance this rejects.
 */
import dicomParser, { type DataSet, type Element } from 'dicom-parser';
import { inflateRawSync } from 'node:zlib';

export type Verdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

function inflater(bytes: Uint8Array, position: number): Uint8Array {
  const inflated = inflateRawSync(bytes.subarray(position));
  const out = Buffer.alloc(position + inflated.length);
  out.set(bytes.subarray(0, position));
  out.set(inflated, position);
  return out;
}

/**
 * In implicit VR, dicom-parser peeks 4 bytes past every element header to guess whether it is a
 * sequence; when the last element's value is shorter than that, it warns though nothing is wrong
 * (the element's length is still checked below). Every other warning means it met the end of the
 * file inside something unclosed, or an unexpected tag, and patched over it.
 */
const PEEK_WARNING =
  'eof encountered before finding sequence item tag or sequence delimiter tag in peeking to determine VR';

export function parseFully(bytes: Uint8Array): Verdict {
  let dataSet: DataSet;
  try {
    dataSet = dicomParser.parseDicom(bytes, { inflater });
  } catch (thrown) {
    return { ok: false, reason: `parseDicom threw: ${describe(thrown)}` };
  }
  const warnings = dataSet.warnings.filter((warning) => warning !== PEEK_WARNING);
  if (warnings.length > 0) return { ok: false, reason: `parseDicom warned: ${warnings.join('; ')}` };
  const problem = overrun(dataSet, dataSet.byteArray.length, 0);
  return problem === undefined ? { ok: true } : { ok: false, reason: problem };
}

/** The first element, item or fragment that points past the end of the file, if any. */
function overrun(dataSet: DataSet, size: number, depth: number): string | undefined {
  for (const element of Object.values(dataSet.elements)) {
    const problem = elementOverrun(element, size, depth);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function elementOverrun(element: Element, size: number, depth: number): string | undefined {
  const at = `${element.tag} at ${element.dataOffset} (depth ${depth})`;
  if (!Number.isInteger(element.length) || element.length < 0) return `${at}: length ${element.length}`;
  if (element.dataOffset + element.length > size) {
    return `${at}: value of ${element.length} bytes runs past the end (${size})`;
  }
  for (const item of element.items ?? []) {
    if (item.dataOffset + item.length > size) return `${at}: an item at ${item.dataOffset} runs past the end`;
    if (item.dataSet) {
      const problem = overrun(item.dataSet, size, depth + 1);
      if (problem !== undefined) return problem;
    }
  }
  if (element.encapsulatedPixelData) {
    for (const fragment of element.fragments ?? []) {
      if (fragment.position + fragment.length > size) {
        return `${at}: fragment at ${fragment.position} (${fragment.length} bytes) runs past the end`;
      }
    }
    const last = element.fragments?.[element.fragments.length - 1];
    const fragmentsEnd = last ? last.position + last.length : element.dataOffset;
    // The value ends with the sequence delimiter after the last fragment.
    if (element.dataOffset + element.length < fragmentsEnd + 8) return `${at}: the fragments are not closed`;
  }
  return undefined;
}

export function describe(thrown: unknown): string {
  if (typeof thrown === 'string') return thrown;
  if (thrown instanceof Error) return thrown.message;
  if (typeof thrown === 'object' && thrown !== null && 'exception' in thrown) return describe(thrown.exception);
  return String(thrown);
}
