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
import { int, oneOf } from '../fields.js';
import type { ChurnResult } from '../in-host/churn.js';
import { parseListeners, parseSockets } from '../observe/ss.js';
import type { Host } from '../runtime/runtime.js';
import { atLeast, counter, counterOf, defineScenario, equal, numSysctl, type RuleVerdict, runInHost, within } from './common.js';

const Options = z
  .object({
    /** Who closes each connection first: the client, or the server (Connection: close). */
    closer: oneOf(['client', 'server']).default('client'),
    /** How long the short connections go on, ms. */
    durationMs: int(200, 600000).default(3000),
    /** Connections in flight at a time. */
    concurrency: int(1, 256).default(4),
  })
  .strict();

export interface Observed extends ChurnResult {
  timeWait: { server: number; client: number };
  timeWaitLifetimeSec: number | null;
  eaddrnotavail: number;
}

export interface Predicted {
  closer: 'client' | 'server';
  /** Local ports connect() can use: the range, less those a listener on the client holds. */
  ports: number;
  busyPorts: number;
  reuse: number;
  timestamps: number;
  reuseDelayMs: number;
  effectiveReuse: boolean;
  exhaust: boolean;
  timeWaitSec: number;
}

const TIME_WAIT_SEC = 60;

/** The local ports of every TCP listener on a host. */
async function listeningPorts(h: Host): Promise<number[]> {
  const r = await h.exec(['ss', '-Hltn'], { timeoutMs: 15_000 });
  if (r.exitCode !== 0) throw new Error(`ss on ${h.name}: ${r.stderr.trim()}`);
  return parseListeners(r.stdout).map((l) => l.port);
}

/** TIME-WAIT sockets to or from PORT on a host, with the time left on each (s). */
async function timeWaits(h: Host, port: number): Promise<number[]> {
  const r = await h.exec(['ss', '-Htano', `( sport = :${port} or dport = :${port} )`], { timeoutMs: 15_000 });
  if (r.exitCode !== 0) throw new Error(`ss on ${h.name}: ${r.stderr.trim()}`);
  return parseSockets(r.stdout).flatMap((x) => (x.state === 'TIME-WAIT' && x.timer ? [x.timer.seconds] : []));
}

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
    const churn = await runInHost<ChurnResult>(
      ctx.client,
      'churn',
      [ctx.server.address, ctx.port, o.closer, o.durationMs, o.concurrency],
      o.durationMs + 30_000,
    );
    const [serverTw, clientTw] = await Promise.all([timeWaits(ctx.server, ctx.port), timeWaits(ctx.client, ctx.port)]);
    const seenAt = Date.now();
    const closerTw = o.closer === 'client' ? clientTw : serverTw;
    // The newest TIME_WAIT socket's time left, plus the time since the last connection closed:
    // its whole lifetime.
    const lifetime =
      closerTw.length && churn.lastOkAt !== null ? Math.round((Math.max(...closerTw) + (seenAt - churn.lastOkAt) / 1000) * 10) / 10 : null;
    const effectiveReuse = reuse === 1 && timestamps === 1;
    const exhaust = o.closer === 'client' && churn.attempts > ports;
    const observed: Observed = {
      ...churn,
      timeWait: { server: serverTw.length, client: clientTw.length },
      timeWaitLifetimeSec: lifetime,
      eaddrnotavail: churn.errors['EADDRNOTAVAIL'] ?? 0,
    };
    const predicted: Predicted = {
      closer: o.closer,
      ports,
      busyPorts,
      reuse,
      timestamps,
      reuseDelayMs,
      effectiveReuse,
      exhaust,
      timeWaitSec: TIME_WAIT_SEC,
    };
    return { observed, predicted };
  },
  judge(_ctx, { observed: o, predicted: p }, obs) {
    const other = p.closer === 'client' ? 'server' : 'client';
    const few = o.ok === 0 ? 'no connection succeeded' : undefined;
    const v: RuleVerdict[] = [
      atLeast(`TIME_WAIT on the closer (${p.closer}), lab port`, 1, o.timeWait[p.closer], 'the side that sends the first FIN ends in TIME_WAIT', few),
      equal(
        `no TIME_WAIT on the other side (${other}), lab port`,
        0,
        o.timeWait[other],
        'the side that closes second goes through LAST-ACK to CLOSED',
        few,
      ),
      within(
        'TIME_WAIT lasts 60 s (time left on the newest + its age, s)',
        58.5,
        61,
        o.timeWaitLifetimeSec,
        'a fixed 60 s (TCP_TIMEWAIT_LEN); tcp_fin_timeout does not change it',
        few,
      ),
    ];
    if (p.closer === 'server') {
      v.push(equal('no EADDRNOTAVAIL when the server closes first', 0, o.eaddrnotavail, "the client's ports are free as soon as its side is closed"));
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
        v.push({
          rule: 'reuse=1 with timestamps avoids port exhaustion',
          predicted: `> ${p.ports}`,
          observed: o.ok,
          verdict: 'INCONCLUSIVE',
          reason: `the run (${o.durationMs} ms) was not longer than tcp_tw_reuse_delay`,
        });
      else {
        v.push(atLeast('reuse=1 with timestamps avoids port exhaustion (connections made)', p.ports + 1, o.ok, why));
        v.push(atLeast('TWRecycled', 1, counter(obs, 'loadgen-1', 'TcpExtTWRecycled'), why));
      }
    } else {
      const why =
        p.reuse === 2
          ? 'tcp_tw_reuse=2 reuses ports for loopback only, not across the lab network'
          : p.reuse === 1
            ? 'tcp_tw_reuse=1 needs tcp_timestamps=1'
            : 'tcp_tw_reuse=0: each port is held for the 60 s of TIME_WAIT';
      const busy = p.busyPorts ? ` (${p.busyPorts} of the range held by a listener on the client)` : '';
      v.push(equal('connections made = local ports (then the ports run out)', p.ports, o.ok, why + busy));
      v.push(atLeast('connect() failed with EADDRNOTAVAIL', 1, o.eaddrnotavail, why));
      v.push(equal('TWRecycled', 0, counter(obs, 'loadgen-1', 'TcpExtTWRecycled'), why));
    }
    return v;
  },
  report: {
    metrics: [
      { label: 'connections made', value: (p) => p.scenario.observed.ok },
      { label: 'EADDRNOTAVAIL', value: (p) => p.scenario.observed.eaddrnotavail },
      { label: 'connections/s', value: (p) => p.scenario.observed.rps },
      { label: 'TIME_WAIT on the client (lab port, at the end)', value: (p) => p.scenario.observed.timeWait.client },
      { label: 'TIME_WAIT on the server (lab port, at the end)', value: (p) => p.scenario.observed.timeWait.server },
      { label: 'TWRecycled (client)', value: counterOf('loadgen-1', 'TcpExtTWRecycled') },
    ],
    series: {
      label: 'TIME_WAIT over time on the closer',
      host: (p) => (p.scenario.predicted.closer === 'server' ? 'server' : 'loadgen-1'),
      value: (s) => s.states['TIME-WAIT'] ?? 0,
    },
  },
});
