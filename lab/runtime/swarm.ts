// The swarm runtime: the lab's hosts as Docker Swarm services of one replica each, driven
// from a manager. One attachable overlay network per lab (its subnet the lab's), labelled
// with the run id like everything else; each service's sysctls in its ContainerSpec
// (Engine API 1.40) and read back inside; capabilities only where a host asks (CapabilityAdd,
// 1.41); DNS round-robin endpoints (no virtual IP: a kernel without IPVS has no routing mesh).
// `placement` puts a host on a node (node.hostname constraint). The lab's processes run as
// execs in each task's container through the engine of the node it runs on: the manager's
// own engine for itself, and for another node the endpoint in its node label tcplab.engine
// (`docker node update --label-add tcplab.engine=unix:///…|ssh://…|tcp://…`). Images are
// built on the manager and copied to each node's engine that lacks them (docker save | load:
// no registry to run or to trust). The run's log folder is bind-mounted at the same path on
// every node, so it must be there on each (on one machine it is; across machines, a shared
// mount).
import { mkdirSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import Docker from 'dockerode';
import { CleanupError } from '../../core/errors.js';
import { NAME_RE } from '../../core/fields.js';
import { assertKernelHas } from '../../sysctl/apply.js';
import { DockerRuntime } from './docker.js';
import { addNetworkOnlyLabs, hostIn, engineMessage, engineStatus, LABEL, labelFilter, LOGS, removalFailed } from './engine.js';
import type { Images } from './images.js';
import {
  assertNewLab,
  makeLab,
  nextSubnet,
  RuntimeUnavailable,
  subnetsOverlap,
  type Host,
  type Lab,
  type LabSpec,
  type LabSummary,
  type Runtime,
} from './runtime.js';

export interface SwarmOptions {
  base?: string;
  wrk2?: boolean;
  progress?: (line: string) => void;
}

interface SwarmNode {
  id: string;
  hostname: string;
  role: 'manager' | 'worker';
  engine: Docker;
  self: boolean;
}

/** A dockerode client for an endpoint as DOCKER_HOST spells it: unix://PATH, tcp://HOST:PORT, ssh://USER@HOST. */
export function engineAt(endpoint: string): Docker {
  const u = /^unix:\/\/(\/.+)$/.exec(endpoint);
  if (u) return new Docker({ socketPath: u[1]! });
  const t = /^tcp:\/\/([^:/]+):(\d+)$/.exec(endpoint);
  if (t) return new Docker({ host: t[1]!, port: Number(t[2]), protocol: 'http' });
  const s = /^ssh:\/\/(?:([^@/]+)@)?([^:/]+)(?::(\d+))?$/.exec(endpoint);
  if (s) return new Docker({ protocol: 'ssh', host: s[2]!, port: s[3] ? Number(s[3]) : 22, ...(s[1] ? { username: s[1] } : {}) });
  throw new RuntimeUnavailable(`node label tcplab.engine: got "${endpoint}": unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]`);
}

/** Whether a node is what a placement value names: its hostname, or role:manager / role:worker. */
const fits = (n: SwarmNode, placement: string) => (placement.startsWith('role:') ? `role:${n.role}` === placement : n.hostname === placement);
const constraint = (placement: string) => (placement.startsWith('role:') ? `node.role==${placement.slice(5)}` : `node.hostname==${placement}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class SwarmRuntime implements Runtime {
  readonly name = 'swarm' as const;
  readonly removes = 'service(s) and network(s)';
  readonly sameKernel = false;
  readonly hostBuild = false;
  readonly docker: Docker;
  private readonly local: DockerRuntime;

  constructor(private readonly opts: SwarmOptions = {}) {
    this.docker = new Docker();
    this.local = new DockerRuntime(opts);
  }

  async check(): Promise<void> {
    await this.local.check();
    const info = (await this.docker.info()) as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } };
    if (info.Swarm?.LocalNodeState !== 'active' || !info.Swarm.ControlAvailable)
      throw new RuntimeUnavailable(
        `the Docker engine is not a swarm manager (swarm state: ${info.Swarm?.LocalNodeState ?? 'unknown'}): docker swarm init, or bash scripts/test-swarm.sh up for the two-node test swarm`,
      );
  }

  /** The swarm's nodes that are ready, each with the engine that runs its containers. */
  async nodes(): Promise<SwarmNode[]> {
    const self = ((await this.docker.info()) as { Swarm: { NodeID: string } }).Swarm.NodeID;
    const out: SwarmNode[] = [];
    for (const n of await this.docker.listNodes()) {
      if (n.Status?.State !== 'ready' || !n.ID) continue;
      const endpoint = n.Spec?.Labels?.['tcplab.engine'];
      const isSelf = n.ID === self;
      if (!isSelf && !endpoint) continue; // no way to run the lab's processes there
      out.push({
        id: n.ID,
        hostname: n.Description?.Hostname ?? n.ID,
        role: n.Spec?.Role === 'manager' ? 'manager' : 'worker',
        engine: isSelf ? this.docker : engineAt(endpoint!),
        self: isSelf,
      });
    }
    return out;
  }

  /** The lab's images, built on the manager (as the docker runtime builds them). */
  prepare(): Promise<Images> {
    return this.local.prepare();
  }

  /** The lab's images on every node that will run a host (docker save on the manager | docker load there). */
  private async imagesOn(nodes: SwarmNode[], images: Images): Promise<void> {
    for (const n of nodes) {
      if (n.self) continue;
      for (const tag of [images.server, images.loadgen]) {
        const has = await n.engine
          .getImage(tag)
          .inspect()
          .then(
            () => true,
            (err: unknown) => {
              if (engineStatus(err) === 404) return false;
              throw err;
            },
          );
        if (has) continue;
        (this.opts.progress ?? (() => {}))(`image ${tag} → node ${n.hostname} (docker save | docker load)`);
        const tar = await this.docker.getImage(tag).get();
        const res = await n.engine.loadImage(tar);
        await new Promise<void>((resolve, reject) => n.engine.modem.followProgress(res, (err: Error | null) => (err ? reject(err) : resolve())));
      }
    }
  }

  /**
   * The lab's subnet, or with subnetFallback the next /24 free on every node that runs a host:
   * the swarm accepts an overlay whose subnet a node's own bridge has, and then that node
   * refuses its task ("Pool overlaps"), so the nodes' networks are looked at first.
   */
  private async freeSubnet(spec: LabSpec, nodes: SwarmNode[]): Promise<string> {
    const taken: Array<{ subnet: string; where: string }> = [];
    for (const n of nodes)
      for (const net of await n.engine.listNetworks()) {
        const run = net.Labels?.[LABEL];
        const where = `network ${net.Name} on node ${n.hostname}${run ? ` (lab ${run}'s: \`lab down ${run}\` removes it)` : ''}`;
        for (const c of net.IPAM?.Config ?? []) if (c.Subnet) taken.push({ subnet: c.Subnet, where });
      }
    let subnet = spec.subnet;
    for (let attempt = 0; ; attempt++) {
      const clash = taken.find((t) => subnetsOverlap(t.subnet, subnet));
      if (!clash) break;
      const next = nextSubnet(subnet);
      if (!spec.subnetFallback || attempt >= 32 || !next)
        throw new RuntimeUnavailable(`the lab subnet ${subnet} overlaps ${clash.where}: pass --subnet with a free /24`);
      subnet = next;
    }
    if (subnet !== spec.subnet) (this.opts.progress ?? (() => {}))(`lab network: ${spec.subnet} is taken, using ${subnet}`);
    return subnet;
  }

  async create(spec: LabSpec): Promise<Lab> {
    assertNewLab(
      spec,
      (await this.list()).some((l) => l.runId === spec.runId),
    );
    for (const h of spec.hosts) assertKernelHas(h.name, h.sysctls);
    const nodes = await this.nodes();
    for (const [host, node] of Object.entries(spec.placement ?? {}))
      if (!nodes.some((n) => fits(n, node)))
        throw new RuntimeUnavailable(
          `placement of ${host}: no ready node ${node} the lab can reach (nodes: ${nodes.map((n) => n.hostname).join(', ')}; another node needs the label tcplab.engine)`,
        );
    const images = await this.prepare();
    const wanted = Object.values(spec.placement ?? {});
    const used = nodes.filter((n) => n.self || wanted.length < spec.hosts.length || wanted.some((w) => fits(n, w)));
    await this.imagesOn(used, images);
    // By image ID (the same on every node after docker load): a node's agent pulls an image it
    // is given by tag before it looks for its own copy, and with no registry in reach that
    // costs it a DNS timeout (20 s) per task; an ID it never pulls.
    const imageId = {
      server: (await this.docker.getImage(images.server).inspect()).Id,
      loadgen: (await this.docker.getImage(images.loadgen).inspect()).Id,
    };
    const labels = { [LABEL]: spec.runId };
    const logDir = resolvePath(spec.logDir);
    mkdirSync(logDir, { recursive: true, mode: 0o755 });
    const subnet = await this.freeSubnet(spec, used);
    const hosts: Host[] = [];
    try {
      const net = await this.docker.createNetwork({
        Name: `tcplab-${spec.runId}`,
        Driver: 'overlay',
        Attachable: true,
        Labels: labels,
        IPAM: { Config: [{ Subnet: subnet }] },
      });
      // Where no placement is given, only nodes the lab can reach.
      const reachable = nodes.map((n) => `node.hostname==${n.hostname}`);
      for (const h of spec.hosts) {
        if (!NAME_RE.test(h.name)) throw new Error(`host name must match ${NAME_RE}, got "${h.name}"`);
        if (h.image)
          throw new RuntimeUnavailable("runtime docker only: a swarm service cannot join another container's namespaces, which the lab's tools need");
        const node = spec.placement?.[h.name];
        const name = `tcplab-${spec.runId}-${h.name}`;
        const hostLabels = { ...labels, 'tcplab.host': h.name, 'tcplab.role': h.role };
        try {
          await this.docker.createService({
            Name: name,
            Labels: hostLabels,
            TaskTemplate: {
              ContainerSpec: {
                Image: h.role === 'server' ? imageId.server : imageId.loadgen,
                Command: ['sleep', 'infinity'],
                Hostname: h.name,
                Labels: hostLabels,
                Sysctls: Object.fromEntries(h.sysctls.map((s) => [s.name, String(s.value)])),
                CapabilityAdd: (spec.caps?.[h.name] ?? []).map((c) => `CAP_${c}`),
                Mounts: [{ Type: 'bind', Source: logDir, Target: LOGS }],
                Init: true,
              },
              Placement: { Constraints: node ? [constraint(node)] : reachable.length === 1 ? reachable : [] },
              RestartPolicy: { Condition: 'none' },
              Networks: [{ Target: net.id, Aliases: [h.name] }],
            },
            Mode: { Replicated: { Replicas: 1 } },
            EndpointSpec: { Mode: 'dnsrr' },
          } as never);
        } catch (err) {
          if (engineStatus(err) === 409) throw new RuntimeUnavailable(`a service named ${name} exists already: \`lab down ${spec.runId}\``);
          throw err;
        }
      }
      for (const h of spec.hosts) {
        const t = await this.runningTask(`tcplab-${spec.runId}-${h.name}`, h.name);
        const n = nodes.find((x) => x.id === t.nodeId);
        if (!n) throw new RuntimeUnavailable(`${h.name}: its task runs on node ${t.nodeId}, which the lab cannot reach (no tcplab.engine label)`);
        const c = n.engine.getContainer(t.containerId);
        hosts.push(await hostIn(c, h, t.address, logDir, { placedOn: n.hostname }));
      }
    } catch (err) {
      await this.destroy(spec.runId);
      throw err;
    }
    return makeLab(spec.runId, hosts, (id) => this.destroy(id));
  }

  /** Waits until the service's one task runs: its node, container and address on the lab network. */
  private async runningTask(service: string, host: string): Promise<{ nodeId: string; containerId: string; address: string }> {
    const end = Date.now() + 120_000;
    for (;;) {
      const tasks = (await this.docker.listTasks({ filters: { service: [service] } })) as Array<{
        NodeID?: string;
        Status?: { State?: string; Err?: string; ContainerStatus?: { ContainerID?: string } };
        NetworksAttachments?: Array<{ Network?: { Spec?: { Name?: string } }; Addresses?: string[] }>;
      }>;
      const t = tasks[0];
      const state = t?.Status?.State;
      if (state === 'failed' || state === 'rejected')
        throw new RuntimeUnavailable(`${host}: the swarm could not start its task (${state}): ${t?.Status?.Err ?? 'no reason given'}`);
      if (state === 'running' && t?.NodeID && t.Status?.ContainerStatus?.ContainerID) {
        const att = t.NetworksAttachments?.find((a) => a.Network?.Spec?.Name?.startsWith('tcplab-'));
        const address = att?.Addresses?.[0]?.split('/')[0];
        if (address) return { nodeId: t.NodeID, containerId: t.Status.ContainerStatus.ContainerID, address };
      }
      if (Date.now() > end) throw new RuntimeUnavailable(`${host}: its task did not run within 120 s (state: ${state ?? 'none yet'})`);
      await sleep(200);
    }
  }

  async versions(): Promise<Record<string, string>> {
    const out = await this.local.versions();
    for (const n of await this.nodes()) out[`node ${n.hostname}`] = (await n.engine.version()).Version;
    return out;
  }

  lost(): Promise<{ reason: string; fix: string } | null> {
    return this.local.lost();
  }

  async imagesMissing(names: string[]): Promise<string | null> {
    return names.length ? "runtime docker only: a swarm service cannot join another container's namespaces, which the lab's tools need" : null;
  }

  async list(): Promise<LabSummary[]> {
    const labs = new Map<string, LabSummary>();
    for (const s of await this.docker.listServices({ filters: { label: [LABEL] } })) {
      const runId = s.Spec?.Labels?.[LABEL];
      if (!runId) continue;
      const lab = labs.get(runId) ?? { runId, runtime: 'swarm', hosts: [] };
      labs.set(runId, lab);
      lab.hosts.push({ name: s.Spec?.Labels?.['tcplab.host'] ?? s.Spec?.Name ?? s.ID ?? '?', pids: [] });
    }
    await addNetworkOnlyLabs(this.docker, 'overlay', 'swarm', labs);
    return [...labs.values()];
  }

  /**
   * Removes a lab's services, then their containers on every node the lab can reach (the
   * nodes' agents would stop and remove them in their own time, 6 s here, and an overlay
   * network with a container still attached cannot go), then its overlay network.
   */
  async destroy(runId?: string): Promise<number> {
    const filter = labelFilter(runId);
    const services = await this.docker.listServices({ filters: filter });
    const left: string[] = [];
    await Promise.all(
      services.map((s) =>
        this.docker
          .getService(s.ID!)
          .remove()
          .catch(removalFailed(left, `service ${s.Spec?.Name ?? s.ID}`)),
      ),
    );
    const nodes = await this.nodes().catch(() => [] as SwarmNode[]);
    await Promise.all(
      nodes.map(async (n) => {
        for (const c of await n.engine.listContainers({ all: true, filters: filter }).catch(() => []))
          await n.engine
            .getContainer(c.Id)
            .remove({ force: true })
            .catch((err: unknown) => {
              if (engineStatus(err) !== 404 && engineStatus(err) !== 409) throw err; // gone, or being removed by its agent
            })
            .catch(removalFailed(left, `container ${c.Id.slice(0, 12)} on node ${n.hostname}`));
      }),
    );
    for (const end = Date.now() + 30_000; Date.now() < end;) {
      const left = await Promise.all(nodes.map((n) => n.engine.listContainers({ all: true, filters: filter }).catch(() => [])));
      if (left.every((l) => l.length === 0)) break;
      await sleep(250);
    }
    const networks = await this.docker.listNetworks({ filters: { ...filter, driver: ['overlay'] } });
    for (const n of networks) {
      for (const end = Date.now() + 15_000; ;) {
        try {
          await this.docker.getNetwork(n.Id).remove();
          break;
        } catch (err) {
          if (engineStatus(err) === 404 || Date.now() > end) {
            if (engineStatus(err) !== 404) left.push(`network ${n.Name} (${engineMessage(err)})`);
            break;
          }
          await sleep(250);
        }
      }
    }
    // A node lists a removed overlay until its agent has let go of it (a fraction of a second).
    const listed = () => Promise.all(nodes.map((n) => n.engine.listNetworks({ filters: { ...filter, driver: ['overlay'] } }).catch(() => [])));
    for (const end = Date.now() + 15_000; ; await sleep(100)) {
      const still = (await listed()).flatMap((l, i) => l.map((n) => `network ${n.Name} on node ${nodes[i]!.hostname}`));
      if (!still.length) break;
      if (Date.now() > end) {
        left.push(...still.map((s) => `${s} (still listed after 15 s)`));
        break;
      }
    }
    const total = services.length + networks.length;
    if (left.length) throw new CleanupError(total - left.length, left);
    return total;
  }
}
