// The docker runtime (dockerode): one labelled bridge network per lab with its own subnet,
// one container per host from the lab's images, sysctls set at creation
// (HostConfig.Sysctls: Docker allows them only then) and read back from inside. Never
// privileged; capabilities only where a host asks. Long-running processes are `docker exec`s
// whose output goes to the run's log folder, bind-mounted at /lab/logs. Everything carries
// the label tcplab.run=<run-id>, so destroy() works from labels alone.
import { closeSync, constants, createWriteStream, fchownSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { SysctlError } from '../../sysctl/registry.js';
import { CleanupError } from '../../core/errors.js';
import { NAME_RE } from '../../core/fields.js';
import { assertKernelHas, verifySettings, type ExecOptions, type ExecResult } from '../../sysctl/apply.js';
import { ensureImages, type Images } from './images.js';
import {
  assertNewLab,
  hostAddress,
  makeLab,
  nextSubnet,
  RuntimeUnavailable,
  type Host,
  type HostSpec,
  type Lab,
  type LabSpec,
  type LabSummary,
  type Proc,
  type Runtime,
} from './runtime.js';

export const LABEL = 'tcplab.run';
/** The label the swarm puts on a task's container. */
const SWARM_TASK = 'com.docker.swarm.task.id';
export const LOGS = '/lab/logs';

export interface DockerOptions {
  base?: string;
  wrk2?: boolean;
  progress?: (line: string) => void;
}

export class DockerHost implements Host {
  readonly label: string;
  constructor(
    readonly name: string,
    readonly role: HostSpec['role'],
    readonly address: string,
    private readonly container: Docker.Container,
    private readonly logDir: string,
    /** The uid:gid the container's processes run as (the server image's user is not root). */
    private readonly owner: { uid: number; gid: number },
    readonly ownServer?: Proc,
    /** The swarm node it runs on (the swarm runtime). */
    readonly placedOn?: string,
  ) {
    this.label = name;
  }

  node(script: string): string[] {
    return ['node', `/app/${script}`];
  }

  file(rel: string): string {
    return `/app/${rel}`;
  }

  async exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    // coreutils `timeout` inside the container: an exec cannot be killed through the API.
    const cmd = opts.timeoutMs ? ['timeout', '-k', '2', String(Math.ceil(opts.timeoutMs / 1000)), ...argv] : argv;
    const ex = await this.container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
    const stream = await ex.start({ hijack: true, stdin: false });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const o = new PassThrough().on('data', (b: Buffer) => out.push(b));
    const e = new PassThrough().on('data', (b: Buffer) => err.push(b));
    this.container.modem.demuxStream(stream, o, e);
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    stream.destroy(); // the hijacked connection would otherwise stay open and keep Node alive
    const info = await ex.inspect();
    let stdout = Buffer.concat(out).toString();
    let stderr = Buffer.concat(err).toString();
    let exitCode = info.ExitCode ?? -1;
    // runc reports a program it cannot start as exit 126 and an "OCI runtime exec failed …
    // executable file not found" line on stdout: say 127 like a shell, the message on stderr.
    if ((exitCode === 126 || exitCode === 127) && /^OCI runtime exec failed: .*(executable file not found|no such file or directory)/.test(stdout)) {
      stderr = stdout.trim();
      stdout = '';
      exitCode = 127;
    }
    return { stdout, stderr, exitCode, timedOut: Boolean(opts.timeoutMs) && exitCode === 124 };
  }

  readonly scratchDir = '/tmp';

  putFile(name: string, text: string): string {
    if (!NAME_RE.test(name.replace(/\.[a-z]+$/, ''))) throw new Error(`file name must match ${NAME_RE} (and an extension), got "${name}"`);
    // The log folder is bind-mounted: a new file, never through a link, given to the container's user.
    const fd = openSync(resolvePath(this.logDir, name), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    try {
      writeSync(fd, text);
      fchownSync(fd, this.owner.uid, this.owner.gid);
    } finally {
      closeSync(fd);
    }
    return `${LOGS}/${name}`;
  }

  start(argv: string[], label: string): Proc {
    if (!NAME_RE.test(label)) throw new Error(`process label must match ${NAME_RE}, got "${label}"`);
    const file = `${this.name}-${label}.log`;
    const log = resolvePath(this.logDir, file);
    // The log folder is bind-mounted into the containers, so anything may stand at this name:
    // create the file new (O_EXCL) and never follow a link (O_NOFOLLOW), then give it to the
    // container's user by ownership (no world-writable file or folder).
    const fd = openSync(log, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    try {
      fchownSync(fd, this.owner.uid, this.owner.gid);
    } finally {
      closeSync(fd);
    }
    const pidFile = `/tmp/tcplab-${label}.pid`;
    // A constant script; the label, log and argv are its arguments, never spliced into it.
    const script = 'pidfile=$1; log=$2; shift 2; echo $$ > "$pidfile"; exec "$@" >>"$log" 2>&1';
    const started = this.container
      .exec({ Cmd: ['sh', '-c', script, 'sh', pidFile, `${LOGS}/${file}`, ...argv], AttachStdout: false, AttachStderr: false })
      .then(async (ex) => {
        // The engine answers a detached start with a stream that holds a socket open: close it.
        const res: unknown = await ex.start({ Detach: true });
        const stream = typeof res === 'object' && res !== null ? (res as { destroy?: () => void; resume?: () => void }) : undefined;
        stream?.resume?.();
        stream?.destroy?.();
        return ex;
      })
      // The engine may be gone (stopped under the lab): the process then never ran, and
      // nothing awaits this promise to see its rejection; exited says null.
      .catch(() => null);
    let polling = true;
    const exited = started.then(async (ex) => {
      while (polling && ex) {
        const i = await ex.inspect().catch(() => null);
        if (!i || !i.Running) return i?.ExitCode ?? null;
        await new Promise((r) => setTimeout(r, 50));
      }
      return null;
    });
    const signal = async (sig: string) => {
      if (!(await started)) return;
      await this.exec(['sh', '-c', 'kill -s "$1" "$(cat "$2")" 2>/dev/null || true', 'sh', sig, pidFile]).catch(() => {});
    };
    return {
      pid: 0,
      log,
      exited,
      async stop(sig: NodeJS.Signals = 'SIGTERM') {
        await signal(sig.replace(/^SIG/, ''));
        const t = setTimeout(() => void signal('KILL'), 3000);
        await exited;
        clearTimeout(t);
      },
      release() {
        polling = false;
      },
    };
  }
}

/**
 * The user's image's own process as the host's server: its output copied into `log` (attached
 * before the container starts), its exit from the container's state, stop() a signal to it (the
 * engine's init forwards it) and SIGKILL 3 s later.
 */
async function attachOwnServer(c: Docker.Container, log: string): Promise<Proc> {
  const fd = openSync(log, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  const file = createWriteStream('', { fd });
  const stream = await c.attach({ stream: true, stdout: true, stderr: true });
  c.modem.demuxStream(stream, file, file);
  stream.on('end', () => file.end());
  let polling = true;
  const exited = (async () => {
    while (polling) {
      const i = await c.inspect().catch(() => null);
      if (!i) return null;
      if (i.State.Status === 'exited' || i.State.Status === 'dead') return i.State.ExitCode ?? null;
      await new Promise((r) => setTimeout(r, 50));
    }
    return null;
  })();
  const kill = (signal: string) => c.kill({ signal }).catch(() => {});
  return {
    pid: 0,
    log,
    exited,
    async stop(sig: NodeJS.Signals = 'SIGTERM') {
      await kill(sig);
      const t = setTimeout(() => void kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
    release() {
      polling = false;
      if ('destroy' in stream && typeof stream.destroy === 'function') stream.destroy();
    },
  };
}

/**
 * A lab host in a running container: which user its processes run as (an exec runs as the
 * image's user: the files made for them are given to it), and its sysctls, set by the engine
 * at creation, read back from inside (a mismatch is an error).
 */
export async function hostIn(
  c: Docker.Container,
  h: HostSpec,
  address: string,
  logDir: string,
  more: { ownServer?: Proc; placedOn?: string } = {},
): Promise<DockerHost> {
  const id = await new DockerHost(h.name, h.role, address, c, logDir, { uid: 0, gid: 0 }).exec(['sh', '-c', 'id -u; id -g'], { timeoutMs: 10_000 });
  const [uid, gid] = id.stdout.trim().split('\n').map(Number);
  if (id.exitCode !== 0 || !Number.isInteger(uid) || !Number.isInteger(gid))
    throw new Error(`${h.name}: cannot tell which user its processes run as: ${id.stderr.trim()}`);
  const host = new DockerHost(h.name, h.role, address, c, logDir, { uid: uid!, gid: gid! }, more.ownServer, more.placedOn);
  await verifySettings(host, h.sysctls);
  return host;
}

/** The engine's filter for one lab's objects (by run id), or every lab's. */
export const labelFilter = (runId?: string) => ({ label: [runId === undefined ? LABEL : `${LABEL}=${runId}`] });

/** Labs of which only a labelled network of this driver is left (a crash between its creation and the first host). */
export async function addNetworkOnlyLabs(
  docker: Docker,
  driver: 'bridge' | 'overlay',
  runtime: string,
  labs: Map<string, LabSummary>,
): Promise<void> {
  for (const n of await docker.listNetworks({ filters: { label: [LABEL], driver: [driver] } })) {
    const runId = n.Labels?.[LABEL];
    if (runId && !labs.has(runId)) labs.set(runId, { runId, runtime, hosts: [] });
  }
}

/** The HTTP status of an Engine API error (dockerode sets statusCode), or null. */
/** A catch for an engine removal: gone already (404) counts as removed; anything else is named in `left` with the engine's reason. */
export const removalFailed =
  (left: string[], what: string) =>
  (err: unknown): void => {
    if (engineStatus(err) !== 404) left.push(`${what} (${engineMessage(err)})`);
  };

export function engineStatus(err: unknown): number | null {
  const s = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : null;
}

/** The engine's own message (its JSON body), without dockerode's prefix. */
export function engineMessage(err: unknown): string {
  const j = (err as { json?: { message?: unknown } } | null)?.json;
  return typeof j?.message === 'string' ? j.message : ((err as Error).message.split('\n')[0] ?? '');
}

export class DockerRuntime implements Runtime {
  readonly name = 'docker' as const;
  readonly removes = 'container(s) and network(s)';
  readonly sameKernel = true;
  readonly hostBuild = false;
  readonly docker: Docker;
  private images?: Images;

  constructor(private readonly opts: DockerOptions = {}) {
    this.docker = new Docker();
  }

  async check(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([this.docker.ping(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), 3000)))]);
    } catch (err) {
      const where = process.env['DOCKER_HOST'] ?? '/var/run/docker.sock';
      throw new RuntimeUnavailable(
        `no Docker engine answers at ${where} (${(err as Error).message.split('\n')[0]}): run \`sudo bash scripts/install-docker.sh\` or use --runtime netns (as root) or --runtime rootless`,
      );
    } finally {
      // A pending timer would hold every command that only asked (`lab status`) for 3 s.
      clearTimeout(timer);
    }
  }

  async prepare(): Promise<Images> {
    this.images ??= await ensureImages(this.docker, {
      base: this.opts.base ?? 'debian:bookworm-slim',
      wrk2: this.opts.wrk2 ?? false,
      progress: this.opts.progress ?? (() => {}),
    });
    return this.images;
  }

  async create(spec: LabSpec): Promise<Lab> {
    assertNewLab(
      spec,
      (await this.list()).some((l) => l.runId === spec.runId),
    );
    // A key this kernel lacks would fail the container's start: say so before anything exists.
    for (const h of spec.hosts) assertKernelHas(h.name, h.sysctls);
    const images = await this.prepare();
    const labels = { [LABEL]: spec.runId };
    const netName = `tcplab-${spec.runId}`;
    const hosts: DockerHost[] = [];
    const logDir = resolvePath(spec.logDir);
    // Owned by root, not writable by others: the containers' users write only the files made for them.
    mkdirSync(logDir, { recursive: true, mode: 0o755 });
    let subnet = spec.subnet;
    try {
      // The default subnet "unless taken": with subnetFallback, the next free /24s after it.
      for (let attempt = 0; ; attempt++) {
        try {
          await this.docker.createNetwork({
            Name: netName,
            Driver: 'bridge',
            Labels: labels,
            IPAM: { Config: [{ Subnet: subnet, Gateway: subnet.replace(/\.0\/24$/, '.254') }] },
          });
          break;
        } catch (err) {
          // 403 from networks/create: the pool overlaps an address space in use.
          if (engineStatus(err) !== 403) throw err;
          const next = nextSubnet(subnet);
          if (!spec.subnetFallback || attempt >= 32 || !next)
            throw new RuntimeUnavailable(`the lab subnet ${subnet} overlaps a network that exists: pass --subnet with a free /24`);
          subnet = next;
        }
      }
      if (subnet !== spec.subnet) (this.opts.progress ?? (() => {}))(`lab network: ${spec.subnet} is taken, using ${subnet}`);
      const containers = await Promise.all(
        spec.hosts.map(async (h, i) => {
          if (!NAME_RE.test(h.name)) throw new Error(`host name must match ${NAME_RE}, got "${h.name}"`);
          const addr = hostAddress(subnet, i);
          const sysctls = Object.fromEntries(h.sysctls.map((s) => [s.name, s.value]));
          // A host from the user's image holds the network namespace (and its sysctls): the
          // lab's tools join it later, from a container of their own.
          const own = h.image;
          const name = `tcplab-${spec.runId}-${h.name}${own ? '-own' : ''}`;
          let c: Docker.Container;
          try {
            c = await this.docker.createContainer({
              name,
              Image: own ? own.name : h.role === 'server' ? images.server : images.loadgen,
              ...(own ? (own.cmd ? { Cmd: own.cmd } : {}) : { Cmd: ['sleep', 'infinity'] }),
              ...(own ? { Env: own.env, AttachStdout: true, AttachStderr: true } : {}),
              Hostname: h.name,
              Labels: { ...labels, 'tcplab.host': own ? `${h.name}-own` : h.name, 'tcplab.role': h.role },
              HostConfig: {
                NetworkMode: netName,
                Sysctls: sysctls,
                CapAdd: spec.caps?.[h.name] ?? [],
                ...(spec.seccomp?.[h.name] ? { SecurityOpt: [`seccomp=${spec.seccomp[h.name]}`] } : {}),
                ...(own ? {} : { Binds: [`${logDir}:${LOGS}`] }),
                Init: true,
              },
              NetworkingConfig: { EndpointsConfig: { [netName]: { IPAMConfig: { IPv4Address: addr } } } },
            });
          } catch (err) {
            // 409: the name is taken; 400: the engine refused the container's settings, of
            // which only the sysctls come from the user.
            const status = engineStatus(err);
            if (status === 409) throw new RuntimeUnavailable(`a container named ${name} exists already: \`lab down ${spec.runId}\``);
            if (status === 400 && h.sysctls.length)
              throw new SysctlError(`${h.name}: the Docker engine refused the sysctls: ${engineMessage(err)}`, 'MISMATCH');
            throw err;
          }
          return { c, h, addr };
        }),
      );
      // Every host starts at once (each start and its checks are a few engine round trips); all
      // are settled before a failure is thrown, so the clean-up below finds every one made.
      const started = await Promise.allSettled(
        containers.map(async ({ c, h, addr }) => {
          // The user's image logs to <host>-server.log from its first byte: attached before it starts.
          const ownServer = h.image ? await attachOwnServer(c, resolvePath(logDir, `${h.name}-server.log`)) : undefined;
          try {
            await c.start();
          } catch (err) {
            // runc writes the sysctls when the container starts: a 400 there is a value it could not set.
            if (engineStatus(err) === 400 && h.sysctls.length)
              throw new SysctlError(`${h.name}: the Docker engine could not set the sysctls: ${engineMessage(err)}`, 'MISMATCH');
            throw err;
          }
          const tools = h.image ? await this.toolsBeside(c, spec.runId, h, images.server, logDir) : c;
          return hostIn(tools, h, addr, logDir, { ...(ownServer ? { ownServer } : {}) });
        }),
      );
      const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      for (const r of started) if (r.status === 'fulfilled') hosts.push(r.value);
    } catch (err) {
      await this.destroy(spec.runId);
      throw err;
    }
    return makeLab(spec.runId, hosts, (id) => this.destroy(id));
  }

  /**
   * The lab's tools beside a host from the user's image: the server image (node, ss, nstat,
   * sysctl), in the image container's network and process namespaces, so what they read and
   * signal is the user's server. Root there (not privileged: the default capabilities), because
   * the user's server may run as root and its /proc/PID/fd is its owner's to read.
   */
  private async toolsBeside(own: Docker.Container, runId: string, h: HostSpec, image: string, logDir: string): Promise<Docker.Container> {
    const c = await this.docker.createContainer({
      name: `tcplab-${runId}-${h.name}`,
      Image: image,
      Cmd: ['sleep', 'infinity'],
      User: '0:0',
      Labels: { [LABEL]: runId, 'tcplab.host': h.name, 'tcplab.role': h.role },
      HostConfig: { NetworkMode: `container:${own.id}`, PidMode: `container:${own.id}`, Binds: [`${logDir}:${LOGS}`], Init: true },
    });
    await c.start();
    return c;
  }

  /** Whether each image is on the engine (the lab pulls nothing): the first that is not, in one line. */
  async imagesMissing(names: string[]): Promise<string | null> {
    for (const n of new Set(names)) {
      try {
        await this.docker.getImage(n).inspect();
      } catch (err) {
        if (engineStatus(err) === 404)
          return `no image ${n} on the Docker engine: build it there (docker build -t ${n} …) or docker load it; the lab pulls nothing`;
        throw err;
      }
    }
    return null;
  }

  async versions(): Promise<Record<string, string>> {
    const out: Record<string, string> = { 'docker engine': (await this.docker.version()).Version };
    const im = await this.prepare();
    out['images'] = `${im.server} ${im.loadgen}`;
    for (const role of ['server', 'loadgen'] as const) out[`${role} image id`] = (await this.docker.getImage(im[role]).inspect()).Id;
    return out;
  }

  /**
   * The engine is gone or going: it may answer a ping for a few seconds while it shuts down
   * (stopping the lab's containers is what failed the point), so ask for 5 s.
   */
  async lost(): Promise<{ reason: string; fix: string } | null> {
    for (const end = Date.now() + 5000; Date.now() < end;) {
      const answers = await this.check().then(
        () => true,
        () => false,
      );
      if (!answers) return { reason: 'the Docker engine stopped answering', fix: 'start the engine again (sudo bash scripts/install-docker.sh)' };
      await new Promise((r) => setTimeout(r, 200));
    }
    return null;
  }

  async list(): Promise<LabSummary[]> {
    const labs = new Map<string, LabSummary>();
    for (const c of await this.docker.listContainers({ all: true, filters: { label: [LABEL] } })) {
      if (c.Labels[SWARM_TASK]) continue; // a swarm lab's (the swarm runtime's)
      const runId = c.Labels[LABEL]!;
      const lab = labs.get(runId) ?? { runId, runtime: 'docker', hosts: [] };
      labs.set(runId, lab);
      const pid = c.State === 'running' ? ((await this.docker.getContainer(c.Id).inspect()).State.Pid ?? 0) : 0;
      lab.hosts.push({ name: c.Labels['tcplab.host'] ?? c.Names[0] ?? c.Id, pids: pid ? [pid] : [] });
    }
    await addNetworkOnlyLabs(this.docker, 'bridge', 'docker', labs);
    return [...labs.values()];
  }

  async destroy(runId?: string): Promise<number> {
    const filter = labelFilter(runId);
    // A swarm lab's task containers and overlay network are the swarm runtime's to remove.
    const containers = (await this.docker.listContainers({ all: true, filters: filter })).filter((c) => !c.Labels[SWARM_TASK]);
    const left: string[] = [];
    const failed = (what: string) => removalFailed(left, what);
    await Promise.all(
      containers.map((c) =>
        this.docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(failed(`container ${c.Names[0]?.replace(/^\//, '') ?? c.Id}`)),
      ),
    );
    const networks = await this.docker.listNetworks({ filters: { ...filter, driver: ['bridge'] } });
    for (const n of networks)
      await this.docker
        .getNetwork(n.Id)
        .remove()
        .catch(failed(`network ${n.Name}`));
    const total = containers.length + networks.length;
    if (left.length) throw new CleanupError(total - left.length, left);
    return total;
  }
}
