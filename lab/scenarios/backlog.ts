// backlog: the server stops calling accept(), then a burst of limit + 1 + extra clients
// arrives. The kernel completes handshakes while the queue holds fewer than limit + 1
// (the full check is `>`), so Send-Q = limit, Recv-Q peaks at limit + 1, and exactly
// limit + 1 clients connect; the rest stay in SYN-SENT (their SYNs are dropped). The limit is
// the one the server really has (its listener's Send-Q once it is up): a server that passes
// listen() a backlog of its own gets the kernel's rules judged against that, and a verdict of
// its own (about the server, not the kernel) on whether it used the lab's. A server that defers
// accept (TCP_DEFER_ACCEPT, as Apache does on Linux) queues nothing for clients that send no data:
// their final ACKs are dropped and they wait in the SYN queue (deferredBurst), until the clients'
// FINs at the hold's end bring them into the accept queue, which then fills to limit + 1.
import { listenFinding } from '../pipeline/listen.js';
import { z } from 'zod';
import { int, type PointConfig } from '../../core/fields.js';
import { acceptQueueLimit, deferAcceptTimeouts, deferredBurst, deferredSynackAt, synTimeline } from '../model/kernel.js';
import type { BurstResult } from '../in-host/burst.js';
import { summarize } from '../observe/sampler.js';
import { defineScenario, effectiveLimit, equal, inconclusive, numSysctl, plannedLimit, recvQ, runInHost, setting, tooManyClients } from './common.js';

const Options = z
  .object({
    /** Connections beyond the predicted queue (limit + 1) that the burst adds. */
    extraClients: int(0, 10000).default(10),
    /** How long the burst holds its connections, ms. */
    holdMs: int(200, 60000).default(1500),
  })
  .strict();

export interface Predicted {
  limit: number;
  queuePeak: number;
  connected: number;
  waiting: number;
  somaxconn: number;
  /** The lab's server.backlog (what it asked listen() for). */
  backlog: number;
  /** The limit the lab's settings give, min(backlog, somaxconn); limit differs when the server used its own backlog. */
  asked?: number;
  /** A listener that defers accept: its seconds, the requests left in the SYN queue and the clients let in by a SYN cookie. */
  deferAccept?: { sec: number; deferred: number; cookies: number };
}

export type Observed = BurstResult & { clients: number };

/** A reason the model does not cover the point: the waiting clients' connect() times out before the hold ends. */
function connectTimesOutInHold(c: PointConfig, holdMs: number): string | null {
  const t = synTimeline(setting(c, 'client', 'net.ipv4.tcp_syn_retries'), setting(c, 'client', 'net.ipv4.tcp_syn_linear_timeouts')).timeoutAt;
  return t * 1000 <= holdMs + 1000 ? `connect() times out after ${t} s, within the ${holdMs} ms hold` : null;
}

export const backlog = defineScenario<z.infer<typeof Options>, Observed, Predicted>({
  name: 'backlog',
  options: Options,
  check: (c, o) => tooManyClients(c, plannedLimit(c) + 1 + o.extraClients, 'the burst (limit + 1 + extraClients)'),
  async drive(ctx) {
    const somaxconn = numSysctl(ctx.serverSysctl, 'net.core.somaxconn');
    const limit = effectiveLimit(ctx);
    const clients = limit + 1 + ctx.options.extraClients;
    const hold = ctx.options.holdMs;
    const defer = ctx.listen.deferAcceptSec;
    await ctx.control.pause();
    const burst = await runInHost<BurstResult>(ctx.client, 'burst', [ctx.server.address, ctx.port, clients, hold], hold + 30_000);
    // The deferred requests reach the accept queue with the clients' FINs as the burst closes:
    // a few samples' time to see it settled before the server accepts again.
    if (defer) await new Promise((r) => setTimeout(r, 8 * ctx.config.sampleIntervalMs));
    await ctx.control.resume();
    const d = defer
      ? deferredBurst(
          clients,
          limit,
          numSysctl(ctx.serverSysctl, 'net.ipv4.tcp_max_syn_backlog'),
          numSysctl(ctx.serverSysctl, 'net.ipv4.tcp_syncookies'),
        )
      : null;
    const predicted: Predicted = {
      limit,
      queuePeak: limit + 1,
      connected: d ? d.connected : limit + 1,
      waiting: d ? d.waiting : clients - limit - 1,
      somaxconn,
      backlog: ctx.config.server.backlog,
      asked: ctx.listen.asked,
      ...(defer && d ? { deferAccept: { sec: defer, deferred: d.deferred, cookies: d.cookies } } : {}),
    };
    return { observed: { clients, ...burst }, predicted };
  },
  judge(ctx, { observed: o, predicted: p }, obs) {
    const sum = summarize(obs.series['server'] ?? [], ctx.port);
    const few = sum.samples < 5 ? `only ${sum.samples} samples on the server` : undefined;
    // A peak seen in fewer than three samples in a row may be a queue still on its way.
    const still = 2 * ctx.config.sampleIntervalMs;
    const l0 = sum.listener;
    const unsettled =
      l0 && l0.peakHeldMs < still
        ? `the accept queue's peak (${l0.peakRecvQ}) held ${l0.peakHeldMs} ms: a reading that had not settled (${still} ms, two sampling intervals, needed)`
        : undefined;
    const l = ctx.listen;
    const rule = `the server listens with the lab's backlog: Send-Q = min(backlog ${p.backlog}, somaxconn ${p.somaxconn})`;
    return [
      {
        ...(l.backlog?.exact && l.method !== 'ss Send-Q'
          ? equal(
              `the server passes listen() the lab's backlog ${p.backlog}`,
              p.backlog,
              l.backlog.value,
              `as ${l.method} shows it; the kernel caps it at somaxconn ${p.somaxconn} (Send-Q ${l.limit ?? '–'})`,
            )
          : l.limit !== null && l.honoured === null
            ? inconclusive(
                rule,
                `Send-Q ${l.limit} is somaxconn: the server passed at least ${l.limit}, as the lab's backlog ${p.backlog} would; Send-Q cannot tell which`,
              )
            : equal(rule, l.asked, l.limit, "its listen() was given the lab's backlog, which the kernel caps at somaxconn")),
        about: 'server' as const,
      },
      equal(
        'accept queue limit (Send-Q) holds through the burst',
        p.limit,
        sum.listener?.sendQ ?? null,
        'the limit is set at listen() and the burst does not change it',
        few,
      ),
      equal(
        'accept queue peak (Recv-Q) = limit + 1',
        p.queuePeak,
        sum.listener?.peakRecvQ ?? null,
        'the queue is full only when it holds more than the limit',
        few ?? unsettled,
      ),
      ...(p.deferAccept
        ? [
            equal(
              'handshakes completed (TCP_DEFER_ACCEPT): the SYN queue holds limit + 1, SYN cookies let more in',
              p.connected,
              o.connected,
              `the server defers accept (${p.deferAccept.sec} s): ${p.deferAccept.deferred} final ACKs dropped, their requests kept in the SYN queue; ${p.deferAccept.cookies} past it by SYN cookie, queued at once`,
            ),
            equal('clients left waiting in SYN-SENT', p.waiting, o.pending, 'SYNs past the SYN queue and the cookies are dropped and retried'),
          ]
        : [
            equal('handshakes completed = limit + 1', p.connected, o.connected, 'SYNs meeting a full queue are dropped, so no SYN-ACK'),
            equal('clients left waiting in SYN-SENT', p.waiting, o.pending, 'their SYNs are dropped and retried'),
          ]),
    ];
  },
  listenerCovers: {
    // Until the deferral's first SYN-ACK retransmission, after which a bare ACK is taken.
    deferAccept: (_c, l, o) => {
      const at = deferredSynackAt(deferAcceptTimeouts(l.deferAcceptSec ?? 0));
      return o.holdMs / 1000 + 0.5 < at ? `the burst's clients send no data: the deferral keeps them out of the queue until ${at} s` : null;
    },
  },
  model: [
    { name: 'net.core.somaxconn', side: 'server', rule: 'accept queue limit = min(backlog, somaxconn); the burst fills it to limit + 1' },
    {
      name: 'net.ipv4.tcp_syn_retries',
      side: 'client',
      rule: 'the clients beyond limit + 1 stay in SYN-SENT while connect() has not timed out',
      unless: (c, o) => connectTimesOutInHold(c, o.holdMs),
    },
    {
      name: 'net.ipv4.tcp_syn_linear_timeouts',
      side: 'client',
      rule: 'the clients beyond limit + 1 stay in SYN-SENT while connect() has not timed out',
      unless: (c, o) => connectTimesOutInHold(c, o.holdMs),
    },
  ],
  predict(c, o) {
    const somaxconn = setting(c, 'server', 'net.core.somaxconn');
    const limit = acceptQueueLimit(c.server.backlog, somaxconn);
    return [
      { what: 'accept queue limit (Send-Q)', value: limit, why: `min(backlog ${c.server.backlog}, somaxconn ${somaxconn})` },
      { what: 'accept queue peak (Recv-Q)', value: limit + 1, why: 'the queue is full only when it holds more than the limit' },
      { what: 'handshakes completed', value: limit + 1, why: 'SYNs meeting a full queue are dropped: no SYN-ACK' },
      { what: 'clients left in SYN-SENT', value: o.extraClients, why: 'their SYNs are dropped and retried' },
    ];
  },
  report: {
    metrics: [
      {
        label: 'accept queue limit (Send-Q)',
        value: (p) => p.hosts['server']?.series.summary.listener?.sendQ ?? null,
        predicted: (p) => p.scenario.predicted.limit,
      },
      {
        label: 'accept queue peak (Recv-Q)',
        value: (p) => p.hosts['server']?.series.summary.listener?.peakRecvQ ?? null,
        predicted: (p) => p.scenario.predicted.queuePeak,
      },
      { label: 'handshakes completed', value: (p) => p.scenario.observed.connected, predicted: (p) => p.scenario.predicted.connected },
      { label: 'clients left in SYN-SENT', value: (p) => p.scenario.observed.pending, predicted: (p) => p.scenario.predicted.waiting },
    ],
    x: ['server.backlog', 'server.sysctls.net.core.somaxconn'],
    headline: (p) => {
      const q = p.scenario.predicted;
      const o = p.scenario.observed;
      const finding = p.server.listen ? listenFinding(p.server.listen, q.backlog) : null;
      const own = finding ? `${finding}: ` : '';
      return `${own}limit ${q.limit}${own ? '' : ` = min(backlog ${q.backlog}, somaxconn ${q.somaxconn})`}: Send-Q ${p.hosts['server']?.series.summary.listener?.sendQ ?? '–'}, ${o.connected} of ${o.clients} clients connected, ${o.pending} left in SYN-SENT`;
    },
    series: { label: 'server accept queue (Recv-Q) over time', host: () => 'server', value: recvQ },
  },
});
