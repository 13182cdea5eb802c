// Every enum, range and default the lab and the server process take, written once. The lab
// file's schema is built from these fields, and so are the flags of `lab up`, `lab run`,
// `lab serve` and the server process: a bad value gets the same words everywhere,
// `WHERE: got VALUE: WHAT IS ALLOWED` (WHERE is a flag, or a lab file and a field path).
import { z } from 'zod';
import { InputError } from './errors.js';

export const MODELS = [
  'single',
  'reuseport',
  'acceptor',
  'workers',
  'reactors+workers',
  'reactor-procs',
  'iterative',
  'fork',
  'thread',
  'prethread',
  'prefork',
] as const;
export type Model = (typeof MODELS)[number];
/** The designs that serve each connection with blocking I/O (trigger does not apply; share does, for prethread and prefork). */
export const isBlocking = (m: Model) => m === 'iterative' || m === 'fork' || m === 'thread' || m === 'prethread' || m === 'prefork';
/** The designs whose connections are served in fork()ed child processes. */
export const forksChildren = (m: Model) => m === 'fork' || m === 'prefork' || m === 'reactor-procs';
/** What prefork allows for share (forked children would share one epoll instance); null: any. */
export const shareText = (model: Model) =>
  model === 'prefork' ? 'accept or reuseport for model "prefork" (forked children would share one epoll instance)' : null;
/** Which server runs in the server host: the lab's reactor, Debian's nginx, or the user's own argv. */
export const KINDS = ['tcplab', 'nginx', 'command'] as const;
export type ServerKind = (typeof KINDS)[number];
export const TRIGGERS = ['edge', 'level'] as const;
export type Trigger = (typeof TRIGGERS)[number];
/** The reactor loops' I/O: epoll readiness, or io_uring completions (models single and reuseport). */
export const IOS = ['epoll', 'io_uring'] as const;
export type Io = (typeof IOS)[number];
export const URING_MODELS: readonly string[] = ['single', 'reuseport'];
/** How prethread's waiters share the port (native/src/blocking.h). */
export const SHARES = ['accept', 'epoll', 'exclusive', 'reuseport'] as const;
export type Share = (typeof SHARES)[number];
/** What a request's simulated work is: CPU time (a spin) or a sleep. */
export const WORKS = ['cpu', 'sleep'] as const;
export type Work = (typeof WORKS)[number];
export const RUNTIMES = ['auto', 'netns', 'docker', 'rootless', 'swarm'] as const;
export type RuntimeName = (typeof RUNTIMES)[number];
export const TOOLS = ['autocannon', 'ab', 'wrk', 'wrk2', 'arrivals', 'httperf'] as const;
export type LoadTool = (typeof TOOLS)[number];

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** What an integer field allows, in the words every message uses. */
export const intText = (lo: number, hi: number) => `an integer from ${lo} to ${hi}`;
export const oneOfText = (values: readonly string[]) => `one of ${values.join(', ')}`;

/** An integer in [lo, hi]; every way to miss (type, fraction, range) says the same. */
export const int = (lo: number, hi: number) => {
  const error = intText(lo, hi);
  return z.number({ error }).int({ error }).min(lo, { error }).max(hi, { error });
};
export const oneOf = <const T extends readonly [string, ...string[]]>(values: T) => z.enum(values, { error: oneOfText(values) });
export const bool = () => z.boolean({ error: 'true or false' });

/** The names hosts, processes and run ids may have (they become namespace and container names). */
export const NAME_RE = /^[a-z0-9][a-z0-9-]{0,40}$/;

/** An IPv4 /24 (the lab network): "198.18.0.0/24". */
export const SUBNET_TEXT = 'an IPv4 /24 like 198.18.0.0/24';
export const isSubnet = (v: string) => {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(v);
  return m !== null && [m[1], m[2], m[3]].every((x) => Number(x) <= 255);
};
export const DEFAULT_SUBNET = '198.18.0.0/24';

// Docker's reference grammar (distribution/reference), without upper-case repository names:
// a registry host[:port], path components joined by '.', '_', '__' or dashes, a tag, a digest.
const REGISTRY_HOST = String.raw`[a-zA-Z0-9][a-zA-Z0-9.-]*(?::\d+)?`;
const PATH_COMPONENT = String.raw`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`;
/** A Docker image reference as the engine takes it: [registry[:port]/]name[/name…][:tag][@sha256:digest]. */
export const IMAGE_RE = new RegExp(
  String.raw`^(?:${REGISTRY_HOST}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::\w[\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`,
);
/** Where a cluster pulls images from: a registry host[:port] and an optional path, the prefix of an image reference. */
export const REGISTRY_RE = new RegExp(String.raw`^${REGISTRY_HOST}(?:/${PATH_COMPONENT})*$`);
export const IMAGE_TEXT = 'a Docker image reference like my-server:1.0 (an image on the engine: the lab pulls nothing)';

/** The fields, each with its range and default. */
export const F = {
  kind: oneOf(KINDS).default('tcplab'),
  /** kind command: the server's argv ({port}, {backlog}, {threads} are filled in; PORT, BACKLOG, THREADS are in its environment). Other kinds leave it be (a sweep over kinds gives it once). */
  command: z
    .array(z.string({ error: 'a list of strings (an argv)' }), { error: 'a list of strings (an argv)' })
    .min(1, { error: 'a list of strings (an argv)' })
    .optional(),
  /** kind command on the docker runtime: the user's own image as the server host (its entrypoint, with server.command as its CMD if given); the lab's tools join it from a container of their own. */
  image: z.string({ error: IMAGE_TEXT }).max(255, { error: IMAGE_TEXT }).regex(IMAGE_RE, { error: IMAGE_TEXT }).optional(),
  // The reactor (native/index.ts takes these; the addon checks them again).
  model: oneOf(MODELS).default('single'),
  threads: int(1, 256).default(1),
  trigger: oneOf(TRIGGERS).default('edge'),
  io: oneOf(IOS).default('epoll'),
  /** io_uring: how long an enter may gather completions, µs (0: returns at the first). The server process's flag only. */
  uringBatchUs: int(0, 10_000).default(0),
  share: oneOf(SHARES).default('accept'),
  /** Simulated work per request, µs (0: none), done by the thread that answers it. */
  workUs: int(0, 1_000_000).default(0),
  work: oneOf(WORKS).default('cpu'),
  backlog: int(INT32_MIN, INT32_MAX).default(511),
  idleTimeoutMs: int(0, 86_400_000).default(60_000),
  /** A request whose Content-Length is above this gets 413. */
  maxBodyBytes: int(0, 2 ** 40).default(1 << 20),
  /** A request head must be whole this long after its first byte (0: no limit), ms. */
  headerTimeoutMs: int(0, 86_400_000).default(10_000),
  /** A body must be whole this long after its head (0: no limit), ms. */
  bodyTimeoutMs: int(0, 86_400_000).default(30_000),
  /** Connections open at once; more are closed at once (0: no cap). */
  maxConnections: int(0, 10_000_000).default(65_536),
  /** A port the server process listens on; 0 picks an ephemeral one. */
  listenPort: int(0, 65535),
  /** The ports of a lab's server host: known in advance, so never 0. */
  port: int(1, 65535).default(8080),
  controlPort: int(1, 65535).default(9090),
  // Where and how a lab runs.
  runtime: oneOf(RUNTIMES).default('auto'),
  subnet: z.string({ error: SUBNET_TEXT }).refine(isSubnet, { error: SUBNET_TEXT }).default(DEFAULT_SUBNET),
  sampleIntervalMs: int(10, 10_000).default(50),
  /** The kernel event tracer (bpftrace on the machine) during each point. */
  trace: bool().default(false),
  /** A packet capture (tcpdump in the loadgen host, on the lab port) during each point. */
  capture: bool().default(false),
  repetitions: int(1, 100).default(1),
  output: z.string({ error: 'a folder path' }).min(1, { error: 'a folder path' }).default('results'),
  // The load.
  tool: oneOf(TOOLS).default('autocannon'),
  connections: int(1, 100_000).default(10),
  duration: int(1, 3600).optional(),
  requests: int(1, 1_000_000_000).optional(),
  loadgenThreads: int(1, 64).optional(),
  rate: int(1, 10_000_000).optional(),
  keepAlive: bool().default(true),
  pipelining: int(1, 1024).optional(),
} as const;

/** What the reactor allows for threads given its model (the addon checks it again). */
export const threadsText = (model: Model) =>
  model === 'single'
    ? '1 for model "single" (use reuseport, acceptor or workers for more)'
    : model === 'iterative' || model === 'thread' || model === 'fork'
      ? `1 for model "${model}" (use ${model === 'fork' ? 'prefork' : 'prethread'} for a pool of N)`
      : null;

/**
 * What a server kind other than tcplab allows of the reactor's fields, as (field, allowed) for
 * the first one the point sets otherwise; null when all fit. nginx: `threads` worker
 * processes, `share` as accept_mutex on (accept), off (exclusive: EPOLLEXCLUSIVE) or reuseport;
 * command: `threads` and `backlog` only, as it reads them.
 */
export function foreignServerMisfit(s: {
  kind: ServerKind;
  model: Model;
  trigger: Trigger;
  io: Io;
  share: Share;
  workUs: number;
  command?: string[] | undefined;
  image?: string | undefined;
}): [string, unknown, string] | null {
  if (s.kind === 'command' && s.command === undefined && s.image === undefined)
    return ['server.command', undefined, 'an argv (a list of strings) for server.kind command, or server.image (runtime docker)'];
  if (s.kind === 'tcplab') {
    if (s.io === 'io_uring' && !URING_MODELS.includes(s.model))
      return ['server.io', s.io, `epoll for model "${s.model}" (io_uring runs the models ${URING_MODELS.join(' and ')})`];
    return null;
  }
  const only = `the default for server.kind ${s.kind} (the field is the tcplab reactor's)`;
  if (s.model !== 'single') return ['server.model', s.model, only];
  if (s.trigger !== 'edge') return ['server.trigger', s.trigger, only];
  if (s.io !== 'epoll') return ['server.io', s.io, only];
  if (s.workUs !== 0) return ['server.workUs', s.workUs, only];
  if (s.kind === 'nginx' && s.share === 'epoll')
    return [
      'server.share',
      s.share,
      'accept, exclusive or reuseport for server.kind nginx (it has no plain shared epoll: with accept_mutex off it uses EPOLLEXCLUSIVE)',
    ];
  if (s.kind === 'command' && s.share !== 'accept') return ['server.share', s.share, only];
  return null;
}

/** What `share` makes of nginx's listener (lab/pipeline/server-host.ts nginxConf). */
export const NGINX_SHARE: Record<Share, string> = {
  accept: 'accept_mutex on',
  exclusive: 'accept_mutex off (EPOLLEXCLUSIVE)',
  reuseport: 'a reuseport listener per worker',
  epoll: '(not for nginx)',
};

/** The default load duration when neither a duration nor a request count is given, s. */
export const DEFAULT_DURATION_SEC = 10;

export function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

/** "WHERE: got VALUE: WHAT" — the one shape of a bad-value message. */
export const badValue = (where: string, got: unknown, what: string) => `${where}: got ${show(got)}: ${what}`;

/** A field's default (what its schema gives for a value left out). */
export const defaultOf = <T>(schema: { parse(v: undefined): T }): T => schema.parse(undefined);

/** A flag's value as a lab file would hold it: numbers and true/false typed, the rest strings. */
export const typed = (x: string): string | number | boolean =>
  /^-?\d+(\.\d+)?$/.test(x.trim()) ? Number(x) : x === 'true' ? true : x === 'false' ? false : x;

/**
 * A flag's value through a field's schema: "12" is the number 12 for a numeric field, so
 * `--threads 0` and `threads: 0` in a lab file give the same message.
 */
export function flagParser<T>(flag: string, schema: z.ZodType<T>, numeric: boolean): (v: string) => T {
  return (v: string) => {
    const t = typed(v);
    const value = numeric && typeof t === 'number' ? t : v;
    const r = schema.safeParse(value);
    if (!r.success) throw new InputError(badValue(flag, value, r.error.issues[0]!.message));
    return r.data;
  };
}

export const intFlag = (flag: string, schema: z.ZodType<number | undefined>) => flagParser(flag, schema, true) as (v: string) => number;
export const textFlag = <T>(flag: string, schema: z.ZodType<T>) => flagParser(flag, schema, false);

/**
 * Local ports on the loadgen that a scenario keeps for itself (nft rules match them): the
 * loadgen's ip_local_port_range must stay clear of them, or ordinary connections would match.
 */
export const RESERVED_PORTS = {
  overflow: { first: 61000, last: 61999, what: 'its held handshakes' },
  synflood: { first: 20000, last: 29999, what: 'its flood' },
} as const;
export type PortRange = { first: number; last: number; what: string };

// The parts of a lab file that are not a scenario's own (labfile.ts adds the scenarios).
const Sysctls = z.record(z.string(), z.union([z.string(), z.number()], { error: 'a string or a number' })).default({});

export const LoadOptionsSchema = z
  .object({
    connections: F.connections,
    duration: F.duration,
    requests: F.requests,
    threads: F.loadgenThreads,
    rate: F.rate,
    keepAlive: F.keepAlive,
    pipelining: F.pipelining,
  })
  .strict();

export const ServerSchema = z
  .object({
    kind: F.kind,
    command: F.command,
    image: F.image,
    model: F.model,
    threads: F.threads,
    trigger: F.trigger,
    io: F.io,
    share: F.share,
    workUs: F.workUs,
    work: F.work,
    backlog: F.backlog,
    idleTimeoutMs: F.idleTimeoutMs,
    maxBodyBytes: F.maxBodyBytes,
    headerTimeoutMs: F.headerTimeoutMs,
    bodyTimeoutMs: F.bodyTimeoutMs,
    maxConnections: F.maxConnections,
    port: F.port,
    controlPort: F.controlPort,
    sysctls: Sysctls,
  })
  .strict();

export const LoadgenSchema = z
  .object({
    tool: F.tool,
    options: LoadOptionsSchema.prefault({}),
    sysctls: Sysctls,
    /** How many load generators of this kind, each a host of its own (loadgen-1 … loadgen-N); more than one: scenario throughput, which merges their results. */
    count: int(1, 16).default(1),
  })
  .strict();

const AxisValues = z
  .array(z.union([z.string(), z.number(), z.boolean()]), { error: 'a list of values' })
  .min(1, { error: 'a list of at least one value' });

export const SweepSchema = z
  .object({
    /** Every combination of these axes: field path → values. */
    matrix: z.record(z.string(), AxisValues).default({}),
    /** Axes that move together (equal lengths): point i takes value i of each. */
    zip: z.record(z.string(), AxisValues).default({}),
    /** The axis report charts put across ("zip" for the zipped tuple); default: the zip, else the axis the scenario's rules depend on most. */
    x: z.string().optional(),
  })
  .strict();

/** A swarm node (placement): its hostname, or any node of a role. */
const NODE_TEXT = "a swarm node's hostname (docker node ls), or role:manager or role:worker";
const NodeName = z.string({ error: NODE_TEXT }).regex(/^(role:(manager|worker)|[A-Za-z0-9][A-Za-z0-9.-]{0,252})$/, { error: NODE_TEXT });

/** runtime swarm: which node runs the server and which the load generator (default: where the swarm puts them). */
export const PlacementSchema = z.object({ server: NodeName.optional(), loadgens: NodeName.optional() }).strict();

/** A lab file without its scenario. */
export const LabBaseSchema = z.object({
  runtime: F.runtime,
  placement: PlacementSchema.default({}),
  subnet: F.subnet,
  server: ServerSchema.prefault({}),
  loadgens: z.array(LoadgenSchema).min(1, { error: 'a list of one loadgen' }).max(1, { error: 'a list of one loadgen' }).prefault([{}]),
  sweep: SweepSchema.prefault({}),
  repetitions: F.repetitions,
  sampleIntervalMs: F.sampleIntervalMs,
  trace: F.trace,
  capture: F.capture,
  output: F.output,
});

export type LabBase = z.infer<typeof LabBaseSchema>;
export type ServerConfig = LabBase['server'];
export type LoadgenConfig = LabBase['loadgens'][number];
/** One point's settings: the lab file with the point's axis values, its scenario by name. */
export type PointConfig = LabBase & { scenario: { name: string; options: unknown } };
