// Benchmark helper: CPU time used by processes, to say where the cycles went during a
// run (load generator vs upstream vs gateway). Children are read from /proc (Linux);
// elsewhere their figures are unavailable and reported as NaN.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU seconds used so far by `pid` (NaN if unknown). */
export function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  if (pid === process.pid) {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1e6;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  } catch {
    return Number.NaN;
  }
}

/**
 * User + system CPU seconds used so far by one thread of `pid` (NaN if unknown): `tid`
 * equal to `pid` is the process's main thread (a Node gateway's relaying thread).
 */
export function threadCpuSeconds(pid: number | undefined, tid = pid): number {
  const { user, system } = threadCpuTimes(pid, tid);
  return user + system;
}

/** User and system CPU seconds of one thread, apart (NaN if unknown). */
export function threadCpuTimes(pid: number | undefined, tid = pid): { user: number; system: number } {
  if (pid === undefined) return { user: Number.NaN, system: Number.NaN };
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / ticksPerSecond(), system: Number(fields[12]) / ticksPerSecond() };
  } catch {
    return { user: Number.NaN, system: Number.NaN };
  }
}

/** Busy CPU seconds of the whole machine so far, all cores (NaN if unknown). */
export function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    // cpu  user nice system idle iowait irq softirq steal guest guest_nice
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / ticksPerSecond();
  } catch {
    return Number.NaN;
  }
}

export interface CpuSnapshot {
  readonly at: bigint;
  readonly seconds: Record<string, number>;
}

export function snapshot(pids: Record<string, number | undefined>): CpuSnapshot {
  const seconds: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) seconds[name] = processCpuSeconds(pid);
  seconds['machine'] = machineBusySeconds();
  return { at: process.hrtime.bigint(), seconds };
}

/**
 * CPU seconds used per process between two snapshots, and the wall seconds between
 * them. `machine` is every core's busy time; `other` is what processes outside the
 * bench used (machine minus ours): a noisy neighbour shows up there.
 */
export function delta(from: CpuSnapshot, to: CpuSnapshot): { wall: number; cpu: Record<string, number> } {
  const cpu: Record<string, number> = {};
  for (const name of Object.keys(from.seconds)) cpu[name] = (to.seconds[name] ?? Number.NaN) - (from.seconds[name] ?? Number.NaN);
  let ours = 0;
  for (const name of Object.keys(cpu)) if (name !== 'machine') ours += cpu[name]!;
  cpu['other'] = Math.max(0, cpu['machine']! - ours);
  return { wall: Number(to.at - from.at) / 1e9, cpu };
}
