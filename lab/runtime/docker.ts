// The docker runtime (dockerode): one labelled bridge network per lab with its own subnet,
// one container per host from the lab's images, sysctls set at creation
// (HostConfig.Sysctls: Docker allows them only then) and read back from inside. Never
// privileged; capabilities only where a host asks. Long-running processes are `docker exec`s
// whose output goes to the run's log folder, bind-mounted at /lab/logs. Everything carries
// the label tcplab.run=<run-id>, so destroy() works from labels alone.
import { constants, createWriteStream, mkdirSync, openSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import Docker from 'dockerode';
import { SysctlError } from '../../sysctl/registry.js';
import { CleanupError } from '../../core/errors.js';
import { NAME_RE } from '../../core/fields.js';
import { assertKernelHas } from '../../sysctl/apply.js';
import { ensureImages, type Images } from './images.js';
import { addNetworkOnlyLabs, type DockerHost, engineMessage, engineStatus, hostIn, LABEL, labelFilter, LOGS, removalFailed } from './engine.js';
import {
  assertNewLab,
  hostAddress,
  makeLab,
  nextSubnet,
  RuntimeUnavailable,
  type HostSpec,
  type Lab,
  type LabSpec,
  type LabSummary,
  type Proc,
  type Runtime,
} from './runtime.js';

/** The label the swarm puts on a task's container. */
const SWARM_TASK = 'com.docker.swarm.task.id';

export interface DockerOptions {
  base?: string;
  wrk2?: boolean;
  progress?: (line: string) => void;
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
