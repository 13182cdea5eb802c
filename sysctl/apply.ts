// Read, apply and verify sysctls inside one host's network namespace; snapshots and diffs.
// Never writes the machine's own (root namespace) sysctls: every write first checks
// that the target's namespace is not ours and not PID 1's.
import { existsSync, readlinkSync } from 'node:fs';
import { execa } from 'execa';
import { normalizeRead, SysctlError, TUNABLES, type SysctlSetting } from './registry.js';

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** 127: the program does not exist on the host; -1: killed (timeout or signal). */
  exitCode: number;
  timedOut?: boolean;
}

export interface ExecOptions {
  /** Kill the command after this long (SIGTERM, then SIGKILL 2 s later). */
  timeoutMs?: number;
}

/** Something that runs a command inside a host's network namespace. */
export interface SysctlTarget {
  /** For messages: "server", "loadgen-1", … */
  label: string;
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
}

/** How to reach the namespaces: nothing (the machine's own), or nsenter into a user namespace. */
export interface NsWrap {
  /** argv put before every `ip …` (e.g. nsenter -t PID -U -m -n --preserve-credentials --). */
  prefix: string[];
  /** Added to the environment of every process (marks a rootless lab's processes). */
  env: Record<string, string>;
}
export const NO_WRAP: NsWrap = { prefix: [], env: {} };

/** The [file, args] that runs argv through a wrap. */
export function wrapped(w: NsWrap, argv: string[]): [string, string[]] {
  const all = [...w.prefix, ...argv];
  return [all[0]!, all.slice(1)];
}

/**
 * A target for a named network namespace (`ip netns exec NAME …`); output is returned
 * as printed (no newline stripped). The netns and rootless runtimes' hosts run commands through it.
 */
export function netnsTarget(netns: string, label = netns, wrap: NsWrap = NO_WRAP): SysctlTarget {
  return {
    label,
    async exec(argv, opts = {}) {
      // `ip netns exec` (and nsenter, which forks only to enter a PID namespace) execs the
      // program itself, so a timeout's signal reaches it.
      const [file, args] = wrapped(wrap, ['ip', 'netns', 'exec', netns, ...argv]);
      const r = await execa(file, args, {
        env: wrap.env,
        reject: false,
        stripFinalNewline: false,
        maxBuffer: 256 * 1024 * 1024,
        ...(opts.timeoutMs ? { timeout: opts.timeoutMs, forceKillAfterDelay: 2000 } : {}),
      });
      const stderr = String(r.stderr);
      // ip reports a program it cannot find as `exec of "X" failed: No such file…` (exit 1
      // or 255 depending on the version); say 127 like a shell.
      const missing = r.exitCode !== 0 && /^exec of ".*" failed: No such file or directory/.test(stderr);
      return { stdout: String(r.stdout), stderr, exitCode: missing ? 127 : (r.exitCode ?? -1), timedOut: r.timedOut };
    },
  };
}

export async function assertNotRootNamespace(target: SysctlTarget): Promise<void> {
  const r = await target.exec(['readlink', '/proc/self/ns/net']);
  const theirs = r.stdout.trim();
  const ours = new Set([readlinkSync('/proc/self/ns/net')]);
  try {
    ours.add(readlinkSync('/proc/1/ns/net')); // the machine's initial namespace, where readable
  } catch {
    // In some sandboxes even root may not read PID 1's links; our own namespace still counts.
  }
  if (r.exitCode !== 0 || !theirs) throw new SysctlError(`${target.label}: cannot read its network namespace: ${r.stderr.trim()}`, 'EXEC');
  if (ours.has(theirs)) {
    throw new SysctlError(`${target.label}: refusing to write sysctls in the machine's own network namespace (${theirs})`, 'ROOT_NAMESPACE');
  }
}

/** The value as the kernel prints it, or null when the kernel has no such sysctl here. */
export async function readSysctl(target: SysctlTarget, name: string): Promise<string | null> {
  const r = await target.exec(['sysctl', '-n', name]);
  if (r.exitCode === 0) return normalizeRead(r.stdout);
  // The program missing is not the sysctl missing (nsenter says `failed to execute sysctl: No such file…`).
  if (r.exitCode === 127 || /failed to execute|exec of "sysctl"/.test(r.stderr))
    throw new SysctlError(`${target.label}: sysctl is not on the PATH there (apt-get install procps): ${r.stderr.trim()}`, 'EXEC');
  if (/cannot stat|No such file/.test(r.stderr)) return null;
  throw new SysctlError(`${target.label}: reading ${name} failed: ${r.stderr.trim()}`, 'EXEC');
}

export interface AppliedSysctl {
  name: string;
  requested: string;
  readBack: string;
}

/**
 * Throws UNSUPPORTED for a setting this kernel does not have. It looks at /proc/sys of the
 * machine (read only): a per-namespace tunable that exists here exists in every namespace.
 */
export function assertKernelHas(label: string, settings: Array<Pick<SysctlSetting, 'name'>>): void {
  for (const s of settings) {
    if (!existsSync(`/proc/sys/${s.name.replace(/\./g, '/')}`))
      throw new SysctlError(`${label}: ${s.name} does not exist on this kernel (unsupported)`, 'UNSUPPORTED');
  }
}

/**
 * Writes each setting, then reads it back. `sysctl -w` can exit 0 when the kernel kept
 * another value, so a read-back that differs is an error, not a warning.
 */
export async function applySettings(target: SysctlTarget, settings: SysctlSetting[]): Promise<AppliedSysctl[]> {
  if (!settings.length) return [];
  await assertNotRootNamespace(target);
  const out: AppliedSysctl[] = [];
  for (const s of settings) {
    const before = await readSysctl(target, s.name);
    if (before === null) throw new SysctlError(`${target.label}: ${s.name} does not exist on this kernel (unsupported)`, 'UNSUPPORTED');
    const w = await target.exec(['sysctl', '-q', '-w', `${s.name}=${s.value}`]);
    if (w.exitCode !== 0) {
      throw new SysctlError(`${target.label}: the kernel refused ${s.name}=${s.value}: ${w.stderr.trim().replace(/^sysctl: /, '')}`, 'MISMATCH');
    }
    out.push(...(await verifySettings(target, [s])));
  }
  return out;
}

/**
 * Reads each setting back and compares: the one check after any way of setting them
 * (written here with sysctl -w, or by a container engine at creation).
 */
export async function verifySettings(target: SysctlTarget, settings: SysctlSetting[]): Promise<AppliedSysctl[]> {
  const out: AppliedSysctl[] = [];
  for (const s of settings) {
    const readBack = (await readSysctl(target, s.name)) ?? '(absent)';
    if (readBack !== s.value) throw new SysctlError(`${target.label}: ${s.name} reads back "${readBack}" after setting "${s.value}"`, 'MISMATCH');
    out.push({ name: s.name, requested: s.value, readBack });
  }
  return out;
}

/** Every per-namespace tunable of the registry as the host sees it (null: unsupported). */
export type Snapshot = Record<string, string | null>;

export async function snapshot(target: SysctlTarget): Promise<Snapshot> {
  const names = TUNABLES.filter((t) => t.scope === 'netns').map((t) => t.name);
  // One exec for all: `sysctl -e` skips unknown keys; missing ones are then null.
  const r = await target.exec(['sysctl', '-e', ...names]);
  const seen = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+) = (.*)$/.exec(line);
    if (m) seen.set(m[1]!, normalizeRead(m[2]!));
  }
  return Object.fromEntries(names.map((n) => [n, seen.get(n) ?? null]));
}

export interface SysctlChange {
  name: string;
  before: string | null;
  after: string | null;
}

export function diffSnapshots(before: Snapshot, after: Snapshot): SysctlChange[] {
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...names]
    .filter((n) => (before[n] ?? null) !== (after[n] ?? null))
    .map((n) => ({ name: n, before: before[n] ?? null, after: after[n] ?? null }));
}

/** Entries with a fixed kernel default whose value differs from it. */
export function differsFromKernelDefault(s: Snapshot): SysctlChange[] {
  return TUNABLES.filter((t) => t.kernelDefault !== undefined && t.name in s && s[t.name] !== null && s[t.name] !== t.kernelDefault).map((t) => ({
    name: t.name,
    before: t.kernelDefault!,
    after: s[t.name]!,
  }));
}
