/**
 * How busy the rest of the machine was during a workload, from /proc (Linux only): the share of
 * all CPU time that went neither to the bench nor to its children (Azurite, the server). On a
 * shared 2-core machine a compile or test run elsewhere distorts every figure, so it is recorded.
 */
import { readdirSync, readFileSync } from 'node:fs';

interface CpuTicks {
  /** All CPU ticks of the machine, idle included. */
  readonly total: number;
  readonly busy: number;
  /** The bench, its live descendants, and the children it has already reaped. */
  readonly ours: number;
}

function statFields(pid: number | string): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces: fields start after its closing parenthesis.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** utime + stime (+ reaped children's cutime + cstime): fields 14–17 of /proc/<pid>/stat. */
function processTicks(fields: readonly string[]): number {
  return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
}

function sample(): CpuTicks | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.split(/\s+/).slice(1).map(Number) ?? [];
    const total = cpu.reduce((sum, n) => sum + n, 0);
    const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0); // idle + iowait
    const parents = new Map<number, number>();
    const ticks = new Map<number, number>();
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const fields = statFields(entry);
      if (!fields) continue;
      parents.set(Number(entry), Number(fields[1]));
      ticks.set(Number(entry), processTicks(fields));
    }
    const isOurs = (pid: number): boolean => {
      for (let p: number | undefined = pid; p !== undefined && p > 1; p = parents.get(p)) {
        if (p === process.pid) return true;
      }
      return false;
    };
    let ours = 0;
    for (const [pid, count] of ticks) if (isOurs(pid)) ours += count;
    return { total, busy: total - idle, ours };
  } catch {
    return undefined;
  }
}

/** Starts a measurement; the returned function gives the others' share of the machine, 0–1. */
export function watchOtherLoad(): () => number | undefined {
  const start = sample();
  return () => {
    const end = sample();
    if (!start || !end || end.total <= start.total) return undefined;
    const others = end.busy - start.busy - (end.ours - start.ours);
    return Math.max(0, others) / (end.total - start.total);
  };
}
