/**
 * The record of an upload that lets an interrupted run resume: one JSON line per file the server
 * has answered for, appended as soon as its request is answered (so a killed run loses at most the
 * requests in flight, whose files are sent again and answered 45070 "already there"). A file is
 * skipped on resume when it was stored or already there and its size and mtime are unchanged.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import type { DicomFile, FileOutcome, InstanceStatus } from '../client/index.js';

export interface StateRecord {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly status: InstanceStatus;
  readonly sopInstanceUid?: string | undefined;
}

/** The default state file: in the working folder, named for the server and the paths given. */
export function defaultStatePath(baseUrl: string, paths: readonly string[]): string {
  const key = [baseUrl, ...paths.map((path) => resolve(path)).sort()].join('\n');
  return resolve(`.dicomweb-upload-${createHash('sha256').update(key).digest('hex').slice(0, 12)}.jsonl`);
}

/** A line that records the upload session a large file is being sent through. */
interface SessionRecord {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly session: string;
}

export class UploadState {
  constructor(readonly path: string) {}

  /** Records of files done by an earlier run, by path (a torn last line from a kill is ignored). */
  load(): Map<string, StateRecord> {
    const done = new Map<string, StateRecord>();
    if (!existsSync(this.path)) return done;
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      try {
        const record = JSON.parse(line) as StateRecord | SessionRecord;
        if ('session' in record) continue;
        if (record.status === 'stored' || record.status === 'already-stored') done.set(record.path, record);
        else done.delete(record.path);
      } catch {
        // The line a killed run was writing.
      }
    }
    return done;
  }

  /** Upload sessions an earlier run opened, by path: a resumed run sends only their missing blocks. */
  sessions(): Map<string, SessionRecord> {
    const open = new Map<string, SessionRecord>();
    if (!existsSync(this.path)) return open;
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      try {
        const record = JSON.parse(line) as StateRecord | SessionRecord;
        if ('session' in record) open.set(record.path, record);
        else open.delete(record.path); // answered since
      } catch {
        // A blank line, or the line a killed run was writing.
      }
    }
    return open;
  }

  appendSession(file: DicomFile, session: string): void {
    const record: SessionRecord = { path: file.path, size: file.size, mtimeMs: file.mtimeMs, session };
    appendFileSync(this.path, `${JSON.stringify(record)}\n`);
  }

  static isUnchanged<R extends { size: number; mtimeMs: number }>(record: R | undefined, file: DicomFile): record is R {
    return record !== undefined && record.size === file.size && record.mtimeMs === file.mtimeMs;
  }

  append(outcomes: readonly FileOutcome[]): void {
    const lines = outcomes.map((outcome) =>
      JSON.stringify({
        path: outcome.file.path,
        size: outcome.file.size,
        mtimeMs: outcome.file.mtimeMs,
        status: outcome.status,
        sopInstanceUid: outcome.sopInstanceUid,
      } satisfies StateRecord),
    );
    appendFileSync(this.path, `${lines.join('\n')}\n`);
  }

  remove(): void {
    rmSync(this.path, { force: true });
  }
}
