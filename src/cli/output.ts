/**
 * What the CLI prints besides results: a progress bar (cli-progress) on a terminal, plain lines
 * every few seconds otherwise (CI logs get no escape codes), and plain-text tables.
 */
import { SingleBar } from 'cli-progress';

export interface ProgressOptions {
  /** Shown after the counts: `instances`. */
  readonly unit: string;
  readonly enabled: boolean;
  readonly stream?: NodeJS.WriteStream;
  /** Seconds between plain progress lines when the stream is no terminal (default 5). */
  readonly lineIntervalSeconds?: number;
}

const MB = 1e6;

export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private bar: SingleBar | undefined;
  private total = 0;
  private done = 0;
  private failed = 0;
  private bytes = 0;
  private started = performance.now();
  private lastLine = 0;

  constructor(private readonly options: ProgressOptions) {
    this.stream = options.stream ?? process.stderr;
  }

  get rate(): number {
    const seconds = (performance.now() - this.started) / 1000;
    return seconds > 0 ? this.bytes / MB / seconds : 0;
  }

  start(total: number): void {
    this.total = total;
    this.started = performance.now();
    this.lastLine = this.started;
    if (!this.options.enabled) return;
    if (this.stream.isTTY) {
      this.bar = new SingleBar({
        stream: this.stream,
        format: ` {bar} {value}/{total} ${this.options.unit} | {rate} MB/s | {failed} failed | {eta_formatted} left`,
        hideCursor: true,
        etaBuffer: 50,
        barsize: 30,
      });
      this.bar.start(total, 0, { rate: '0.0', failed: 0 });
    }
  }

  addBytes(bytes: number): void {
    this.bytes += bytes;
    this.update();
  }

  addDone(count = 1, failed = false): void {
    this.done += count;
    if (failed) this.failed += count;
    this.update();
  }

  private update(): void {
    if (!this.options.enabled) return;
    if (this.bar) {
      this.bar.update(this.done, { rate: this.rate.toFixed(1), failed: this.failed });
      return;
    }
    const now = performance.now();
    if (now - this.lastLine >= (this.options.lineIntervalSeconds ?? 5) * 1000) {
      this.lastLine = now;
      this.line();
    }
  }

  private line(): void {
    this.stream.write(
      `${this.done}/${this.total} ${this.options.unit}, ${this.rate.toFixed(1)} MB/s, ${this.failed} failed\n`,
    );
  }

  /** A message that must not be drawn over by the bar. */
  log(message: string): void {
    if (this.bar) this.bar.stop();
    this.stream.write(`${message}\n`);
    if (this.bar) this.bar.start(this.total, this.done, { rate: this.rate.toFixed(1), failed: this.failed });
  }

  stop(): { seconds: number; megabytes: number } {
    const seconds = (performance.now() - this.started) / 1000;
    if (this.bar) {
      this.bar.update(this.done, { rate: this.rate.toFixed(1), failed: this.failed });
      this.bar.stop();
    } else if (this.options.enabled && this.total > 0) this.line();
    return { seconds, megabytes: this.bytes / MB };
  }
}

/** Columns separated by two spaces, left-aligned, numbers right-aligned; no box drawing. */
export function formatTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const numeric = headers.map((_, column) => rows.length > 0 && rows.every((row) => typeof row[column] === 'number'));
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => row[column]?.length ?? 0)));
  return cells
    .map((row) =>
      row
        .map((cell, column) =>
          numeric[column] ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0),
        )
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function megabytes(bytes: number): string {
  return (bytes / MB).toFixed(1);
}
