// timewait: short connections (one request each) for a while; who closes first decides where
// TIME_WAIT lands. The client's tcp_tw_reuse, tcp_timestamps and ip_local_port_range decide
// whether its local ports run out.
// Kernel model: TIME_WAIT sits on the side that closes first and lasts a fixed 60 s. When the
// client closes first, each connection holds its local port for those 60 s, so with R ports
// in ip_local_port_range the client makes exactly R connections to one destination, then
// connect() fails with EADDRNOTAVAIL — unless tcp_tw_reuse=1 with timestamps, which hands a
// TIME_WAIT port to a new connection after tcp_tw_reuse_delay (TWRecycled). tcp_tw_reuse=2
// (the namespace default) is for loopback only: no help across the lab network. When the
// server closes first, the client's ports are free at once.
import { z } from 'zod';
import { int, oneOf } from '../../core/fields.js';
import type { ChurnResult } from '../in-host/churn.js';
import { parseListeners, parseSockets } from '../observe/ss.js';
import { waitForLine } from '../runtime/proc-wait.js';
import type { Host } from '../runtime/runtime.js';
import { orphanFinWait2Sec, portsRunOut, reuseConnections, TIME_WAIT_SEC } from '../model/kernel.js';
import {
  atLeast,
  atMost,
  counter,
  counterOf,
  defineScenario,
  equal,
  inconclusive,
  numSysctl,
  type Observations,
  type Prediction,
  type RuleVerdict,
  runInHost,
  setting,
  settingText,
  settle,
  type Settle,
  unsettledReason,
  within,
} from './common.js';
import { countOf } from '../report/timelines.js';

const Options = z
  .object({
    /** Who closes each connection first: the client, or the server (Connection: close). */
    closer: oneOf(['client', 'server']).default('client'),
    /** How long the short connections go on, ms. */
    durationMs: int(200, 600000).default(3000),
    /** Connections in flight at a time. */
    concurrency: int(1, 256).default(4),
    /**
     * After the churn: connections to a peer that never closes, which the client then closes and
     * abandons (orphaned FIN-WAIT-2), watched until the kernel drops them, tcp_fin_timeout later.
     */
    orphans: int(0, 1000).default(0),
  })
  .strict();

export interface Observed extends ChurnResult {
  /** The orphaned FIN-WAIT-2 sockets: how many right after the close, and how long until none was left (s). */
  orphans: { made: number; atClose: number; goneAfterSec: number | null } | null;
  timeWait: { server: number; client: number };
  /** How the TIME_WAIT reading waited for the last closes to end. */
  timeWaitSettle?: Settle;
  timeWaitLifetimeSec: number | null;
  eaddrnotavail: number;
}

export interface Predicted {
  closer: 'client' | 'server';
  /** Connections in flight at a time (they hold ports too). */
  concurrency: number;
  /** tcp_max_tw_buckets on the closer. */
  maxTwBuckets: number;
  /** tcp_timestamps on the server (reuse needs them on both sides). */
  timestampsServer: number;
  /** The closer's TIME_WAIT cap is below what the run needs (client closer: the ports; in-flight connections aside). */
  capped: boolean;
  /** Connections through the ports with tcp_tw_reuse=1, when it applies. */
  reuseWindow: { rounds: number; from: number; to: number } | null;
  /** Local ports connect() can use: the range, less those a listener on the client holds. */
  ports: number;
  busyPorts: number;
  reuse: number;
  timestamps: number;
  reuseDelayMs: number;
  effectiveReuse: boolean;
  exhaust: boolean;
  timeWaitSec: number;
  /** tcp_fin_timeout on the client: how long an orphaned FIN-WAIT-2 lasts, s. */
  finTimeoutSec: number;
}

/** The local ports of every TCP listener on a host. */
async function listeningPorts(h: Host): Promise<number[]> {
  const r = await h.exec(['ss', '-Hltn'], { timeoutMs: 15_000 });
  if (r.exitCode !== 0) throw new Error(`ss on ${h.name}: ${r.stderr.trim()}`);
  return parseListeners(r.stdout).map((l) => l.port);
}

const CLOSING = new Set(['FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSING', 'LAST-ACK', 'CLOSE-WAIT']);

/** TIME-WAIT sockets to or from PORT on a host, with the time left on each (s), and how many are still closing. */
async function timeWaits(h: Host, port: number): Promise<{ tw: number[]; closing: number }> {
  const r = await h.exec(['ss', '-Htano', `( sport = :${port} or dport = :${port} )`], { timeoutMs: 15_000 });
  if (r.exitCode !== 0) throw new Error(`ss on ${h.name}: ${r.stderr.trim()}`);
  const rows = parseSockets(r.stdout);
  return {
    tw: rows.flatMap((x) => (x.state === 'TIME-WAIT' && x.timer ? [x.timer.seconds] : [])),
    closing: rows.filter((x) => CLOSING.has(x.state)).length,
  };
}

/** TIME_WAIT is read once the closes have ended: no socket of the port still closing has changed for this long, … */
const TW_STILL_MS = 300;
/** … within this bound. */
const TW_BOUND_MS = 3000;

/** The silent peer's port on the server host: the lab port + 1, or + 2 when that is the control port. */
const silentPort = (port: number, controlPort: number) => (port + 1 === controlPort ? port + 2 : port + 1);

/** Orphaned FIN-WAIT-2 sockets toward PORT on the client. */
async function finWait2(h: Host, port: number): Promise<number> {
  const r = await h.exec(['ss', '-Htn', 'state', 'fin-wait-2', `( dport = :${port} )`], { timeoutMs: 15_000 });
  if (r.exitCode !== 0) throw new Error(`ss on ${h.name}: ${r.stderr.trim()}`);
  return r.stdout.split('\n').filter(Boolean).length;
}

/** Makes N orphans toward a silent peer on the server host and times how long the kernel keeps them. */
async function watchOrphans(server: Host, client: Host, port: number, n: number, finTimeoutSec: number): Promise<Observed['orphans']> {
  const peer = server.start([...server.node('dist/lab/in-host/silent.js'), String(port)], 'silent');
  try {
    await waitForLine(peer, /"event":"listening"/, 15_000, 'silent peer');
    const made = await runInHost<{ closed: number; at: number }>(client, 'orphans', [server.address, port, n], 30_000);
    const atClose = await finWait2(client, port);
    const end = made.at + (finTimeoutSec + 5) * 1000;
    while (Date.now() < end) {
      if ((await finWait2(client, port)) === 0) return { made: made.closed, atClose, goneAfterSec: Math.round((Date.now() - made.at) / 100) / 10 };
      await new Promise((r) => setTimeout(r, 200));
    }
    return { made: made.closed, atClose, goneAfterSec: null };
  } finally {
    await peer.stop();
  }
}

/** What each rule of the judge reads. */
interface Case {
  o: Observed;
  p: Predicted;
  obs: Observations;
  /** The side that does not close first. */
  other: 'client' | 'server';
  closerHost: string;
  /** Why the TIME_WAIT counts cannot be judged (no connection succeeded; the closes had not ended), or undefined. */
  few: string | undefined;
  /** tcp_max_tw_buckets, and whether the connections made went past it. */
  B: number;
  overCap: boolean;
}
type Rule = (c: Case) => RuleVerdict[];

/** TIME_WAIT on the side that closes first, none on the other, and how long it lasts. */
const timeWaitSides: Rule = ({ o, p, other, few, B, overCap }) => [
  overCap
    ? p.closer === 'client' && o.durationMs < (TIME_WAIT_SEC - 2) * 1000
      ? equal(
          `TIME_WAIT on the closer (${p.closer}) = tcp_max_tw_buckets`,
          B,
          o.timeWait[p.closer],
          `tcp_max_tw_buckets=${B} caps TIME_WAIT; closes past it skip TIME_WAIT (TCPTimeWaitOverflow)`,
          few,
        )
      : atMost(`TIME_WAIT on the closer (${p.closer}) ≤ tcp_max_tw_buckets`, B, o.timeWait[p.closer], `tcp_max_tw_buckets=${B} caps TIME_WAIT`, few)
    : atLeast(`TIME_WAIT on the closer (${p.closer}), lab port`, 1, o.timeWait[p.closer], 'the side that sends the first FIN ends in TIME_WAIT', few),
  equal(
    `no TIME_WAIT on the other side (${other}), lab port`,
    0,
    o.timeWait[other],
    'the side that closes second goes through LAST-ACK to CLOSED',
    few,
  ),
  overCap
    ? inconclusive(
        'TIME_WAIT lasts 60 s',
        `with tcp_max_tw_buckets=${B} the TIME_WAIT sockets left are the first ${B}, made before the last connection: their age is not known`,
      )
    : within(
        'TIME_WAIT lasts 60 s (time left on the newest + its age, s)',
        TIME_WAIT_SEC - 1.5,
        TIME_WAIT_SEC + 1,
        o.timeWaitLifetimeSec,
        'a fixed 60 s (TCP_TIMEWAIT_LEN); tcp_fin_timeout does not change it',
        few,
      ),
];

/** Closes past tcp_max_tw_buckets are counted (a client closer's count only). */
const twOverflow: Rule = ({ o, p, obs, closerHost, few, B, overCap }) => {
  const v: RuleVerdict[] = [];
  // Only a client closer's count follows: on a server closer, the client's next SYN from a port
  // recycles the TIME_WAIT socket of that 4-tuple, so how many closes meet a full cap is timing.
  if (overCap && p.closer === 'client') {
    const n = o.ok - B;
    v.push(
      within(
        `TCPTimeWaitOverflow on the closer = connections − tcp_max_tw_buckets (${o.ok} − ${B}, ± in flight)`,
        Math.max(0, n - p.concurrency),
        n + p.concurrency,
        counter(obs, closerHost, 'TcpExtTCPTimeWaitOverflow'),
        'each close past the cap is counted and skips TIME_WAIT',
        few,
      ),
    );
  }
  return v;
};

/** Whether the client's ports run out: who closes, the cap, the range, and tcp_tw_reuse. */
const ports: Rule = ({ o, p, obs, B }) => {
  const v: RuleVerdict[] = [];
  if (p.closer === 'server') {
    v.push(equal('no EADDRNOTAVAIL when the server closes first', 0, o.eaddrnotavail, "the client's ports are free as soon as its side is closed"));
  } else if (p.capped) {
    v.push(
      equal(
        `no EADDRNOTAVAIL: tcp_max_tw_buckets ${B} is below the ${p.ports} ports`,
        0,
        o.eaddrnotavail,
        'closes past the cap skip TIME_WAIT and free their port at once',
      ),
    );
  } else if (B < p.ports) {
    v.push(
      inconclusive(
        'ports run out or not',
        `tcp_max_tw_buckets ${B} is within ${p.concurrency} connections in flight of the ${p.ports} ports: it depends on timing`,
      ),
    );
  } else if (!p.exhaust) {
    v.push(
      equal(
        'no EADDRNOTAVAIL (fewer attempts than local ports)',
        0,
        o.eaddrnotavail,
        `the client tried ${o.attempts} connections, ip_local_port_range has ${p.ports} ports`,
      ),
    );
  } else if (p.effectiveReuse) {
    const why = `tcp_tw_reuse=1 with timestamps: a TIME_WAIT port is reused after ${p.reuseDelayMs} ms`;
    if (o.durationMs <= p.reuseDelayMs)
      v.push(inconclusive('reuse=1 with timestamps avoids port exhaustion', `the run (${o.durationMs} ms) was not longer than tcp_tw_reuse_delay`));
    else {
      v.push(atLeast('reuse=1 with timestamps avoids port exhaustion (connections made)', p.ports + 1, o.ok, why));
      v.push(atLeast('TWRecycled', 1, counter(obs, 'loadgen-1', 'TcpExtTWRecycled'), why));
      const w = p.reuseWindow!;
      v.push(
        o.eaddrnotavail > 0
          ? within(
              `connections = ports × ceil(run / tcp_tw_reuse_delay) (${p.ports} × ${w.rounds}, a round either way)`,
              w.from,
              w.to,
              o.ok,
              `${p.ports} ports, reused every ${p.reuseDelayMs} ms over ${o.durationMs} ms`,
            )
          : inconclusive('connections = ports × rounds', 'the client never ran out of free ports: it was slower than the reuse'),
      );
    }
  } else {
    const why =
      p.reuse === 2
        ? 'tcp_tw_reuse=2 reuses ports for loopback only, not across the lab network'
        : p.reuse === 1
          ? p.timestamps === 1
            ? 'tcp_tw_reuse=1 needs timestamps on both sides: the server has tcp_timestamps=0'
            : 'tcp_tw_reuse=1 needs tcp_timestamps=1'
          : 'tcp_tw_reuse=0: each port is held for the 60 s of TIME_WAIT';
    const busy = p.busyPorts ? ` (${p.busyPorts} of the range held by a listener on the client)` : '';
    v.push(equal('connections made = local ports (then the ports run out)', p.ports, o.ok, why + busy));
    v.push(atLeast('connect() failed with EADDRNOTAVAIL', 1, o.eaddrnotavail, why));
    v.push(equal('TWRecycled', 0, counter(obs, 'loadgen-1', 'TcpExtTWRecycled'), why));
  }
  return v;
};

/** Orphaned FIN-WAIT-2 sockets: kept tcp_fin_timeout, then dropped. */
const orphans: Rule = ({ o, p, B }) => {
  const v: RuleVerdict[] = [];
  if (o.orphans) {
    const fin = p.finTimeoutSec;
    const why = `an orphaned FIN-WAIT-2 is kept tcp_fin_timeout (${fin} s), then dropped; TIME_WAIT's 60 s does not apply`;
    // Orphans with a timer of 60 s or less are TIME_WAIT-kind sockets: they count against tcp_max_tw_buckets too.
    const room = p.closer === 'client' && B < o.ok + o.orphans.made ? `tcp_max_tw_buckets ${B} leaves no room for them` : undefined;
    v.push(
      equal(
        'orphaned FIN-WAIT-2 sockets right after the close',
        o.orphans.made,
        o.orphans.atClose,
        'the peer never closes: each waits for its FIN',
        room,
      ),
    );
    const life = orphanFinWait2Sec(fin);
    v.push(
      life === null
        ? inconclusive(
            'orphaned FIN-WAIT-2 lasts tcp_fin_timeout',
            `tcp_fin_timeout ${fin} s is below the kernel's floor of 3.5 retransmission timeouts`,
          )
        : within('orphaned FIN-WAIT-2 lasts tcp_fin_timeout (s until none left)', life - 0.5, life + 2, o.orphans.goneAfterSec, why, room),
    );
  }
  return v;
};

const RULES: Rule[] = [timeWaitSides, twOverflow, ports, orphans];

export const timewait = defineScenario<z.infer<typeof Options>, Observed, Predicted>({
  name: 'timewait',
  options: Options,
  async drive(ctx) {
    const o = ctx.options;
    const range = (ctx.clientSysctl('net.ipv4.ip_local_port_range') ?? '').trim().split(/\s+/).map(Number);
    if (range.length !== 2 || range.some((x) => !Number.isInteger(x)))
      throw new Error(`net.ipv4.ip_local_port_range was not read back on the loadgen`);
    // A port in the range that a listener on the client holds is not free for connect() either
    // (on Docker, the engine's DNS resolver listens on 127.0.0.11 at a random port of the
    // default range, which now and then falls into a narrowed one).
    const [lo, hi] = [range[0]!, range[1]!];
    const held = await listeningPorts(ctx.client);
    const busyPorts = [...new Set(held)].filter((p) => p >= lo && p <= hi).length;
    const ports = hi - lo + 1 - busyPorts;
    const reuse = numSysctl(ctx.clientSysctl, 'net.ipv4.tcp_tw_reuse');
    const timestamps = numSysctl(ctx.clientSysctl, 'net.ipv4.tcp_timestamps');
    const reuseDelayMs = ctx.clientSysctl('net.ipv4.tcp_tw_reuse_delay') === null ? 1000 : numSysctl(ctx.clientSysctl, 'net.ipv4.tcp_tw_reuse_delay');
    const timestampsServer = numSysctl(ctx.serverSysctl, 'net.ipv4.tcp_timestamps');
    const maxTwBuckets = numSysctl(o.closer === 'client' ? ctx.clientSysctl : ctx.serverSysctl, 'net.ipv4.tcp_max_tw_buckets');
    const churn = await runInHost<ChurnResult>(
      ctx.client,
      'churn',
      [ctx.server.address, ctx.port, o.closer, o.durationMs, o.concurrency],
      o.durationMs + 30_000,
    );
    // Once the last closes have ended: the sockets of the port still closing, on both sides, hold still.
    const read = await settle(
      () => Promise.all([timeWaits(ctx.server, ctx.port), timeWaits(ctx.client, ctx.port)]),
      ([s, c]) => `${s.closing},${c.closing}`,
      { stillMs: TW_STILL_MS, boundMs: TW_BOUND_MS },
    );
    const [serverTw, clientTw] = read.value.map((x) => x.tw) as [number[], number[]];
    const seenAt = Date.now();
    const closerTw = o.closer === 'client' ? clientTw : serverTw;
    // The newest TIME_WAIT socket's time left, plus the time since the last connection closed:
    // its whole lifetime.
    const lifetime =
      closerTw.length && churn.lastOkAt !== null ? Math.round((Math.max(...closerTw) + (seenAt - churn.lastOkAt) / 1000) * 10) / 10 : null;
    const run = portsRunOut({ ports, inFlight: o.concurrency, reuse, timestampsClient: timestamps, timestampsServer, maxTwBuckets });
    const effectiveReuse = run.reuses;
    const capped = o.closer === 'client' ? run.capped : maxTwBuckets < churn.ok;
    const exhaust = o.closer === 'client' && !capped && churn.attempts > ports;
    const finTimeoutSec = numSysctl(ctx.clientSysctl, 'net.ipv4.tcp_fin_timeout');
    const orphans =
      o.orphans > 0 ? await watchOrphans(ctx.server, ctx.client, silentPort(ctx.port, ctx.controlPort), o.orphans, finTimeoutSec) : null;
    const observed: Observed = {
      ...churn,
      orphans,
      timeWait: { server: serverTw.length, client: clientTw.length },
      timeWaitSettle: read.settle,
      timeWaitLifetimeSec: lifetime,
      eaddrnotavail: churn.errors['EADDRNOTAVAIL'] ?? 0,
    };
    const predicted: Predicted = {
      closer: o.closer,
      concurrency: o.concurrency,
      maxTwBuckets,
      timestampsServer,
      capped,
      reuseWindow: effectiveReuse ? reuseConnections(ports, o.durationMs, reuseDelayMs) : null,
      ports,
      busyPorts,
      reuse,
      timestamps,
      reuseDelayMs,
      effectiveReuse,
      exhaust,
      timeWaitSec: TIME_WAIT_SEC,
      finTimeoutSec,
    };
    return { observed, predicted };
  },
  judge(_ctx, { observed: o, predicted: p }, obs) {
    const B = p.maxTwBuckets;
    const c: Case = {
      o,
      p,
      obs,
      other: p.closer === 'client' ? 'server' : 'client',
      closerHost: p.closer === 'client' ? 'loadgen-1' : 'server',
      few: o.ok === 0 ? 'no connection succeeded' : unsettledReason('the closes (sockets of the port still closing)', o.timeWaitSettle),
      B,
      overCap: B < o.ok,
    };
    return RULES.flatMap((rule) => rule(c));
  },
  model: [
    { name: 'net.ipv4.ip_local_port_range', side: 'client', rule: 'closer client: the ports one destination can use; each is held for TIME_WAIT' },
    {
      name: 'net.ipv4.tcp_tw_reuse',
      side: 'client',
      rule: '1 with timestamps on both sides: a TIME_WAIT port is reused after tcp_tw_reuse_delay; 2: loopback only',
    },
    { name: 'net.ipv4.tcp_tw_reuse_delay', side: 'client', rule: 'with reuse: connections = ports × ceil(run / delay)' },
    { name: 'net.ipv4.tcp_timestamps', side: 'client', rule: 'tcp_tw_reuse=1 needs timestamps' },
    { name: 'net.ipv4.tcp_timestamps', side: 'server', rule: 'tcp_tw_reuse=1 needs timestamps on both sides' },
    { name: 'net.ipv4.tcp_max_tw_buckets', side: 'client', rule: 'caps TIME_WAIT on the client; past it closes skip TIME_WAIT and free their port' },
    { name: 'net.ipv4.tcp_max_tw_buckets', side: 'server', rule: 'caps TIME_WAIT on the server when it closes first' },
    {
      name: 'net.ipv4.tcp_fin_timeout',
      side: 'client',
      effect: 'none',
      rule: 'TIME_WAIT stays 60 s (tcp_fin_timeout bounds orphaned FIN-WAIT-2 only)',
    },
    { name: 'net.ipv4.tcp_tw_reuse', side: 'server', effect: 'none', rule: 'tcp_tw_reuse acts on connections a host opens; the server only accepts' },
  ],
  predict(c, o) {
    const [lo, hi] = settingText(c, 'client', 'net.ipv4.ip_local_port_range').split(/\s+/).map(Number) as [number, number];
    const ports = hi - lo + 1;
    const B = setting(c, o.closer === 'client' ? 'client' : 'server', 'net.ipv4.tcp_max_tw_buckets');
    const reuse = setting(c, 'client', 'net.ipv4.tcp_tw_reuse');
    const ts = [setting(c, 'client', 'net.ipv4.tcp_timestamps'), setting(c, 'server', 'net.ipv4.tcp_timestamps')] as const;
    const delay = setting(c, 'client', 'net.ipv4.tcp_tw_reuse_delay');
    const run = portsRunOut({ ports, inFlight: o.concurrency, reuse, timestampsClient: ts[0], timestampsServer: ts[1], maxTwBuckets: B });
    const out: Prediction[] = [
      { what: `TIME_WAIT on the ${o.closer}`, value: `≤ ${B}`, why: `the closer; tcp_max_tw_buckets=${B} caps it; each lasts ${TIME_WAIT_SEC} s` },
      { what: `TIME_WAIT on the ${o.closer === 'client' ? 'server' : 'client'}`, value: 0, why: 'the side that closes second ends in CLOSED' },
    ];
    if (o.orphans) {
      const fin = setting(c, 'client', 'net.ipv4.tcp_fin_timeout');
      out.push({
        what: `orphaned FIN-WAIT-2 (of ${o.orphans})`,
        value: `gone after ${fin} s`,
        why: 'tcp_fin_timeout on the client; the peer never closes',
      });
    }
    if (o.closer === 'server') out.push({ what: 'EADDRNOTAVAIL', value: 0, why: "the client's ports are free as soon as its side closes" });
    else if (run.capped)
      out.push({ what: 'EADDRNOTAVAIL', value: 0, why: `tcp_max_tw_buckets ${B} is below the ${ports} ports: closes past it free their port` });
    else if (run.reuses) {
      const w = reuseConnections(ports, o.durationMs, delay);
      out.push({
        what: 'connections made (when the client is fast enough to run out)',
        value: `${w.from}–${w.to}`,
        why: `${ports} ports × ceil(${o.durationMs} ms / tcp_tw_reuse_delay ${delay} ms) = ${ports * w.rounds}`,
      });
    } else
      out.push({
        what: 'connections made (when the client tries more)',
        value: ports,
        why: `each of the ${ports} ports is held ${TIME_WAIT_SEC} s (${reuse === 2 ? 'tcp_tw_reuse=2 is loopback only' : reuse === 1 ? 'reuse needs timestamps on both sides' : 'tcp_tw_reuse=0'}); then EADDRNOTAVAIL`,
      });
    return out;
  },
  report: {
    metrics: [
      { label: 'connections made', value: (p) => p.scenario.observed.ok },
      { label: 'EADDRNOTAVAIL', value: (p) => p.scenario.observed.eaddrnotavail },
      { label: 'connections/s', value: (p) => p.scenario.observed.rps },
      { label: 'TIME_WAIT on the client (lab port, at the end)', value: (p) => p.scenario.observed.timeWait.client },
      { label: 'TIME_WAIT on the server (lab port, at the end)', value: (p) => p.scenario.observed.timeWait.server },
      { label: 'TWRecycled (client)', value: counterOf('loadgen-1', 'TcpExtTWRecycled') },
      {
        label: 'orphaned FIN-WAIT-2 kept (s)',
        value: (p) => p.scenario.observed.orphans?.goneAfterSec ?? null,
        predicted: (p) => (p.scenario.observed.orphans ? p.scenario.predicted.finTimeoutSec : null),
      },
    ],
    x: ['loadgens.0.sysctls.net.ipv4.tcp_tw_reuse', 'scenario.options.closer', 'loadgens.0.sysctls.net.ipv4.tcp_max_tw_buckets'],
    headline: (p) => {
      const q = p.scenario.predicted;
      const o = p.scenario.observed;
      return `the ${q.closer} closes first, ${q.ports} ports: ${o.ok} connections, ${o.eaddrnotavail} EADDRNOTAVAIL; TIME_WAIT on the client ${o.timeWait.client}, on the server ${o.timeWait.server}`;
    },
    explain(p) {
      const sum = p.trace?.summary;
      if (!sum) return [];
      const secs = Math.max(0.001, (sum.stoppedAt - sum.startedAt) / 1000);
      return Object.keys(sum.byHost).flatMap((h) => {
        // A socket that becomes a TIME-WAIT socket leaves the tracepoint at FIN-WAIT-2 (or CLOSING) → CLOSE:
        // the TIME-WAIT socket is a new, smaller object with no state change of its own.
        const n = countOf(p, h, 'state FIN-WAIT-2>CLOSE') + countOf(p, h, 'state CLOSING>CLOSE');
        if (!n) return [];
        const tw = p.hosts[h]?.series.summary.peakStates['TIME-WAIT'] ?? 0;
        return [
          `${h}: ${n} sockets went from FIN-WAIT-2 or CLOSING to CLOSE, into TIME-WAIT (${(n / secs).toFixed(0)}/s over the ${secs.toFixed(1)} s traced); the sampler saw at most ${tw} in TIME-WAIT at once.`,
        ];
      });
    },
    series: {
      label: 'TIME_WAIT over time on the closer',
      host: (p) => (p.scenario.predicted.closer === 'server' ? 'server' : 'loadgen-1'),
      value: (s) => s.states['TIME-WAIT'] ?? 0,
    },
  },
});
