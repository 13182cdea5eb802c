// What /proc says of a process or thread: CPU times from stat, counts from status. Read by the
// control API (/stats), the lab's cpu-wrap and port-procs.
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux. */
const USER_HZ = 100;

export interface CpuTimes {
  userSec: number;
  systemSec: number;
}

/**
 * A process's own CPU time (utime, stime) and its reaped children's (cutime, cstime), from
 * /proc/<pid>/stat; null when it is gone. The command name (field 2) may hold spaces, so
 * fields are counted after its closing paren.
 */
export function procCpu(pid: number | 'self'): { own: CpuTimes; children: CpuTimes } | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const sec = (i: number) => Number(f[i]) / USER_HZ;
  return { own: { userSec: sec(11), systemSec: sec(12) }, children: { userSec: sec(13), systemSec: sec(14) } };
}

/** This process's live child processes (of any of its threads), from /proc/self/task/<tid>/children. */
export function childPids(): number[] {
  const pids: number[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      for (const p of readFileSync(`/proc/self/task/${tid}/children`, 'utf8').split(' ')) if (p.trim()) pids.push(Number(p));
    } catch {
      // the thread ended meanwhile
    }
  }
  return pids;
}

/** A process's proportional set size (its pages, a shared one split between those that share it), from smaps_rollup; null when it is gone. */
export function procPssKb(pid: number | 'self'): number | null {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export interface TaskStatus {
  threads: number;
  rssKb: number;
  voluntaryCtxSwitches: number;
  involuntaryCtxSwitches: number;
}

/** Fields of a /proc/…/status file (a process's, or a task's under /proc/self/task); null when it is gone. */
export function procStatus(path: string): TaskStatus | null {
  let st: string;
  try {
    st = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const n = (k: string) => Number(new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(st)?.[1] ?? NaN);
  return {
    threads: n('Threads'),
    rssKb: n('VmRSS'),
    voluntaryCtxSwitches: n('voluntary_ctxt_switches'),
    involuntaryCtxSwitches: n('nonvoluntary_ctxt_switches'),
  };
}

/** What /proc says of a set of processes, summed. */
export interface ProcessSum {
  /** Those still there. */
  processes: number;
  threads: number;
  /** Each process's RSS, summed: pages they share (a fork()ed child's, copy-on-write) counted in each. */
  rssKb: number;
  /** Their proportional set size (smaps_rollup): a shared page split between those that share it. */
  pssKb: number;
  /** Every thread's (/proc/<pid>/task/<tid>/status: a process's own status counts its main thread's only). */
  voluntaryCtxSwitches: number;
  involuntaryCtxSwitches: number;
  /** Their own CPU time, and for those in `reapedOf` their reaped children's too. */
  cpu: CpuTimes;
}

/** Sums /proc's figures over `pids` (one gone meanwhile is left out): the one reader of a server's processes. */
export function sumProcesses(pids: number[], reapedOf: number[] = []): ProcessSum {
  const sum: ProcessSum = {
    processes: 0,
    threads: 0,
    rssKb: 0,
    pssKb: 0,
    voluntaryCtxSwitches: 0,
    involuntaryCtxSwitches: 0,
    cpu: { userSec: 0, systemSec: 0 },
  };
  for (const pid of pids) {
    const st = procStatus(`/proc/${pid}/status`);
    const c = procCpu(pid);
    if (!st || !c) continue;
    sum.processes++;
    sum.threads += st.threads;
    sum.rssKb += st.rssKb;
    sum.pssKb += procPssKb(pid) ?? st.rssKb;
    // A reaped child's CPU is in its parent's cutime/cstime; a live one's in its own.
    const reaped = reapedOf.includes(pid);
    sum.cpu.userSec += c.own.userSec + (reaped ? c.children.userSec : 0);
    sum.cpu.systemSec += c.own.systemSec + (reaped ? c.children.systemSec : 0);
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone meanwhile
    }
    for (const tid of tids) {
      const t = procStatus(`/proc/${pid}/task/${tid}/status`);
      if (!t) continue;
      sum.voluntaryCtxSwitches += t.voluntaryCtxSwitches;
      sum.involuntaryCtxSwitches += t.involuntaryCtxSwitches;
    }
  }
  return sum;
}
