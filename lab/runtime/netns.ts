// The netns runtime: a lab is a bridge in a namespace of its own (nothing is added to
// the machine's root namespace) and one namespace per host, joined to the bridge by a
// veth pair created directly between the two namespaces. Names carry the run id
// (tcplab-lab.<runId>.<host>), so destroy() finds everything from names alone, even
// after the CLI was killed. Needs root or CAP_NET_ADMIN; the rootless runtime builds the
// same topology (the Namespaces class below) inside a user namespace.
import { spawn } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import {
  applySettings,
  netnsTarget,
  NO_WRAP,
  wrapped,
  type ExecOptions,
  type ExecResult,
  type NsWrap,
  type SysctlTarget,
} from '../../sysctl/apply.js';
import { REPO_ROOT } from '../../core/paths.js';
import { CleanupError } from '../../core/errors.js';
import { NAME_RE } from '../../core/fields.js';
import {
  assertNewLab,
  hostAddress,
  makeLab,
  runsNoImage,
  RuntimeUnavailable,
  type Host,
  type HostSpec,
  type Lab,
  type LabSpec,
  type LabSummary,
  type Proc,
  type Runtime,
} from './runtime.js';

export const PREFIX = 'tcplab-lab';
const BRIDGE_NS = '_net';

export function nsName(runId: string, host: string): string {
  return `${PREFIX}.${runId}.${host}`;
}

/**
 * The `ip netns` operations of a lab, through a wrap: none for the netns runtime (the
 * machine's namespaces), nsenter into the holder's user namespace for the rootless one.
 * No user text reaches a command line: names are checked against NAME_RE.
 */
export class Namespaces {
  constructor(readonly wrap: NsWrap = NO_WRAP) {}

  private run(argv: string[], input?: string) {
    const [file, args] = wrapped(this.wrap, argv);
    return execa(file, args, { reject: false, env: this.wrap.env, ...(input === undefined ? {} : { input }) });
  }

  async ip(argv: string[]): Promise<string> {
    const r = await this.run(['ip', ...argv]);
    if (r.exitCode !== 0) throw new Error(`ip ${argv.join(' ')}: ${String(r.stderr).trim()}`);
    return String(r.stdout);
  }

  /** Runs ip commands through one `ip -batch -`. */
  async batch(global: string[], lines: string[]): Promise<void> {
    const r = await this.run(['ip', ...global, '-batch', '-'], lines.join('\n') + '\n');
    if (r.exitCode !== 0) throw new Error(`ip ${[...global, '-batch'].join(' ')}: ${String(r.stderr).trim()}`);
  }

  /** The lab namespaces (tcplab-lab.*) this view sees. */
  async list(): Promise<string[]> {
    return (await this.ip(['netns', 'list']))
      .split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter((n) => n.startsWith(`${PREFIX}.`));
  }

  async pids(ns: string): Promise<number[]> {
    const r = await this.run(['ip', 'netns', 'pids', ns]);
    return String(r.stdout).split('\n').filter(Boolean).map(Number);
  }

  /** Deletes the namespaces through one `ip -force -batch`; what could not go, each with ip's reason. */
  private async delAll(names: string[]): Promise<string[]> {
    const r = await this.run(['ip', '-force', '-batch', '-'], names.map((ns) => `netns del ${ns}`).join('\n') + '\n');
    if (r.exitCode === 0) return [];
    const lines = String(r.stderr).split('\n');
    const left: string[] = [];
    lines.forEach((l, i) => {
      const m = /^Command failed -:(\d+)$/.exec(l.trim());
      const why = (lines[i - 1] ?? '').trim();
      if (m && !/No such file/.test(why)) {
        const ns = names[Number(m[1]) - 1]!;
        left.push(`namespace ${ns} (ip netns del ${ns}: ${why})`);
      }
    });
    return left;
  }

  /**
   * The topology: a bridge in a namespace of its own and one namespace per host, joined by
   * veth pairs made directly between the two; then each host's sysctls, applied and read back.
   * On failure what was made is left for the caller's destroy().
   */
  async build(spec: LabSpec): Promise<NetnsHost[]> {
    // Three `ip -batch` calls build it (one process each instead of one per command: a
    // 2-host lab took 138 ms with 16 processes); sysctls go per host in parallel.
    const bridgeNs = nsName(spec.runId, BRIDGE_NS);
    const planned = spec.hosts.map((h, i) => {
      if (!NAME_RE.test(h.name)) throw new Error(`host name must match ${NAME_RE}, got "${h.name}"`);
      return { h, i, ns: nsName(spec.runId, h.name), addr: hostAddress(spec.subnet, i) };
    });
    await this.batch([], [`netns add ${bridgeNs}`, ...planned.map((p) => `netns add ${p.ns}`)]);
    await this.batch(
      ['-n', bridgeNs],
      [
        'link set lo up',
        'link add br0 type bridge',
        'link set br0 up',
        ...planned.flatMap((p) => [`link add p${p.i} type veth peer name eth0 netns ${p.ns}`, `link set p${p.i} master br0 up`]),
      ],
    );
    await Promise.all(planned.map((p) => this.batch(['-n', p.ns], ['link set lo up', `addr add ${p.addr}/24 dev eth0`, 'link set eth0 up'])));
    const hosts = planned.map((p) => new NetnsHost(p.h.name, p.h.role, p.addr, p.ns, spec.logDir, this.wrap));
    await Promise.all(planned.map((p, k) => applySettings(hosts[k]!, p.h.sysctls)));
    return hosts;
  }

  /** Labs by run id, with each host's processes. */
  async summaries(runtime: string): Promise<LabSummary[]> {
    const labs = new Map<string, LabSummary>();
    for (const ns of await this.list()) {
      const [, runId, host] = ns.split('.');
      if (!runId || !host) continue;
      const lab = labs.get(runId) ?? { runId, runtime, hosts: [] };
      labs.set(runId, lab);
      if (host !== BRIDGE_NS) lab.hosts.push({ name: host, pids: await this.pids(ns) });
    }
    return [...labs.values()];
  }

  /**
   * Processes first, then hosts, the bridge namespace last; returns how many namespaces went.
   * Throws CleanupError naming each one that could not be removed (the others still go).
   */
  async destroy(runId?: string): Promise<number> {
    const all = (await this.list()).filter((ns) => runId === undefined || ns.split('.')[1] === runId);
    await killAll((await Promise.all(all.map((ns) => this.pids(ns)))).flat());
    const ordered = [...all.filter((n) => !n.endsWith(`.${BRIDGE_NS}`)), ...all.filter((n) => n.endsWith(`.${BRIDGE_NS}`))];
    // One `ip -force -batch` deletes them all (the hosts', then the bridge's), each once: it goes
    // on past a failure and names the line of each (a namespace already gone is not one).
    const left = ordered.length ? await this.delAll(ordered) : [];
    if (left.length) throw new CleanupError(all.length - left.length, left);
    return all.length;
  }
}

export async function killAll(pids: number[]): Promise<void> {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      // Gone already.
    }
  }
  const end = Date.now() + 2000;
  while (pids.some(alive) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  for (const p of pids.filter(alive)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

/** Whether a process with this pid exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class NetnsHost implements Host {
  readonly label: string;
  private readonly target: SysctlTarget;
  constructor(
    readonly name: string,
    readonly role: HostSpec['role'],
    readonly address: string,
    readonly netns: string,
    private readonly logDir: string,
    private readonly wrap: NsWrap = NO_WRAP,
  ) {
    this.label = name;
    this.target = netnsTarget(netns, name, wrap);
  }

  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.target.exec(argv, opts);
  }

  node(script: string): string[] {
    // The namespace shares this machine's filesystem: the same Node, the same checkout.
    return [process.execPath, join(REPO_ROOT, script)];
  }

  file(rel: string): string {
    return join(REPO_ROOT, rel);
  }

  get scratchDir(): string {
    mkdirSync(this.logDir, { recursive: true });
    return resolve(this.logDir);
  }

  putFile(name: string, text: string): string {
    if (!NAME_RE.test(name.replace(/\.[a-z]+$/, ''))) throw new Error(`file name must match ${NAME_RE} (and an extension), got "${name}"`);
    mkdirSync(this.logDir, { recursive: true });
    const path = resolve(this.logDir, name);
    const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    return path;
  }

  start(argv: string[], label: string): Proc {
    mkdirSync(this.logDir, { recursive: true });
    const file = join(this.logDir, `${this.name}-${label}.log`);
    // Its own process group: a terminal's Ctrl-C reaches the CLI, which stops hosts in order.
    // Output goes straight to the file (an fd, no pipe through this process), so a released
    // process holds nothing open here.
    const fd = openSync(file, 'a');
    const [prog, args] = wrapped(this.wrap, ['ip', 'netns', 'exec', this.netns, ...argv]);
    const child = spawn(prog, args, { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, ...this.wrap.env } });
    closeSync(fd);
    const exited = new Promise<number | null>((resolve) => {
      child.on('exit', (code) => resolve(code));
      child.on('error', () => resolve(127));
    });
    return {
      pid: child.pid!,
      log: file,
      exited,
      async stop(signal: NodeJS.Signals = 'SIGTERM') {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill(signal);
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      },
      release() {
        child.unref();
      },
    };
  }
}

export class NetnsRuntime implements Runtime {
  readonly name = 'netns' as const;
  readonly removes = 'namespace(s)';
  readonly sameKernel = true;
  readonly hostBuild = true;

  async check(): Promise<void> {
    const capEff = /CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
    const netAdmin = (BigInt(`0x${capEff}`) >> 12n) & 1n;
    if (process.getuid?.() !== 0 && netAdmin !== 1n) {
      throw new RuntimeUnavailable('the netns runtime needs root or CAP_NET_ADMIN (it creates network namespaces); run as root');
    }
    const r = await execa('ip', ['-V'], { reject: false });
    if (r.exitCode !== 0) throw new RuntimeUnavailable('`ip` is missing: apt-get install -y iproute2');
  }

  private readonly ns = new Namespaces();

  async create(spec: LabSpec): Promise<Lab> {
    assertNewLab(
      spec,
      (await this.list()).some((l) => l.runId === spec.runId),
    );
    try {
      return makeLab(spec.runId, await this.ns.build(spec), (id) => this.destroy(id));
    } catch (err) {
      await this.destroy(spec.runId);
      throw err;
    }
  }

  async versions(): Promise<Record<string, string>> {
    return {}; // the hosts run the machine's own programs: their versions are the tools'
  }

  /** Namespaces live in the kernel: nothing can go away under a point but the point's own hosts. */
  async lost(): Promise<null> {
    return null;
  }

  readonly imagesMissing = runsNoImage('netns');

  list(): Promise<LabSummary[]> {
    return this.ns.summaries('netns');
  }

  destroy(runId?: string): Promise<number> {
    return this.ns.destroy(runId);
  }
}
