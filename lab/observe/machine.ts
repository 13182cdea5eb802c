// The CPU of the machine a host runs on, from its /proc/stat (not namespaced: every host on one
// machine reads the same), so a rule whose premise is "the server had CPU to spare" can tell
// when other work on the machine took it.
import type { Host } from '../runtime/runtime.js';

export interface CpuTimes {
  /** Jiffies (USER_HZ) of all CPUs together: every state, and idle + iowait. */
  total: number;
  idle: number;
  cpus: number;
}

/** The aggregate `cpu` line of /proc/stat and the number of `cpuN` lines (proc(5)). */
export function parseProcStat(text: string): CpuTimes | null {
  const line = /^cpu\s+(.+)$/m.exec(text);
  if (!line) return null;
  const f = line[1]!.trim().split(/\s+/).map(Number);
  if (f.length < 4 || f.some((n) => !Number.isFinite(n))) return null;
  // user nice system idle iowait irq softirq steal guest guest_nice: guest time is already in user.
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { total, idle: f[3]! + (f[4] ?? 0), cpus: (text.match(/^cpu\d+\s/gm) ?? []).length };
}

export async function cpuTimes(host: Host): Promise<CpuTimes | null> {
  const r = await host.exec(['cat', '/proc/stat'], { timeoutMs: 5_000 }).catch(() => null);
  return r && r.exitCode === 0 ? parseProcStat(r.stdout) : null;
}

/** The machine's idle CPU between two readings, in cores (0.5: half a core idle on average). */
export function idleCores(a: CpuTimes | null, b: CpuTimes | null): number | null {
  if (!a || !b || b.total <= a.total || !b.cpus) return null;
  return Math.round(((b.idle - a.idle) / (b.total - a.total)) * b.cpus * 100) / 100;
}
