// The rootless runtime: the netns runtime's topology (a bridge namespace, one namespace
// per host, veth pairs) built inside one user namespace that an unprivileged user owns.
//
// Each lab has a holder: `unshare --user --map-root-user --net --mount` running
// `sleep infinity` in a mount namespace of its own, with a tmpfs on /run so that
// `ip netns add` can bind its namespaces under /run/netns. Every command of the lab enters
// the holder with `nsenter -t HOLDER -U -m -n --preserve-credentials` (the user is root
// inside, with every capability over the lab's namespaces and none over the machine's).
// Nothing is written outside the run folder and nothing outlives the holder's namespaces.
//
// Labels: the holder and every process started in the lab carry TCPLAB_ROOTLESS=<run id>
// in their environment, and the holder TCPLAB_ROOTLESS_HOLDER=1 besides, so `lab status`
// and `lab down` find a lab from /proc alone, even after the CLI was SIGKILLed. Killing
// every process of the user namespace (marked or not) and then the holder removes it all:
// the namespaces' only references are the holder's mounts and those processes.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { execa } from 'execa';
import type { NsWrap } from '../../sysctl/apply.js';
import { CleanupError } from '../../core/errors.js';
import { NAME_RE } from '../../core/fields.js';
import { Namespaces } from './netns.js';
import { assertNewLab, makeLab, runsNoImage, RuntimeUnavailable, type Lab, type LabSpec, type LabSummary, type Runtime } from './runtime.js';

const MARK = 'TCPLAB_ROOTLESS';
const HOLDER_MARK = 'TCPLAB_ROOTLESS_HOLDER';
const UNSHARE = ['unshare', '--user', '--map-root-user', '--net', '--mount', '--propagation', 'private'];
// $$ is the shell's pid, which `exec` hands to sleep: the holder the lab enters.
const HOLDER_SCRIPT = 'mount -t tmpfs -o mode=0755 tcplab-rootless /run && mkdir /run/netns && echo "ready $$" && exec sleep infinity';

interface Proc {
  pid: number;
  uid: number;
  gid: number;
  ppid: number;
  zombie: boolean;
  userNs: string | null;
  env: Map<string, string>;
  argv0: string;
}

/** What /proc says of one process, or null when it is gone or unreadable (another user's). */
function proc(pid: number): Proc | null {
  try {
    const env = new Map<string, string>();
    for (const kv of readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0')) {
      const i = kv.indexOf('=');
      if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
    }
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(status)?.[1] ?? '';
    let userNs: string | null = null;
    try {
      userNs = readlinkSync(`/proc/${pid}/ns/user`);
    } catch {
      // A zombie has no namespaces left.
    }
    return {
      pid,
      uid: Number(field('Uid')),
      gid: Number(field('Gid')),
      ppid: Number(field('PPid')),
      zombie: field('State') === 'Z',
      userNs,
      env,
      argv0: readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')[0] ?? '',
    };
  } catch {
    return null;
  }
}

function allProcs(): Proc[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => proc(Number(d)))
    .filter((p): p is Proc => p !== null);
}

/** Alive and not a zombie (a zombie is dead, only not yet reaped by its parent). */
function running(pid: number): boolean {
  const p = proc(pid);
  return p !== null && !p.zombie;
}

interface Found {
  runId: string;
  /** The sleep the lab enters; null when it is gone and only stray processes are left. */
  holder: Proc | null;
  /** Every other process of the lab: marked ones and anything in the holder's user namespace. */
  members: Proc[];
}

/** The rootless labs on this machine (one run id, or all), from /proc. */
function findLabs(runId?: string): Found[] {
  const procs = allProcs();
  const labs = new Map<string, Found>();
  for (const p of procs) {
    const id = p.env.get(MARK);
    if (!id || !NAME_RE.test(id) || (runId !== undefined && id !== runId)) continue;
    const lab = labs.get(id) ?? { runId: id, holder: null, members: [] };
    labs.set(id, lab);
    if (p.env.get(HOLDER_MARK) === '1' && p.argv0 !== 'unshare' && !p.zombie && p.userNs !== null) lab.holder = p;
    else lab.members.push(p);
  }
  for (const lab of labs.values()) {
    const ns = lab.holder?.userNs;
    if (!ns) continue;
    for (const p of procs) if (p.userNs === ns && p.pid !== lab.holder!.pid && !lab.members.some((m) => m.pid === p.pid)) lab.members.push(p);
  }
  return [...labs.values()];
}

/** How this process enters a holder: as its owner (root must drop to the owner first, since uid 0 is not mapped there). */
function wrapFor(runId: string, holder: Proc): NsWrap {
  const enter = ['nsenter', '-t', String(holder.pid), '-U', '-m', '-n', '--preserve-credentials', '--'];
  const asOwner =
    process.getuid?.() === holder.uid ? [] : ['setpriv', '--reuid', String(holder.uid), '--regid', String(holder.gid), '--clear-groups', '--'];
  return { prefix: [...asOwner, ...enter], env: { [MARK]: runId, PATH: withSbin(process.env['PATH']) } };
}

/**
 * A user's PATH often lacks the sbin folders (Debian's login PATH for a user does), where
 * sysctl, nft and hping3 live; inside the lab's namespaces the user is root and runs them.
 */
export function withSbin(path: string | undefined): string {
  const dirs = (path ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter(Boolean);
  for (const d of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!dirs.includes(d)) dirs.push(d);
  return dirs.join(':');
}

async function signalAll(pids: number[], signal: NodeJS.Signals): Promise<void> {
  for (const p of pids) {
    try {
      process.kill(p, signal);
    } catch {
      // Gone already.
    }
  }
}

async function waitGone(pids: number[], ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (pids.some(running)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}

export class RootlessRuntime implements Runtime {
  readonly name = 'rootless' as const;
  readonly removes = 'namespace(s) (rootless)';
  readonly sameKernel = false;
  readonly hostBuild = true;
  /** Holders this process started (for lost()). */
  private readonly started = new Map<string, number>();

  async check(): Promise<void> {
    for (const [tool, pkg] of [
      ['unshare', 'util-linux'],
      ['nsenter', 'util-linux'],
      ['ip', 'iproute2'],
    ] as const) {
      const r = await execa(tool, ['-V'], { reject: false, cwd: '/' });
      if (r.exitCode !== 0) throw new RuntimeUnavailable(`the rootless runtime needs \`${tool}\`: apt-get install -y ${pkg}`);
    }
    const r = await execa(UNSHARE[0]!, [...UNSHARE.slice(1), 'true'], { reject: false, cwd: '/' });
    if (r.exitCode !== 0) {
      const why = String(r.stderr).trim().split('\n').pop() || `exit ${r.exitCode}`;
      throw new RuntimeUnavailable(
        `the rootless runtime needs unprivileged user namespaces, and \`unshare --user --map-root-user --net --mount true\` failed here (${why}): check kernel.unprivileged_userns_clone and user.max_user_namespaces, or run as root`,
      );
    }
  }

  /** Starts the holder of a lab; resolves with its pid once /run/netns exists inside. */
  private startHolder(runId: string): Promise<number> {
    const child = spawn(UNSHARE[0]!, [...UNSHARE.slice(1), '--fork', '--kill-child', '--', 'sh', '-ec', HOLDER_SCRIPT, 'tcplab-rootless', runId], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, [MARK]: runId, [HOLDER_MARK]: '1' },
    });
    return new Promise<number>((resolve, reject) => {
      let out = '';
      let err = '';
      const timer = setTimeout(() => fail('no answer in 10 s'), 10_000);
      const done = () => {
        clearTimeout(timer);
        child.stdout.removeAllListeners('data');
        child.stdout.destroy();
        child.stderr.destroy();
        child.unref();
      };
      const fail = (why: string) => {
        done();
        try {
          child.kill('SIGKILL');
        } catch {
          // Gone already.
        }
        reject(new RuntimeUnavailable(`the rootless runtime could not start its user namespace: ${why}`));
      };
      child.stdout.on('data', (b: Buffer) => {
        out += String(b);
        const m = /^ready (\d+)$/m.exec(out);
        if (m) {
          done();
          resolve(Number(m[1]));
        }
      });
      child.stderr.on('data', (b: Buffer) => (err += String(b)));
      child.on('error', (e) => fail(e.message));
      child.on('exit', (code) => fail(err.trim().split('\n').pop() || `exit ${code}`));
    });
  }

  async create(spec: LabSpec): Promise<Lab> {
    assertNewLab(spec, findLabs(spec.runId).length > 0);
    try {
      const pid = await this.startHolder(spec.runId);
      this.started.set(spec.runId, pid);
      const holder = proc(pid);
      if (!holder) throw new RuntimeUnavailable(`the rootless runtime's holder (pid ${pid}) went away at once`);
      const hosts = await new Namespaces(wrapFor(spec.runId, holder)).build(spec);
      return makeLab(spec.runId, hosts, (id) => this.destroy(id));
    } catch (err) {
      await this.destroy(spec.runId);
      throw err;
    }
  }

  async versions(): Promise<Record<string, string>> {
    const r = await execa('unshare', ['-V'], { reject: false });
    return { 'rootless (user namespace)': `${String(r.stdout).trim()}, uid ${process.getuid?.()} mapped to root inside` };
  }

  /** The holder carries every namespace of its lab: if it died under a point, the lab went with it. */
  async lost(): Promise<{ reason: string; fix: string } | null> {
    for (const [runId, pid] of this.started) {
      if (!running(pid))
        return {
          reason: `the rootless lab ${runId} lost its holder process (pid ${pid}), and its namespaces with it`,
          fix: `\`lab down ${runId}\`, then run again`,
        };
    }
    return null;
  }

  readonly imagesMissing = runsNoImage('rootless');

  async list(): Promise<LabSummary[]> {
    const out: LabSummary[] = [];
    for (const lab of findLabs()) {
      const summary = lab.holder
        ? (await new Namespaces(wrapFor(lab.runId, lab.holder)).summaries('rootless')).find((s) => s.runId === lab.runId)
        : undefined;
      const hosts = summary?.hosts ?? [];
      // Processes of the lab that no host namespace claims (e.g. its holder is gone).
      const inHosts = new Set(hosts.flatMap((h) => h.pids));
      const stray = lab.members.filter((m) => !m.zombie && m.argv0 !== 'unshare' && !inHosts.has(m.pid)).map((m) => m.pid);
      if (!lab.holder && !stray.length) continue;
      out.push({ runId: lab.runId, runtime: 'rootless', hosts: stray.length && !lab.holder ? [...hosts, { name: '(stray)', pids: stray }] : hosts });
    }
    return out;
  }

  /** Kills the lab's processes, then its holder; the namespaces go with them. Returns how many namespaces went. */
  async destroy(runId?: string): Promise<number> {
    let removed = 0;
    const left: string[] = [];
    for (const lab of findLabs(runId)) {
      let nsCount = 0;
      if (lab.holder) {
        try {
          nsCount = (await new Namespaces(wrapFor(lab.runId, lab.holder)).list()).length;
        } catch {
          // Counted as none; it goes all the same.
        }
      }
      const members = lab.members.filter((m) => !m.zombie && m.argv0 !== 'unshare').map((m) => m.pid);
      await signalAll(members, 'SIGTERM');
      if (!(await waitGone(members, 2000))) await signalAll(members.filter(running), 'SIGKILL');
      await waitGone(members, 2000);
      // The holder last; unshare then exits (--kill-child covers the other order).
      const rest = [lab.holder?.pid, ...lab.members.filter((m) => m.argv0 === 'unshare').map((m) => m.pid)].filter(
        (p): p is number => p !== undefined,
      );
      await signalAll(rest, 'SIGKILL');
      if (!(await waitGone(rest, 3000))) {
        left.push(`rootless lab ${lab.runId} (its holder, pid ${rest.join(', ')}, did not exit)`);
        continue;
      }
      this.started.delete(lab.runId);
      if (!nsCount) nsCount = 1; // its user namespace, at least
      removed += nsCount;
    }
    if (left.length) throw new CleanupError(removed, left);
    return removed;
  }
}
