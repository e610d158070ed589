/** The CLI's exit codes (docs/client.md), so scripts can tell what happened. */
export const ExitCode = {
  /** Everything asked for was done. */
  ok: 0,
  /** The command ran but not everything succeeded: instances failed, nothing matched, a download was short. */
  partial: 1,
  /** The command line was wrong. */
  usage: 2,
  /** The server could not be reached, refused the credentials (401, 403) or kept failing (5xx after retries). */
  server: 3,
  /** Stopped by Ctrl-C or SIGTERM; an upload resumes when run again. */
  interrupted: 130,
} as const;

/** Thrown by a command to end with a code after it has printed what happened. */
export class CliExit extends Error {
  constructor(
    readonly code: number,
    message = '',
  ) {
    super(message);
  }
}
