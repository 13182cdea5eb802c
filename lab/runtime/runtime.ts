// The runtime interface: what the lab needs from whatever hosts its server and
// load generators (network namespaces now, Docker containers next). Lifecycle:
// create (hosts with their sysctls) → start processes → observe → destroy.
import type { ExecOptions, ExecResult, SysctlTarget } from '../../sysctl/apply.js';
import type { SysctlSetting } from '../../sysctl/registry.js';
import { EnvironmentError } from '../../core/errors.js';
import { isSubnet, NAME_RE, SUBNET_TEXT, type RuntimeName } from '../../core/fields.js';

export type Role = 'server' | 'loadgen';

export interface HostSpec {
  name: string; // "server", "loadgen-1", …
  role: Role;
  sysctls: SysctlSetting[];
  /**
   * The user's own image as this host (docker: server.image): its entrypoint runs as the host's
   * server, with cmd as its CMD when given and env in its environment; the lab's tools run in a
   * container of their own that shares its network and process namespaces.
   */
  image?: { name: string; cmd?: string[]; env: string[] };
}

export interface LabSpec {
  runId: string;
  subnet: string; // CIDR /24, e.g. 198.18.0.0/24
  /** When the subnet is taken (Docker: another network has it), try the next /24s instead of failing. */
  subnetFallback?: boolean;
  /** Capabilities per host name, beyond the runtime's default (Docker: CapAdd). */
  caps?: Record<string, Array<'NET_RAW' | 'NET_ADMIN'>>;
  /** docker: a seccomp profile (its JSON) per host name, in place of the engine's default (lab/runtime/seccomp.ts). */
  seccomp?: Record<string, string>;
  hosts: HostSpec[];
  /** swarm: the node (its hostname) each host runs on; a host left out goes where the swarm puts it. */
  placement?: Record<string, string>;
  /** Where long-running processes write their output. */
  logDir: string;
}

export interface Proc {
  pid: number;
  /** The file its stdout and stderr go to. */
  log: string;
  /** Resolves with the exit code (null: killed by a signal). */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Lets this CLI exit while the process keeps running (`lab up --keep`); `lab down` stops it. */
  release(): void;
}

export interface Host extends SysctlTarget {
  name: string;
  role: Role;
  /** The host's address on the lab network. */
  address: string;
  /** The swarm node it runs on (runtime swarm). */
  readonly placedOn?: string;
  /** Runs a command in the host's network namespace (argv, never a shell string). */
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Starts a long-running process; its stdout/stderr go to logDir/<host>-<label>.log. */
  start(argv: string[], label: string): Proc;
  /** argv that runs one of the project's Node scripts on this host, e.g. node('dist/server/main.js'). */
  node(script: string): string[];
  /** The path of one of the project's files as this host sees it. */
  file(rel: string): string;
  /**
   * Writes a file for this host's processes into the point's log folder (a new file, made with
   * O_EXCL and O_NOFOLLOW: never over another, never through a link), readable by them; returns
   * its path as the host sees it.
   */
  putFile(name: string, text: string): string;
  /** The server the host's own image runs (HostSpec.image), already started; startServer waits for it instead of starting one. */
  readonly ownServer?: Proc;
  /** A folder this host's processes may create files in (netns, rootless: the point's log folder; Docker: the container's /tmp). */
  readonly scratchDir: string;
}

export interface Lab {
  runId: string;
  hosts: Host[];
  host(name: string): Host;
  destroy(): Promise<void>;
}

export interface LabSummary {
  runId: string;
  runtime: string;
  hosts: Array<{ name: string; pids: number[] }>;
}

export interface Runtime {
  name: Exclude<RuntimeName, 'auto'>;
  /** What destroy() counts, for `lab down`'s line: "namespace(s)", "container(s) and network(s)", … */
  readonly removes: string;
  /** Whether its hosts run on this machine's kernel, where bpftrace (as root) sees their syscalls. */
  readonly sameKernel: boolean;
  /** Whether the server host runs this machine's build of the addon (not the one built in an image). */
  readonly hostBuild: boolean;
  /** Throws RuntimeUnavailable with a one-line reason when it cannot run here. */
  check(): Promise<void>;
  create(spec: LabSpec): Promise<Lab>;
  /** Labs this runtime finds on the machine (from names/labels alone). */
  list(): Promise<LabSummary[]>;
  /** Removes every object of one lab, or of all labs, even after a crash. */
  destroy(runId?: string): Promise<number>;
  /** What the runtime itself runs on (engine version, image tags and ids), for environment.json. */
  versions(): Promise<Record<string, string>>;
  /**
   * After a point failed with err: whether the runtime itself went away under it (an engine that
   * stopped), as the one line to say and what to do; null when the runtime is still there.
   */
  lost(err: unknown): Promise<{ reason: string; fix: string } | null>;
  /** Why these images (server.image) cannot be a host here, in one line; null when they all can. */
  imagesMissing(names: string[]): Promise<string | null>;
}

/** What a runtime that runs no image says of server.image. */
export const runsNoImage = (runtime: string) => async (names: string[]) =>
  names.length ? `the ${runtime} runtime runs no image: give server.command (an argv) instead, or use runtime docker` : null;

export class RuntimeUnavailable extends EnvironmentError {}

/**
 * What every runtime checks of a new lab before it makes anything: the run id's and the hosts'
 * names (they reach command lines and object names), and that no lab of that run id exists
 * (`taken`): a clash must not reach the runtime's clean-up, which would remove the other lab.
 */
export function assertNewLab(spec: LabSpec, taken: boolean): void {
  if (!NAME_RE.test(spec.runId)) throw new Error(`run id must match ${NAME_RE}, got "${spec.runId}"`);
  for (const h of spec.hosts) if (!NAME_RE.test(h.name)) throw new Error(`host name must match ${NAME_RE}, got "${h.name}"`);
  if (taken) throw new RuntimeUnavailable(`a lab with run id ${spec.runId} exists already: \`lab down ${spec.runId}\` removes it`);
}

/** The host addresses of a /24: .1, .2, … (the same plan on every runtime). */
export function hostAddress(subnet: string, index: number): string {
  if (!isSubnet(subnet)) throw new Error(`subnet: got "${subnet}": ${SUBNET_TEXT}`);
  if (index + 1 > 253) throw new Error('a /24 lab holds at most 253 hosts');
  return subnet.replace(/\.0\/24$/, `.${index + 1}`);
}

/** An IPv4 CIDR as its first and last address, as numbers. */
function cidrRange(cidr: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!m) return null; // IPv6, or not a CIDR: no IPv4 lab network overlaps it
  const bits = Number(m[5]);
  const base = m.slice(1, 5).reduce((a, x) => a * 256 + Number(x), 0);
  const size = 2 ** (32 - bits);
  const first = base - (base % size);
  return [first, first + size - 1];
}

/** Whether two IPv4 CIDRs share an address. */
export function subnetsOverlap(a: string, b: string): boolean {
  const [x, y] = [cidrRange(a), cidrRange(b)];
  return !!x && !!y && x[0] <= y[1] && y[0] <= x[1];
}

/** The /24 after this one within its /16, or null at the end of it. */
export function nextSubnet(subnet: string): string | null {
  const [a, b, c] = subnet.split('.').map(Number) as [number, number, number];
  return c >= 254 ? null : `${a}.${b}.${c + 1}.0/24`;
}

/** The Lab a runtime's create() returns: its hosts by name, and destroy() by run id. */
export function makeLab(runId: string, hosts: Host[], destroy: (runId: string) => Promise<unknown>): Lab {
  return {
    runId,
    hosts,
    host: (name) => {
      const h = hosts.find((x) => x.name === name);
      if (!h) throw new Error(`no host "${name}" in lab ${runId}`);
      return h;
    },
    destroy: async () => {
      await destroy(runId);
    },
  };
}
