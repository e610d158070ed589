/**
 * Finds the DICOM files under the paths a user gives (files and folders, recursively), checking
 * each file's Part 10 prefix; anything else is reported as skipped with the reason.
 */
import { open, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { META_PROBE_BYTES, readFileMeta, type FileMeta } from './part10-meta.js';

export interface DicomFile {
  readonly kind: 'dicom';
  /** Absolute path. */
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly meta: FileMeta;
}

export interface SkippedFile {
  readonly kind: 'skipped';
  readonly path: string;
  readonly reason: string;
}

export type ScannedFile = DicomFile | SkippedFile;

async function head(path: string, size: number): Promise<Uint8Array> {
  const file = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(Math.min(size, META_PROBE_BYTES));
    const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

async function checkFile(path: string, size: number, mtimeMs: number): Promise<ScannedFile> {
  const check = readFileMeta(await head(path, size));
  return check.ok
    ? { kind: 'dicom', path, size, mtimeMs, meta: check.meta }
    : { kind: 'skipped', path, reason: check.reason };
}

const reasonOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Entries of a folder examined at once (stat and the Part 10 prefix) ahead of the one being
 * reported: one at a time, each file cost four file system round trips in sequence, and a folder
 * of thousands of files kept the first upload waiting for all of them.
 */
const PROBES_IN_FLIGHT = 16;

/** A path examined: a file's outcome, or a folder still to walk. */
type Probe =
  | { readonly kind: 'found'; readonly found: ScannedFile }
  | { readonly kind: 'folder'; readonly path: string; readonly id: string };

const found = (file: ScannedFile): Probe => ({ kind: 'found', found: file });

/** Never rejects: a path that cannot be read is a skipped file with the reason. */
async function probe(path: string): Promise<Probe> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    return found({ kind: 'skipped', path, reason: reasonOf(error) });
  }
  // A folder is known by device and inode, so that a symbolic link loop is walked once.
  if (info.isDirectory()) return { kind: 'folder', path, id: `${info.dev}:${info.ino}` };
  if (!info.isFile()) return found({ kind: 'skipped', path, reason: 'not a regular file' });
  try {
    return found(await checkFile(path, info.size, info.mtimeMs));
  } catch (error) {
    return found({ kind: 'skipped', path, reason: reasonOf(error) });
  }
}

/** Every file under `paths`, depth first in name order (a stable order, so runs can be compared). */
export async function* scanPaths(paths: readonly string[]): AsyncGenerator<ScannedFile> {
  // Folders already walked.
  const seen = new Set<string>();
  for (const given of paths) yield* walk(await probe(resolve(given)), seen);
}

async function* walk(probed: Probe, seen: Set<string>): AsyncGenerator<ScannedFile> {
  if (probed.kind === 'found') {
    yield probed.found;
    return;
  }
  if (seen.has(probed.id)) return;
  seen.add(probed.id);
  let names: string[];
  try {
    names = (await readdir(probed.path)).sort();
  } catch (error) {
    yield { kind: 'skipped', path: probed.path, reason: reasonOf(error) };
    return;
  }
  const ahead: Promise<Probe>[] = [];
  let next = 0;
  const fill = (): void => {
    while (next < names.length && ahead.length < PROBES_IN_FLIGHT) {
      ahead.push(probe(join(probed.path, names[next++] as string)));
    }
  };
  fill();
  for (let head = ahead.shift(); head !== undefined; head = ahead.shift()) {
    const entry = await head;
    fill();
    yield* walk(entry, seen);
  }
}
