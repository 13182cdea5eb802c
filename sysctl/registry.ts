// The registry of TCP tunables the lab knows: type, allowed values, scope, the side
// it acts on, where its default comes from, and what it means.
import { closest, distance } from 'fastest-levenshtein';
import { LabError } from '../core/errors.js';

/** Which host a tunable acts on in the lab's topology. */
export type Side = 'server' | 'client' | 'both';
/** netns: each network namespace has its own value. global: one value for the machine. */
export type Scope = 'netns' | 'global';
/** kernel: a fresh namespace starts at a fixed value. machine: it depends on memory/CPUs; read it. */
export type DefaultSource = 'kernel' | 'machine';

export type ValueSpec =
  | { kind: 'int'; min: number; max: number; unit?: string }
  | { kind: 'enum'; values: Record<string, string> } // value → what it means
  | { kind: 'range'; min: number; max: number }; // "low high", low <= high

export interface Tunable {
  name: string;
  value: ValueSpec;
  scope: Scope;
  side: Side;
  defaultSource: DefaultSource;
  /** A fresh namespace's value on the kernels the lab was built on (kernel defaults only). */
  kernelDefault?: string;
  meaning: string;
  /** Why it cannot be set per host (global ones). */
  whyGlobal?: string;
}

const INT_MAX = 2147483647;

export const TUNABLES: readonly Tunable[] = [
  {
    name: 'net.core.somaxconn',
    value: { kind: 'int', min: 0, max: INT_MAX },
    scope: 'netns',
    side: 'server',
    defaultSource: 'kernel',
    kernelDefault: '4096',
    meaning: 'caps the listen() backlog: accept queue limit = min(backlog, somaxconn), read when listen() is called',
  },
  {
    name: 'net.ipv4.tcp_max_syn_backlog',
    value: { kind: 'int', min: 1, max: INT_MAX },
    scope: 'netns',
    side: 'server',
    defaultSource: 'machine',
    meaning: 'with tcp_syncookies=0, caps half-open connections from unproven peers at about 3/4 of this',
  },
  {
    name: 'net.ipv4.tcp_syncookies',
    value: {
      kind: 'enum',
      values: { '0': 'never send SYN cookies', '1': 'send cookies when the SYN queue is full', '2': 'answer every SYN with a cookie' },
    },
    scope: 'netns',
    side: 'server',
    defaultSource: 'kernel',
    kernelDefault: '1',
    meaning: 'SYN cookies: answer SYNs without keeping state when the SYN queue is full (or always)',
  },
  {
    name: 'net.ipv4.tcp_abort_on_overflow',
    value: { kind: 'enum', values: { '0': 'drop the final ACK; the client retries', '1': 'answer the final ACK with RST' } },
    scope: 'netns',
    side: 'server',
    defaultSource: 'kernel',
    kernelDefault: '0',
    meaning: 'what happens to a handshake whose final ACK meets a full accept queue (SYNs meeting it are dropped either way)',
  },
  {
    name: 'net.ipv4.tcp_tw_reuse',
    value: { kind: 'enum', values: { '0': 'never reuse', '1': 'reuse for outgoing connections (needs timestamps)', '2': 'reuse on loopback only' } },
    scope: 'netns',
    side: 'client',
    defaultSource: 'kernel',
    kernelDefault: '2',
    meaning: 'let a new outgoing connection take a port still in TIME_WAIT',
  },
  {
    name: 'net.ipv4.tcp_tw_reuse_delay',
    value: { kind: 'int', min: 1, max: INT_MAX, unit: 'ms' },
    scope: 'netns',
    side: 'client',
    defaultSource: 'kernel',
    kernelDefault: '1000',
    meaning: 'with tcp_tw_reuse, how long after the last timestamp a TIME_WAIT port may be reused',
  },
  {
    name: 'net.ipv4.tcp_timestamps',
    value: { kind: 'enum', values: { '0': 'off', '1': 'on, with random offsets per connection', '2': 'on, without random offsets' } },
    scope: 'netns',
    side: 'both',
    defaultSource: 'kernel',
    kernelDefault: '1',
    meaning: 'TCP timestamps (RFC 7323); tcp_tw_reuse=1 depends on them',
  },
  {
    name: 'net.ipv4.tcp_fin_timeout',
    value: { kind: 'int', min: 1, max: INT_MAX, unit: 's' },
    scope: 'netns',
    side: 'both',
    defaultSource: 'kernel',
    kernelDefault: '60',
    meaning: 'how long an orphaned connection stays in FIN-WAIT-2 (not the TIME_WAIT length, which is fixed at 60 s)',
  },
  {
    name: 'net.ipv4.tcp_max_tw_buckets',
    value: { kind: 'int', min: 0, max: INT_MAX },
    scope: 'netns',
    side: 'both',
    defaultSource: 'machine',
    meaning: 'most TIME_WAIT sockets kept; beyond it they are destroyed at once (TCPTimeWaitOverflow)',
  },
  {
    name: 'net.ipv4.ip_local_port_range',
    value: { kind: 'range', min: 1, max: 65535 },
    scope: 'netns',
    side: 'client',
    defaultSource: 'kernel',
    kernelDefault: '32768 60999',
    meaning: 'local ports for outgoing connections; they run out per destination (EADDRNOTAVAIL)',
  },
  {
    name: 'net.ipv4.tcp_synack_retries',
    value: { kind: 'int', min: 0, max: 255 },
    scope: 'netns',
    side: 'server',
    defaultSource: 'kernel',
    kernelDefault: '5',
    meaning: 'SYN-ACK retransmits for a half-open connection before it is dropped',
  },
  {
    name: 'net.ipv4.tcp_syn_retries',
    value: { kind: 'int', min: 1, max: 127 },
    scope: 'netns',
    side: 'client',
    defaultSource: 'kernel',
    kernelDefault: '6',
    meaning: 'SYN retransmits of a connect() before it fails with ETIMEDOUT',
  },
  {
    name: 'net.ipv4.tcp_syn_linear_timeouts',
    value: { kind: 'int', min: 0, max: 127 },
    scope: 'netns',
    side: 'client',
    defaultSource: 'kernel',
    kernelDefault: '4',
    meaning: 'how many SYN retransmits use linear (1 s steps) timeouts before exponential back-off',
  },
  {
    name: 'net.core.netdev_max_backlog',
    value: { kind: 'int', min: 1, max: INT_MAX },
    scope: 'global',
    side: 'both',
    defaultSource: 'kernel',
    meaning: 'packets queued per CPU between the driver and the stack',
    whyGlobal: 'it exists only in the initial network namespace',
  },
  {
    name: 'net.core.rmem_max',
    value: { kind: 'int', min: 0, max: INT_MAX, unit: 'bytes' },
    scope: 'global',
    side: 'both',
    defaultSource: 'machine',
    meaning: 'largest receive buffer SO_RCVBUF may ask for',
    whyGlobal: 'it is read-only inside a network namespace',
  },
  {
    name: 'net.core.wmem_max',
    value: { kind: 'int', min: 0, max: INT_MAX, unit: 'bytes' },
    scope: 'global',
    side: 'both',
    defaultSource: 'machine',
    meaning: 'largest send buffer SO_SNDBUF may ask for',
    whyGlobal: 'it is read-only inside a network namespace',
  },
  {
    name: 'net.core.rmem_default',
    value: { kind: 'int', min: 0, max: INT_MAX, unit: 'bytes' },
    scope: 'global',
    side: 'both',
    defaultSource: 'machine',
    meaning: 'default receive buffer of a socket',
    whyGlobal: 'it is read-only inside a network namespace',
  },
  {
    name: 'net.core.wmem_default',
    value: { kind: 'int', min: 0, max: INT_MAX, unit: 'bytes' },
    scope: 'global',
    side: 'both',
    defaultSource: 'machine',
    meaning: 'default send buffer of a socket',
    whyGlobal: 'it is read-only inside a network namespace',
  },
];

const BY_NAME = new Map(TUNABLES.map((t) => [t.name, t]));

/** A bad sysctl request; the message is one line that names the field and what is allowed. */
export class SysctlError extends LabError {
  constructor(
    message: string,
    readonly code: 'UNKNOWN' | 'GLOBAL' | 'INVALID' | 'UNSUPPORTED' | 'MISMATCH' | 'ROOT_NAMESPACE' | 'EXEC',
  ) {
    // Bad input or a kernel that refuses the value: the same on every point (exit 2).
    super(message, 2);
  }
}

/** Accepts `net.ipv4.tcp_tw_reuse` or `net/ipv4/tcp_tw_reuse`. */
export function normalizeName(name: string): string {
  return name.trim().replace(/\//g, '.');
}

/** Registry names closest to `name` (for "did you mean"). */
export function closeMatches(name: string, max = 3): string[] {
  const names = TUNABLES.map((t) => t.name);
  const tail = (n: string) => n.split('.').pop()!;
  const scored = names
    .map((n) => ({ n, d: Math.min(distance(name, n), distance(tail(name), tail(n))) }))
    .filter((x) => x.d <= Math.max(3, Math.floor(tail(name).length / 3)))
    .sort((a, b) => a.d - b.d)
    .map((x) => x.n);
  if (!scored.length) scored.push(closest(name, names));
  return scored.slice(0, max);
}

export function lookup(name: string): Tunable {
  const n = normalizeName(name);
  const t = BY_NAME.get(n);
  if (!t) {
    throw new SysctlError(
      `unknown sysctl \`${n}\`; did you mean ${closeMatches(n)
        .map((m) => `\`${m}\``)
        .join(' or ')}? (\`lab sysctls\` lists them)`,
      'UNKNOWN',
    );
  }
  return t;
}

export function describeAllowed(spec: ValueSpec): string {
  switch (spec.kind) {
    case 'int':
      return spec.max === INT_MAX
        ? `an integer >= ${spec.min}${spec.unit ? ` (${spec.unit})` : ''}`
        : `an integer from ${spec.min} to ${spec.max}${spec.unit ? ` (${spec.unit})` : ''}`;
    case 'enum':
      return `one of ${Object.entries(spec.values)
        .map(([v, m]) => `${v} (${m})`)
        .join(', ')}`;
    case 'range':
      return `two ports "LOW HIGH" from ${spec.min} to ${spec.max} with LOW <= HIGH`;
  }
}

/** Checks a value for a tunable and returns it as the kernel prints it. */
export function validateValue(t: Tunable, raw: string | number): string {
  const v = String(raw).trim();
  // "got VALUE: WHAT IS ALLOWED": the caller says where (a flag, a lab file's field path).
  const bad = () => new SysctlError(`got ${JSON.stringify(raw)}: ${describeAllowed(t.value)}`, 'INVALID');
  switch (t.value.kind) {
    case 'int': {
      if (!/^-?\d+$/.test(v)) throw bad();
      const n = Number(v);
      if (n < t.value.min || n > t.value.max) throw bad();
      return String(n);
    }
    case 'enum':
      if (!Object.hasOwn(t.value.values, v)) throw bad();
      return v;
    case 'range': {
      const m = /^(\d+)[\s,:-]+(\d+)$/.exec(v);
      if (!m) throw bad();
      const [lo, hi] = [Number(m[1]), Number(m[2])];
      if (lo < t.value.min || hi > t.value.max || lo > hi) throw bad();
      return `${lo} ${hi}`;
    }
  }
}

export interface SysctlSetting {
  name: string;
  value: string;
  tunable: Tunable;
}

/**
 * Parses and checks `name=value` for a host. Global tunables are refused with the
 * reason, unknown names with the closest matches.
 */
export function parseSetting(assignment: string): SysctlSetting {
  const i = assignment.indexOf('=');
  if (i <= 0) throw new SysctlError(`expected NAME=VALUE (e.g. net.core.somaxconn=128), got "${assignment}"`, 'INVALID');
  const t = lookup(assignment.slice(0, i));
  if (t.scope === 'global') {
    throw new SysctlError(`${t.name} cannot be set per host: ${t.whyGlobal}; the lab never changes the machine's own sysctls`, 'GLOBAL');
  }
  try {
    return { name: t.name, value: validateValue(t, assignment.slice(i + 1)), tunable: t };
  } catch (err) {
    throw new SysctlError(`${t.name}: ${(err as Error).message}`, 'INVALID');
  }
}

/** Normalizes what `sysctl -n` printed (tabs between fields) for comparison. */
export function normalizeRead(s: string): string {
  return s.trim().split(/\s+/).join(' ');
}
