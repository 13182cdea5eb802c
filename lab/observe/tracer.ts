// The kernel event tracer of a point (`trace: true`): bpftrace on the machine, attached to six
// tracepoints, keeping only the lab's own hosts by network-namespace inode, so it works the same
// for netns and Docker hosts. Started before the scenario (it waits for bpftrace's BEGIN, which
// runs once every probe is attached) and stopped after it (SIGINT: bpftrace runs END and exits).
//   sock:inet_sock_set_state     a socket's state change (TCP, IPv4)
//   tcp:tcp_retransmit_synack    a SYN-ACK sent again (the listener's host)
//   tcp:tcp_retransmit_skb       a segment sent again
//   tcp:tcp_send_reset           an RST sent, with the kernel's reason (sk_rst_reason)
//   tcp:tcp_receive_reset        an RST received by a socket
//   skb:kfree_skb                a TCP packet dropped, with the kernel's drop reason
//                                (QUEUE_PURGE, a closed socket's queue freed, is left out)
// Every event is one JSON line, its time on the sampler's clock (ms since the epoch: bpftrace's
// nsecs is CLOCK_MONOTONIC, moved by the offset Node reads between the two clocks). Bounded: past
// `cap` events bpftrace prints no more and counts the rest, and a perf-buffer loss bpftrace
// reports is counted too. The script is generated here from numbers only (inodes, reasons, the
// cap); no user input goes into it.
import { constants, closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { execa } from 'execa';
import type { Host } from '../runtime/runtime.js';
import { KERNEL_STATES } from './ss.js';

export const TRACE_KINDS = ['state', 'synack-retransmit', 'retransmit', 'reset-sent', 'reset-received', 'drop'] as const;
export type TraceKind = (typeof TRACE_KINDS)[number];

export interface TraceEvent {
  /** ms since the epoch, the sampler's clock. */
  t: number;
  host: string;
  kind: TraceKind;
  /** The connection from this host's side: its own address and port, the peer's. */
  local: string;
  lport: number;
  remote: string;
  rport: number;
  /** state: from → to; retransmit, reset-sent: the socket's state. */
  from?: string;
  to?: string;
  state?: string;
  /** drop: the skb drop reason; reset-sent: the RST reason (names as the running kernel has them). */
  reason?: string;
  /** drop, reset-sent (answering a packet): the TCP flags of the packet, e.g. "ACK", "SYN". */
  flags?: string;
}

export interface TraceSummary {
  /** Events kept (at most the cap). */
  events: number;
  /** Events past the cap, and events bpftrace reported lost: counted, not kept. */
  dropped: number;
  cap: number;
  /** When the probes were attached and when the tracer stopped, ms since the epoch. */
  startedAt: number;
  stoppedAt: number;
  /** Per host and kind, as the kernel counted them (every event, delivered or not). */
  counted: Record<string, Record<string, number>>;
  /** Per host, per kind, of the events kept (drops and resets also per reason: "drop TCP_LISTEN_OVERFLOW"). */
  byHost: Record<string, Record<string, number>>;
}

export interface TraceResult {
  summary: TraceSummary;
  events: TraceEvent[];
}

/** The tracer of one point; null from startTracer with the reason it cannot run. */
export interface Tracer {
  stop(): Promise<TraceResult>;
}

const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/** An enum's names from a tracepoint's print fmt (`__print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, …)`). */
export function symbolicNames(format: string, field: string): Map<number, string> {
  const at = format.indexOf(`__print_symbolic(REC->${field},`);
  const out = new Map<number, string>();
  if (at < 0) return out;
  // The list ends at the call's closing parenthesis: the first ")" outside braces.
  let depth = 0;
  let end = at + `__print_symbolic(REC->${field},`.length;
  for (; end < format.length; end++) {
    const ch = format[end];
    if (ch === '{') depth++;
    else if (ch === '}') depth--;
    else if (ch === ')' && depth === 0) break;
  }
  for (const m of format.slice(at, end).matchAll(/\{\s*(\d+)\s*,\s*"([A-Za-z0-9_]+)"\s*\}/g)) out.set(Number(m[1]), m[2]!);
  return out;
}

/** Whether tracefs is mounted where bpftrace looks for tracepoints. */
const tracefsMounted = () => existsSync('/sys/kernel/tracing/events');

/**
 * Where tracefs is not mounted (a fresh machine), a command runs in a mount namespace of its
 * own with tracefs mounted there: the machine's mounts stay as they were. argv prefix.
 */
const WITH_TRACEFS = ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount -t tracefs tracefs /sys/kernel/tracing && exec "$@"', 'sh'];

const formats = new Map<string, string>();
function readFormat(event: string): string {
  const known = formats.get(event);
  if (known !== undefined) return known;
  let text = '';
  for (const root of TRACEFS) {
    try {
      text = readFileSync(`${root}/events/${event}/format`, 'utf8');
      break;
    } catch {
      // The next mount point.
    }
  }
  if (!text && process.getuid?.() === 0) {
    const r = spawnSync(WITH_TRACEFS[0]!, [...WITH_TRACEFS.slice(1), 'cat', `/sys/kernel/tracing/events/${event}/format`], { encoding: 'utf8' });
    if (r.status === 0) text = r.stdout;
  }
  formats.set(event, text);
  return text;
}

/** The running kernel's drop reasons (skb:kfree_skb) and RST reasons (tcp:tcp_send_reset). */
export function kernelReasons(): { drop: Map<number, string>; reset: Map<number, string> } {
  return { drop: symbolicNames(readFormat('skb/kfree_skb'), 'reason'), reset: symbolicNames(readFormat('tcp/tcp_send_reset'), 'reason') };
}

const FLAG_BITS: Array<[number, string]> = [
  [0x02, 'SYN'],
  [0x10, 'ACK'],
  [0x01, 'FIN'],
  [0x04, 'RST'],
  [0x08, 'PSH'],
];
export const tcpFlags = (b: number) =>
  FLAG_BITS.filter(([bit]) => b & bit)
    .map(([, n]) => n)
    .join('|') || 'none';

/** A socket's network namespace inode (BTF types: bpftrace resolves the fields). */
const sockNs = (p: string) => `((struct sock *)${p})->__sk_common.skc_net.net->ns.inum`;
const devNs = (skb: string) => `(${skb}->dev != 0 ? ${skb}->dev->nd_net.net->ns.inum : 0)`;

/** Reads the IPv4/TCP headers of $skb into $sa $da $sp $dp $fl (the packet's source and destination); sets $tcp. */
const PACKET = `
    $ip = (struct iphdr *)($skb->head + $skb->network_header);
    $tcp = $ip->protocol == 6;
    $th = (uint8 *)$ip + ((*(uint8 *)$ip) & 15) * 4;
    $sa = $ip->saddr; $da = $ip->daddr;
    $sp = (*$th << 8) | *($th + 1); $dp = (*($th + 2) << 8) | *($th + 3); $fl = *($th + 13);`;

/**
 * The bpftrace program: hosts by namespace inode (index + 1 in @host), at most `cap` events
 * printed. Fields: k kind, t nsecs, h host index, la lp ra rp the connection from the host's
 * side, o/n/s states, r reason, f packet flags.
 */
export function bpftraceScript(inodes: number[], cap: number, queuePurge: number | undefined): string {
  for (const n of [...inodes, cap]) if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bpftraceScript: not a count or inode: ${n}`);
  // Counted in the kernel too (@k), so an event bpftrace failed to deliver shows as lost.
  const emit = (kind: TraceKind, fmt: string, args: string) =>
    `@k[$h, "${kind}"] = count(); if (@n < ${cap}) { printf("{\\"t\\":%llu,\\"h\\":%d,\\"k\\":\\"${kind}\\",${fmt}}\\n", nsecs, $h, ${args}); } else { @over++; } @n++;`;
  const conn = `\\"la\\":\\"%s\\",\\"lp\\":%u,\\"ra\\":\\"%s\\",\\"rp\\":%u`;
  const fromArgs = 'ntop(args->saddr), args->sport, ntop(args->daddr), args->dport';
  return `BEGIN {
${inodes.map((ino, i) => `  @host[${ino}] = ${i + 1};`).join('\n')}
  printf("{\\"k\\":\\"ready\\"}\\n");
}
tracepoint:sock:inet_sock_set_state /args->protocol == 6 && args->family == 2/ {
  $h = @host[${sockNs('args->skaddr')}];
  if ($h) { ${emit('state', `${conn},\\"o\\":%d,\\"n\\":%d`, `${fromArgs}, args->oldstate, args->newstate`)} }
}
tracepoint:tcp:tcp_retransmit_synack /args->family == 2/ {
  $h = @host[${sockNs('args->skaddr')}];
  if ($h) { ${emit('synack-retransmit', `${conn}`, fromArgs)} }
}
tracepoint:tcp:tcp_retransmit_skb /args->family == 2/ {
  $h = @host[${sockNs('args->skaddr')}];
  if ($h) { ${emit('retransmit', `${conn},\\"s\\":%d`, `${fromArgs}, args->state`)} }
}
tracepoint:tcp:tcp_receive_reset /args->family == 2/ {
  $h = @host[${sockNs('args->skaddr')}];
  if ($h) { ${emit('reset-received', `${conn}`, fromArgs)} }
}
tracepoint:tcp:tcp_send_reset {
  $skb = (struct sk_buff *)args->skbaddr;
  $h = @host[args->skaddr != 0 ? ${sockNs('args->skaddr')} : ${devNs('$skb')}];
  if ($h) {
    if (args->skbaddr != 0) {
      // An RST answering a packet: the connection is that packet's, seen from this host.
${PACKET}
      if ($tcp) { ${emit('reset-sent', `${conn},\\"s\\":%d,\\"r\\":%u,\\"f\\":%u`, 'ntop($da), $dp, ntop($sa), $sp, args->state, args->reason, $fl')} }
    } else {
      // An active reset (a socket aborted): the socket's own addresses.
      $sk = (struct sock *)args->skaddr;
      $rport = $sk->__sk_common.skc_dport;
      ${emit(
        'reset-sent',
        `${conn},\\"s\\":%d,\\"r\\":%u`,
        'ntop($sk->__sk_common.skc_rcv_saddr), $sk->__sk_common.skc_num, ntop($sk->__sk_common.skc_daddr), ($rport >> 8) | (($rport & 255) << 8), args->state, args->reason',
      )}
    }
  }
}
tracepoint:skb:kfree_skb /args->protocol == 2048${queuePurge === undefined ? '' : ` && args->reason != ${queuePurge}`}/ {
  $skb = (struct sk_buff *)args->skbaddr;
  $h = @host[args->rx_sk != 0 ? ${sockNs('args->rx_sk')} : ${devNs('$skb')}];
  if ($h) {
${PACKET}
    if ($tcp) { ${emit('drop', `${conn},\\"r\\":%u,\\"f\\":%u`, 'ntop($da), $dp, ntop($sa), $sp, args->reason, $fl')} }
  }
}
END {
  printf("{\\"k\\":\\"end\\",\\"n\\":%d,\\"over\\":%d}\\n", @n, @over);
  print(@k);
  clear(@host); clear(@n); clear(@over); clear(@k);
}
`;
}

interface RawLine {
  k: string;
  t?: number;
  h?: number;
  la?: string;
  lp?: number;
  ra?: string;
  rp?: number;
  o?: number;
  n?: number;
  s?: number;
  r?: number;
  f?: number;
  over?: number;
}

const state = (n: number | undefined) => (n === undefined ? undefined : (KERNEL_STATES[n] ?? String(n)));

/** bpftrace's output as events: host names by index, times moved by offsetMs (epoch ms − monotonic ms). */
export function parseTrace(
  text: string,
  hosts: string[],
  offsetMs: number,
  reasons = kernelReasons(),
): { events: TraceEvent[]; over: number; lost: number; counted: Record<string, Record<string, number>> } {
  const events: TraceEvent[] = [];
  let over = 0;
  // The kernel's own counts (END's print(@k): "@k[2, drop]: 4"), per host and kind.
  const counted: Record<string, Record<string, number>> = {};
  for (const m of text.matchAll(/^@k\[(\d+), ([a-z-]+)\]: (\d+)$/gm)) {
    const host = hosts[Number(m[1]) - 1] ?? `#${m[1]}`;
    (counted[host] ??= {})[m[2]!] = Number(m[3]);
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let r: RawLine;
    try {
      r = JSON.parse(line) as RawLine;
    } catch {
      continue; // a line cut short by a kill
    }
    if (r.k === 'end') over = r.over ?? 0;
    if (!(TRACE_KINDS as readonly string[]).includes(r.k) || r.t === undefined || r.h === undefined) continue;
    const kind = r.k as TraceKind;
    const e: TraceEvent = {
      t: Math.round((r.t / 1e6 + offsetMs) * 1000) / 1000,
      host: hosts[r.h - 1] ?? `#${r.h}`,
      kind,
      local: r.la ?? '',
      lport: r.lp ?? 0,
      remote: r.ra ?? '',
      rport: r.rp ?? 0,
    };
    if (kind === 'state') Object.assign(e, { from: state(r.o), to: state(r.n) });
    if (r.s !== undefined) e.state = state(r.s);
    if (r.r !== undefined) e.reason = (kind === 'drop' ? reasons.drop : reasons.reset).get(r.r) ?? String(r.r);
    if (r.f !== undefined) e.flags = tcpFlags(r.f);
    events.push(e);
  }
  // Lost: what bpftrace says it lost, or (when larger) what the kernel counted and never arrived.
  const reported = [...text.matchAll(/Lost (\d+) events/g)].reduce((s, m) => s + Number(m[1]), 0);
  const inKernel = Object.values(counted).reduce((s, k) => s + Object.values(k).reduce((a, b) => a + b, 0), 0);
  const lost = Math.max(reported, inKernel - over - events.length);
  return { events: events.sort((a, b) => a.t - b.t), over, lost, counted };
}

/** Counts per host and kind; drops and resets sent also per reason, "drop TCP_LISTEN_OVERFLOW". */
export function countEvents(events: TraceEvent[]): TraceSummary['byHost'] {
  const out: TraceSummary['byHost'] = {};
  for (const e of events) {
    const h = (out[e.host] ??= {});
    h[e.kind] = (h[e.kind] ?? 0) + 1;
    if (e.reason) h[`${e.kind} ${e.reason}`] = (h[`${e.kind} ${e.reason}`] ?? 0) + 1;
    if (e.kind === 'state') h[`state ${e.from}>${e.to}`] = (h[`state ${e.from}>${e.to}`] ?? 0) + 1;
  }
  return out;
}

/** The network namespace inode a host's processes run in. */
export async function netnsInode(host: Host): Promise<number> {
  const r = await host.exec(['readlink', '/proc/self/ns/net'], { timeoutMs: 10_000 });
  const m = /^net:\[(\d+)\]$/.exec(r.stdout.trim());
  if (r.exitCode !== 0 || !m)
    throw new Error(`${host.name}: cannot read its network namespace (readlink /proc/self/ns/net: ${r.stderr.trim() || r.stdout.trim()})`);
  return Number(m[1]);
}

/** Why the tracer cannot run on this machine, or null. */
export async function tracerUnavailable(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'the tracer needs root (bpftrace loads BPF programs): the point runs without it';
  const v = await execa('bpftrace', ['--version'], { reject: false });
  if (v.exitCode !== 0) return 'bpftrace is missing (apt-get install bpftrace): the point runs without the tracer';
  if (!readFormat('skb/kfree_skb'))
    return 'the kernel tracepoints are not visible (tracefs cannot be mounted at /sys/kernel/tracing): the point runs without the tracer';
  return null;
}

/** ms to add to a CLOCK_MONOTONIC time (ms) to get epoch ms. */
export const monotonicOffsetMs = () => Date.now() - Number(process.hrtime.bigint()) / 1e6;

export const TRACE_CAP = 200_000;

/** A running bpftrace whose script printed {"k":"ready"} in BEGIN: every probe is attached. */
export interface Bpftrace {
  /** SIGINT (bpftrace runs END and exits), SIGKILL after 10 s; its output file's text and its stderr. */
  stop(): Promise<{ text: string; stderr: string }>;
}

/** Starts bpftrace on `script` (made here from numbers only), its output into `file` (made new, never through a link); resolves once it is attached. */
export async function spawnBpftrace(script: string, file: string): Promise<Bpftrace> {
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  let proc: ChildProcess;
  try {
    // setpriv --pdeathsig: bpftrace dies with this process, however it ends (nothing left attached).
    // Without tracefs mounted, in a mount namespace that mounts it (unshare and sh exec in
    // place: bpftrace's parent is still this process).
    const argv = ['setpriv', '--pdeathsig', 'KILL', 'bpftrace', '-q', '-e', script];
    const full = tracefsMounted() ? argv : [...WITH_TRACEFS, ...argv];
    proc = spawn(full[0]!, full.slice(1), { stdio: ['ignore', fd, 'pipe'] });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<void>((resolve) => proc.on('close', () => resolve()));
  let stderr = '';
  proc.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  proc.on('error', (err) => (stderr += `ERROR: ${err.message}\n`));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (readFileSync(file, 'utf8').includes('"k":"ready"')) break;
    if (proc.exitCode !== null || proc.signalCode !== null || /ERROR: spawn/.test(stderr) || Date.now() > deadline) {
      proc.kill('SIGKILL');
      await exited;
      const why = stderr.split('\n').find((l) => /ERROR/.test(l) && !/RLIMIT_MEMLOCK/.test(l)) ?? 'it did not attach within 30 s';
      throw new Error(`bpftrace: ${why.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    async stop() {
      proc.kill('SIGINT');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
      return { text: readFileSync(file, 'utf8'), stderr };
    },
  };
}

/**
 * Starts bpftrace for these hosts; its output goes to `file` (made new, never through a link).
 * Resolves once every probe is attached.
 */
export async function startTracer(hosts: Host[], file: string, cap = TRACE_CAP): Promise<Tracer> {
  const inodes = await Promise.all(hosts.map(netnsInode));
  const reasons = kernelReasons();
  const purge = [...reasons.drop].find(([, n]) => n === 'QUEUE_PURGE')?.[0];
  const bt = await spawnBpftrace(bpftraceScript(inodes, cap, purge), file);
  const names = hosts.map((h) => h.name);
  const startedAt = Date.now();
  return {
    async stop() {
      const { text, stderr } = await bt.stop();
      const offset = monotonicOffsetMs();
      const stoppedAt = Date.now();
      const { events, over, lost, counted } = parseTrace(text + '\n' + stderr, names, offset, reasons);
      return { events, summary: { events: events.length, dropped: over + lost, cap, startedAt, stoppedAt, counted, byHost: countEvents(events) } };
    },
  };
}
