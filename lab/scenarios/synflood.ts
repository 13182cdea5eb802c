// synflood: half-open SYNs from the loadgen's own address (hping3, source ports 20000 + i)
// while an nft rule in the loadgen's namespace drops the server's SYN-ACKs to those ports, so
// neither hping3 nor the loadgen's kernel ever answers them: each SYN leaves a request in the
// server's SYN queue (SYN-RECV) until its SYN-ACK retries run out (about a minute). Then a
// legitimate client connects from the same host (an ephemeral port, outside the rule).
// Kernel model (L = min(backlog, somaxconn), M = tcp_max_syn_backlog, N SYNs):
//   cookies 0: the queue holds min(N, L + 1, M − M/4 + 1) requests; the rest are dropped
//              (ListenDrops), and so is the legit client's SYN: it is not served.
//   cookies 1: L + 1 requests, then every SYN is answered with a cookie (SyncookiesSent), the
//              legit client's too: it is served. M plays no part.
//   cookies 2: every SYN gets a cookie, no request is kept: SYN-RECV stays 0.
import { z } from 'zod';
import { bool, int, RESERVED_PORTS } from '../../core/fields.js';
import type { BurstResult } from '../in-host/burst.js';
import { counterDeltas, parseProcNet, type Counters } from '../observe/nstat.js';
import { countStates, parseListeners, parseSockets } from '../observe/ss.js';
import type { Host, Proc } from '../runtime/runtime.js';
import {
  kernelHz,
  effectiveLimit,
  asNumber,
  atLeast,
  atMost,
  counter,
  counterOf,
  defineScenario,
  equal,
  inconclusive,
  numSysctl,
  peakState,
  plannedLimit,
  type RuleVerdict,
  runInHost,
  setting,
  settle,
  type Settle,
  tooManyClients,
  unsettledReason,
} from './common.js';
import { acceptQueueLimit, retransmitWindows, synackTimeline } from '../model/kernel.js';
import { eventsOf, synAckOutside, synAcksDropped, synAcksSent, times } from '../report/timelines.js';

export const FLOOD_PORTS = RESERVED_PORTS.synflood;

const Options = z
  .object({
    /** Half-open SYNs hping3 sends (source ports 20000 + i). */
    flood: int(1, FLOOD_PORTS.last - FLOOD_PORTS.first + 1).default(1000),
    /** Gap between SYNs, µs. */
    intervalUs: int(10, 1000000).default(200),
    /** How long the legit client waits for its connection, ms. */
    legitTimeoutMs: int(500, 60000).default(3000),
    /** Fill the accept queue first (server not accepting): shows that cookies do not help then. */
    acceptQueueFull: bool().default(false),
  })
  .strict();

export interface Observed {
  sent: number;
  floodTookMs: number;
  synRecvAfterFlood: number;
  /** How the SYN-RECV reading waited for the flood's last SYNs. */
  synRecvSettle?: Settle;
  legit: BurstResult;
  /** Server counters over the flood and the legit client only. */
  during: Counters;
}
const TABLE = 'tcplab_flood';

export interface Prediction {
  limit: number;
  somaxconn: number;
  syncookies: number;
  maxSynBacklog: number;
  synQueueCap: number;
  synRecv: number;
  syncookiesSent: number;
  droppedSyns: number;
  legitServed: boolean;
  acceptQueueFull: boolean;
}

/** What the kernel model says N flood SYNs (and then one legit SYN) do. */
export function predict(cookies: number, maxSyn: number, limit: number, somaxconn: number, sent: number, acceptQueueFull: boolean): Prediction {
  const cap = cookies === 0 ? Math.min(limit + 1, maxSyn - (maxSyn >> 2) + 1) : limit + 1;
  const base = { limit, somaxconn, syncookies: cookies, maxSynBacklog: maxSyn, synQueueCap: cap, acceptQueueFull };
  if (acceptQueueFull) return { ...base, synRecv: 0, syncookiesSent: 0, droppedSyns: sent, legitServed: false };
  const legitCookie = cookies === 2 || (cookies === 1 && sent >= limit + 1) ? 1 : 0;
  return {
    ...base,
    synRecv: cookies === 2 ? 0 : Math.min(sent, cap),
    syncookiesSent: (cookies === 2 ? sent : cookies === 1 ? Math.max(0, sent - (limit + 1)) : 0) + legitCookie,
    droppedSyns: cookies === 0 ? Math.max(0, sent - cap) : 0,
    legitServed: cookies > 0 || sent < cap,
  };
}

/** The host's /proc/net/netstat + snmp counters, read in its namespace. */
async function netCounters(h: Host): Promise<Counters> {
  const r = await h.exec(['cat', '/proc/net/netstat', '/proc/net/snmp'], { timeoutMs: 10_000 });
  if (r.exitCode !== 0) throw new Error(`reading /proc/net on ${h.name}: ${r.stderr.trim()}`);
  return parseProcNet(r.stdout);
}

/** Polls `ss -ltn` on the server until its listener's accept queue holds N (or throws). */
async function waitForQueue(server: Host, port: number, n: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  let seen = -1;
  while (Date.now() < end) {
    const r = await server.exec(['ss', '-Hltn', `sport = :${port}`], { timeoutMs: 10_000 });
    seen = parseListeners(r.stdout).find((l) => l.port === port)?.recvQ ?? -1;
    if (seen >= n) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`the accept queue did not fill: Recv-Q ${seen}, wanted ${n}`);
}

/** "600 packets transmitted, 600 packets received, 0% packet loss" → 600. */
export function hpingSent(output: string): number {
  const m = /(\d+) packets transmitted/.exec(output);
  if (!m) throw new Error(`hping3 printed no statistics: ${JSON.stringify(output.trim().slice(-200))}`);
  return Number(m[1]);
}

const counted = defineScenario<z.infer<typeof Options>, Observed, Prediction>({
  name: 'synflood',
  tools: ['hping3', 'nft'],
  options: Options,
  reservedPorts: FLOOD_PORTS,
  check: (c, o) => (o.acceptQueueFull ? tooManyClients(c, plannedLimit(c) + 1, 'filling the accept queue (limit + 1)') : null),
  loadgenCaps: ['NET_ADMIN', 'NET_RAW'],
  async drive(ctx) {
    const o = ctx.options;
    const c = ctx.client;
    const somaxconn = numSysctl(ctx.serverSysctl, 'net.core.somaxconn');
    const cookies = numSysctl(ctx.serverSysctl, 'net.ipv4.tcp_syncookies');
    const maxSyn = numSysctl(ctx.serverSysctl, 'net.ipv4.tcp_max_syn_backlog');
    const limit = effectiveLimit(ctx);
    // With acceptQueueFull, the server stops accepting and limit + 1 connections (from
    // ordinary ports) fill its accept queue before the flood: then every SYN is dropped,
    // cookies or not (the accept-queue check comes after the cookie decision).
    let filler: Proc | undefined;
    try {
      if (o.acceptQueueFull) {
        await ctx.control.pause();
        filler = c.start([...c.node('dist/lab/in-host/burst.js'), ctx.server.address, String(ctx.port), String(limit + 1), '600000'], 'fill');
        await waitForQueue(ctx.server, ctx.port, limit + 1, 15_000);
      }
      const rule = `table inet ${TABLE} { chain in { type filter hook input priority 0; ip saddr ${ctx.server.address} tcp sport ${ctx.port} tcp dport ${FLOOD_PORTS.first}-${FLOOD_PORTS.last} drop; }; }`;
      const nft = await c.exec(['nft', rule], { timeoutMs: 10_000 });
      if (nft.exitCode !== 0) throw new Error(`nft on ${c.name} (exit ${nft.exitCode}): ${nft.stderr.trim().split('\n')[0]}`);
      const countersBefore = await netCounters(ctx.server);
      const floodMs = Math.ceil((o.flood * o.intervalUs) / 1000);
      const t0 = Date.now();
      const h = await c.exec(
        [
          'hping3',
          '-q',
          '-S',
          '-p',
          String(ctx.port),
          '-s',
          String(FLOOD_PORTS.first),
          '-c',
          String(o.flood),
          '-i',
          `u${o.intervalUs}`,
          ctx.server.address,
        ],
        { timeoutMs: floodMs + 15_000 },
      );
      if (h.exitCode === 127) throw new Error(`hping3 is not installed on ${c.name}`);
      const sent = hpingSent(h.stdout + h.stderr);
      const floodTookMs = Date.now() - t0;
      // The SYN queue once the flood's last SYNs are in: its count held still for 300 ms (2 s at most).
      const { value: synRecvNow, settle: synRecvSettle } = await settle(
        async () => {
          const ss = await ctx.server.exec(['ss', '-Htan', `sport = :${ctx.port}`], { timeoutMs: 10_000 });
          return countStates(parseSockets(ss.stdout))['SYN-RECV'] ?? 0;
        },
        String,
        { stillMs: 300, boundMs: 2000 },
      );
      const legit = await runInHost<BurstResult>(c, 'burst', [ctx.server.address, ctx.port, 1, o.legitTimeoutMs], o.legitTimeoutMs + 15_000);
      // Counters over the flood and the legit client only (not the fill, not the control API).
      const during = counterDeltas(countersBefore, await netCounters(ctx.server));
      const observed: Observed = { sent, floodTookMs, synRecvAfterFlood: synRecvNow, synRecvSettle, legit, during };
      return { observed, predicted: predict(cookies, maxSyn, limit, somaxconn, sent, o.acceptQueueFull) };
    } finally {
      await filler?.stop();
    }
  },
  judge(_ctx, { observed: o, predicted: p }, obs) {
    if (p.acceptQueueFull) {
      const why = 'the accept queue is full: every SYN is dropped before a request or a cookie is made';
      return [
        equal('SYN queue (SYN-RECV after the flood)', 0, o.synRecvAfterFlood, why, unsettledReason('SYN-RECV', o.synRecvSettle)),
        equal('SYN queue peak in the sampled series', 0, peakState(obs, 'server', 'SYN-RECV'), why),
        equal('SyncookiesSent during the flood', 0, o.during['TcpExtSyncookiesSent'] ?? 0, 'cookies do not help when the accept queue is full'),
        atLeast('SYNs dropped on the full accept queue during the flood (ListenOverflows)', o.sent, o.during['TcpExtListenOverflows'] ?? 0, why),
        equal(
          'legit client served during the flood',
          'no',
          o.legit.connected === 1 ? 'yes' : 'no',
          'cookies do not help when the accept queue is full',
        ),
      ];
    }
    const M = p.maxSynBacklog;
    const mBinds = p.syncookies === 0 && M - (M >> 2) + 1 < p.limit + 1;
    const why =
      p.syncookies === 2
        ? 'cookies=2: every SYN is answered with a cookie, no request is kept'
        : mBinds
          ? `cookies off: tcp_max_syn_backlog caps unproven peers at M − M/4 + 1 = ${p.synQueueCap}`
          : `the SYN queue holds min(backlog, somaxconn) + 1 = ${p.limit + 1}${p.syncookies === 1 && M - (M >> 2) + 1 < p.limit + 1 ? ' (M plays no part with cookies on)' : ''}`;
    const v: RuleVerdict[] = [
      equal('SYN queue (SYN-RECV after the flood)', p.synRecv, o.synRecvAfterFlood, why, unsettledReason('SYN-RECV', o.synRecvSettle)),
      equal('SYN queue peak in the sampled series', p.synRecv, peakState(obs, 'server', 'SYN-RECV'), why),
      equal(
        'SyncookiesSent (flood beyond the queue, + the legit client)',
        p.syncookiesSent,
        counter(obs, 'server', 'TcpExtSyncookiesSent'),
        p.syncookies === 0 ? 'cookies off: none sent' : 'a full SYN queue (or cookies=2) answers with cookies',
      ),
    ];
    if (p.syncookies === 0)
      v.push(
        atLeast(
          'SYNs dropped (ListenDrops)',
          p.droppedSyns,
          counter(obs, 'server', 'TcpExtListenDrops'),
          'cookies off: a SYN that finds the queue full is dropped',
        ),
      );
    else
      v.push(
        equal(
          'SYNs dropped (ListenDrops)',
          0,
          counter(obs, 'server', 'TcpExtListenDrops'),
          'cookies on: no SYN is dropped while the accept queue has room',
        ),
      );
    v.push(
      equal(
        'legit client served during the flood',
        p.legitServed ? 'yes' : 'no',
        o.legit.connected === 1 ? 'yes' : 'no',
        p.legitServed
          ? p.syncookies > 0
            ? 'cookies keep the legit client served'
            : 'the flood did not fill the queue'
          : 'cookies off and the queue is full: its SYNs are dropped',
      ),
    );
    return v;
  },
  model: [
    {
      name: 'net.ipv4.tcp_syncookies',
      side: 'server',
      rule: '0: the SYN queue caps and drops; 1: cookies once it is full; 2: a cookie for every SYN',
    },
    { name: 'net.ipv4.tcp_max_syn_backlog', side: 'server', rule: 'with tcp_syncookies=0 caps unproven requests at M − M/4 + 1' },
    { name: 'net.core.somaxconn', side: 'server', rule: 'SYN queue limit = min(backlog, somaxconn) + 1' },
  ],
  predict(c, o) {
    const somaxconn = setting(c, 'server', 'net.core.somaxconn');
    const cookies = setting(c, 'server', 'net.ipv4.tcp_syncookies');
    const maxSyn = setting(c, 'server', 'net.ipv4.tcp_max_syn_backlog');
    const limit = acceptQueueLimit(c.server.backlog, somaxconn);
    const p = predict(cookies, maxSyn, limit, somaxconn, o.flood, o.acceptQueueFull);
    const cap = `min(${o.flood} SYNs, limit ${limit} + 1${cookies === 0 ? `, M ${maxSyn} − M/4 + 1` : ''})`;
    return [
      {
        what: 'SYN-RECV after the flood',
        value: p.synRecv,
        why: o.acceptQueueFull ? 'the accept queue is full: every SYN is dropped' : cookies === 2 ? 'tcp_syncookies=2: no request is kept' : cap,
      },
      { what: 'SyncookiesSent', value: p.syncookiesSent, why: `tcp_syncookies=${cookies}` },
      {
        what: 'SYNs dropped (ListenDrops, at least)',
        value: p.droppedSyns,
        why: cookies === 0 ? 'the queue is at its cap' : 'cookies answer what the queue cannot hold',
      },
      {
        what: 'the legit client is served',
        value: p.legitServed ? 'yes' : 'no',
        why: p.legitServed ? 'cookies, or room in the queue' : 'its SYN meets a full queue',
      },
    ];
  },
  report: {
    metrics: [
      {
        label: 'SYN queue (SYN-RECV) after the flood',
        value: (p) => p.scenario.observed.synRecvAfterFlood,
        predicted: (p) => p.scenario.predicted.synRecv,
      },
      {
        label: 'legit client served (1 = yes)',
        value: (p) => p.scenario.observed.legit.connected,
        predicted: (p) => asNumber(p.scenario.predicted.legitServed),
      },
      { label: 'SyncookiesSent', value: counterOf('server', 'TcpExtSyncookiesSent'), predicted: (p) => p.scenario.predicted.syncookiesSent },
      { label: 'ListenDrops', value: counterOf('server', 'TcpExtListenDrops') },
      { label: 'TCPReqQFullDrop', value: counterOf('server', 'TcpExtTCPReqQFullDrop') },
      { label: 'TCPReqQFullDoCookies', value: counterOf('server', 'TcpExtTCPReqQFullDoCookies') },
    ],
    x: [
      'server.sysctls.net.ipv4.tcp_syncookies',
      'server.sysctls.net.ipv4.tcp_max_syn_backlog',
      'server.backlog',
      'server.sysctls.net.core.somaxconn',
    ],
    headline: (p) => {
      const q = p.scenario.predicted;
      const o = p.scenario.observed;
      const cap = q.acceptQueueFull
        ? 'the accept queue is full: every SYN is dropped'
        : q.syncookies === 2
          ? 'cookies 2 keep none'
          : q.syncookies === 0 && q.synQueueCap < q.limit + 1
            ? `M − M/4 + 1 = ${q.synQueueCap}`
            : `L + 1 = ${q.limit + 1}`;
      const cookies = q.syncookies === 0 ? 'cookies off' : `cookies ${q.syncookies}`;
      return `${cookies}, M=${q.maxSynBacklog}${q.acceptQueueFull ? ', accept queue full' : ''}: ${o.synRecvAfterFlood} of ${o.sent} SYNs kept (${cap}); the legit client was ${o.legit.connected ? 'served' : 'refused'}`;
    },
    series: { label: 'server SYN-RECV over time', host: () => 'server', value: (s) => (s.full ? (s.states['SYN-RECV'] ?? 0) : null) },
  },
});

const retransmitsAt = (R: number) => synackTimeline(R).retransmitsAt;
const rule = (at: number[]) => `at ${at.slice(0, 5).join(', ')}${at.length > 5 ? ' …' : ''} s after its SYN-ACK`;

/** The counters' verdicts, and (trace: true) each request's SYN-ACK retransmissions from the kernel's events. */
export const synflood = defineScenario<z.infer<typeof Options>, Observed, Prediction>({
  ...counted,
  judge(ctx, r, obs) {
    const v = counted.judge(ctx, r, obs);
    if (!obs.trace || r.predicted.acceptQueueFull) return v;
    // Each request's SYN-ACKs: the first as the loadgen's nft rule dropped it, the retransmissions as the server sent them.
    const R = numSysctl(ctx.serverSysctl, 'net.ipv4.tcp_synack_retries');
    const at = retransmitsAt(R);
    // The kernel's own timestamps (ms), from the request's first SYN-ACK (its timer is armed
    // then): each retransmission late by the timer wheel's lateness of its timer and those
    // before it, which adds up.
    const { hz, known } = kernelHz();
    const windows = retransmitWindows(at, hz, { early: 0.005, late: 0.005 });
    const d = synAckOutside(synAcksSent(obs.trace.events, FLOOD_PORTS.first, FLOOD_PORTS.last), windows);
    v.push(
      d.seen
        ? atMost(
            `(events) each request's SYN-ACK retransmissions ${rule(at)}, each in its window (s outside it, most; ${d.seen} seen${d.notSent ? `, ${d.notSent} not sent` : ''})`,
            0,
            d.worst,
            `tcp_synack_retries=${R}: the request's timer starts at 1 s and doubles; each fires up to its timer wheel granularity late (HZ ${hz}${known ? '' : ', not known here: the coarsest'}), and the lateness adds up`,
          )
        : inconclusive("(events) each request's SYN-ACK retransmissions", 'no retransmitted SYN-ACK reached the loadgen while it was traced'),
    );
    return v;
  },
  report: {
    ...counted.report,
    explain(p) {
      if (!p.trace?.summary) return [];
      const events = eventsOf(p);
      const server = events.filter((e) => e.host === 'server' && e.kind === 'synack-retransmit');
      const arrivals = synAcksDropped(events, FLOOD_PORTS.first, FLOOD_PORTS.last);
      const R = Number(p.hosts['server']?.sysctls.readBack['net.ipv4.tcp_synack_retries']);
      const out = [
        `The server retransmitted ${p.trace.summary.byHost['server']?.['synack-retransmit'] ?? 0} SYN-ACKs (tcp:tcp_retransmit_synack) for ${new Set(server.map((e) => e.rport)).size} requests at ${times(p, [...new Set(server.map((e) => Math.round(e.t / 100) * 100))])}; the model: each request's ${rule(retransmitsAt(R))} (tcp_synack_retries=${R}).`,
      ];
      const shown = [...arrivals].filter(([, ts]) => ts.length > 1).slice(0, 5);
      for (const [port, ts] of shown)
        out.push(
          `request from :${port}: SYN-ACKs at ${times(p, ts)}, retransmissions ${ts
            .slice(1)
            .map((t) => `+${((t - ts[0]!) / 1000).toFixed(3)}`)
            .join(', ')} s after the first.`,
        );
      const more = [...arrivals].filter(([, ts]) => ts.length > 1).length - shown.length;
      if (more > 0) out.push(`… and ${more} more requests with retransmitted SYN-ACKs (every one in ${p.trace.file}).`);
      return out;
    },
  },
});
