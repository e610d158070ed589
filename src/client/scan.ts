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

/** Every file under `paths`, depth first in name order (a stable order, so runs can be compared). */
export async function* scanPaths(paths: readonly string[]): AsyncGenerator<ScannedFile> {
  // Folders already walked (by device and inode), so a symbolic link loop is walked once.
  const seen = new Set<string>();
  for (const given of paths) yield* scanPath(resolve(given), seen);
}

async function* scanPath(path: string, seen: Set<string>): AsyncGenerator<ScannedFile> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    yield { kind: 'skipped', path, reason: reasonOf(error) };
    return;
  }
  if (info.isDirectory()) {
    const id = `${info.dev}:${info.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    let names: string[];
    try {
      names = (await readdir(path)).sort();
    } catch (error) {
      yield { kind: 'skipped', path, reason: reasonOf(error) };
      return;
    }
    for (const name of names) yield* scanPath(join(path, name), seen);
    return;
  }
  if (!info.isFile()) {
    yield { kind: 'skipped', path, reason: 'not a regular file' };
    return;
  }
  try {
    yield await checkFile(path, info.size, info.mtimeMs);
  } catch (error) {
    yield { kind: 'skipped', path, reason: reasonOf(error) };
  }
}
