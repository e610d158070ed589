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

/** The process a descendant of the bench plays, from its command line. */
export type CpuRole = 'bench' | 'reaped' | 'azurite' | 'server' | 'other';

function roleOf(pid: number): CpuRole {
  try {
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (command.includes('azurite')) return 'azurite';
    if (command.includes('bench-server') || command.includes('bench/server') || command.includes('PASS_'))
      return 'server';
    return 'other';
  } catch {
    return 'other';
  }
}

function ticksByRole(): Map<CpuRole, number> | undefined {
  try {
    const parents = new Map<number, number>();
    const fieldsOf = new Map<number, string[]>();
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const fields = statFields(entry);
      if (!fields) continue;
      parents.set(Number(entry), Number(fields[1]));
      fieldsOf.set(Number(entry), fields);
    }
    const byRole = new Map<CpuRole, number>();
    const add = (role: CpuRole, ticks: number): void => {
      byRole.set(role, (byRole.get(role) ?? 0) + ticks);
    };
    for (const [pid, fields] of fieldsOf) {
      if (pid === process.pid) {
        add('bench', Number(fields[11]) + Number(fields[12]));
        add('reaped', Number(fields[13]) + Number(fields[14]));
        continue;
      }
      for (let p = parents.get(pid); p !== undefined && p > 1; p = parents.get(p)) {
        if (p !== process.pid) continue;
        add(roleOf(pid), Number(fields[11]) + Number(fields[12]));
        break;
      }
    }
    return byRole;
  } catch {
    return undefined;
  }
}

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/**
 * Starts counting the CPU the bench's processes use, by role; the returned function gives the CPU
 * milliseconds each role used since. A child that exited in between counts as `reaped` (the bench
 * waited for it); one still running counts under its role. Processes must be sampled while alive.
 */
export function watchCpuByRole(): () => Map<CpuRole, number> {
  const start = ticksByRole();
  return () => {
    const end = ticksByRole();
    const used = new Map<CpuRole, number>();
    if (!start || !end) return used;
    for (const [role, ticks] of end) {
      const ms = ((ticks - (start.get(role) ?? 0)) * 1000) / TICKS_PER_SECOND;
      if (ms > 0) used.set(role, ms);
    }
    return used;
  };
}
