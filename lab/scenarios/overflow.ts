// overflow: what a full accept queue does to new handshakes, and what tcp_abort_on_overflow
// changes. The server stops accepting; the client (in-host/overflow-client.js) first opens HELD
// handshakes whose final ACK an nft rule in the loadgen's namespace holds back (they sit in
// the server's SYN queue), then fills the accept queue with limit + 1 connections, then sends
// LATE SYNs that meet the full queue. Then the rule goes and each held client sends its
// request: its ACK now meets the full queue.
// Kernel model: a SYN meeting a full accept queue is dropped whatever abort_on_overflow says
// (ListenOverflows, no SYN-ACK, the client retransmits after 1 s); a final ACK meeting it is
// answered with RST at once when abort_on_overflow = 1 (EmbryonicRsts), dropped when 0 (the
// client believes it is connected; served later if the server accepts again).
import { z } from 'zod';
import { int, RESERVED_PORTS } from '../../core/fields.js';
import type { GroupOutcome } from '../in-host/overflow-client.js';
import { waitForLine } from '../runtime/proc-wait.js';
import {
  kernelHz,
  effectiveLimit,
  atLeast,
  atMost,
  counter,
  counterOf,
  defineScenario,
  equal,
  numSysctl,
  plannedLimit,
  inconclusive,
  type Observations,
  type Prediction,
  recvQ,
  type RuleVerdict,
  type ScenarioContext,
  setting,
  tooManyClients,
  within,
} from './common.js';
import {
  acceptQueueLimit,
  deferAcceptTimeouts,
  heldClientReset,
  retransmitWindows,
  synackTimeline,
  synTimeline,
  WALL_CLOCK_SLEW,
} from '../model/kernel.js';
import { countOf, eventsOf, times } from '../report/timelines.js';
import { heldStories, lateSynsSeen, lateTimelines, LISTEN_OVERFLOW, overflowDrops } from './overflow-events.js';
import { captureLost } from '../observe/capture.js';

export interface Observed {
  /** Each late client's SYN retransmissions as ss's timer showed them (s after their SYN; index k: retransmission k + 1). */
  lateSyn?: Array<{
    port: number;
    retransmitsAt: Array<number | null>;
    /** How long the ss that read each time took (s): the time is up to this much later. */
    readWithinSec?: Array<number | null>;
  }>;
  /** How long before the release the held handshakes began, ms. */
  heldForMs: number;
  held: GroupOutcome;
  fill: GroupOutcome;
  late: GroupOutcome;
  lateBeforeRelease: GroupOutcome;
}

export interface Predicted {
  limit: number;
  somaxconn: number;
  abortOnOverflow: number;
  acceptRate: number;
  held: number;
  fill: number;
  late: number;
  holdMs: number;
  synackRetries: number;
  /** The late clients' SYN retransmissions and connect()'s ETIMEDOUT, s after their first SYN. */
  syn: { retransmitsAt: number[]; timeoutAt: number };
}

const Options = z
  .object({
    /** Handshakes whose final ACK is held back until the accept queue is full. */
    held: int(1, 1000).default(4),
    /** SYNs sent once the accept queue is full. */
    late: int(0, 1000).default(4),
    /** Connections the server accepts per second after the release (0: none). */
    acceptRate: int(0, 100000).default(0),
    /**
     * How long the clients are watched after the release, ms: up to 5 min, so a watch can reach past
     * the default SYN-ACK expiry (63 s) and the held clients' reset after it.
     */
    holdMs: int(500, 300000).default(3000),
  })
  .strict();

const RESET_AT_ONCE_MS = 200; // well under the 1 s of the first SYN-ACK/SYN retransmission

/** What each rule of the judge reads; `invalid` says why the point cannot be judged (the queue was not full). */
interface Case {
  ctx: ScenarioContext<z.infer<typeof Options>>;
  o: Observed;
  p: Predicted;
  obs: Observations;
  invalid: string | undefined;
}
type Rule = (c: Case) => RuleVerdict[];

/** Why the queue was not full when the late and held clients met it, or undefined. */
const notFull = (o: Observed, p: Predicted) =>
  o.fill.connected !== p.fill
    ? `only ${o.fill.connected} of ${p.fill} fill connections completed: the queue was not full`
    : o.held.connected !== p.held
      ? `only ${o.held.connected} of ${p.held} held handshakes got a SYN-ACK`
      : undefined;

/** The queue fills, the late SYNs are dropped and counted: in both modes. */
const fullQueue: Rule = ({ o, p, obs, invalid }) => [
  equal(
    'accept queue fills with limit + 1 connections',
    p.fill,
    o.fill.connected,
    'handshakes complete while the queue holds no more than the limit',
  ),
  equal(
    'SYNs meeting a full queue are dropped: clients still in SYN-SENT',
    p.late,
    o.lateBeforeRelease.pending,
    'no SYN-ACK and no RST, whatever tcp_abort_on_overflow says',
    invalid,
  ),
  atLeast(
    'each dropped SYN counts in ListenOverflows',
    p.late,
    counter(obs, 'server', 'TcpExtListenOverflows'),
    'tcp_conn_request counts the overflow and drops',
    invalid,
  ),
];

/** tcp_abort_on_overflow 1: the held clients' final ACKs are answered with an RST at once. */
const heldReset: Rule = ({ o, p, obs, invalid }) =>
  p.abortOnOverflow !== 1
    ? []
    : [
        equal('abort_on_overflow=1: held clients reset', p.held, o.held.reset, 'a final ACK meeting a full queue is answered with RST', invalid),
        p.acceptRate > 0
          ? atLeast(
              'abort_on_overflow=1: EmbryonicRsts ≥ held clients',
              p.held,
              counter(obs, 'server', 'TcpExtEmbryonicRsts'),
              'each RST counts as an embryonic reset; with the server accepting again, a late client whose ACK finds the queue full again is reset too',
              invalid,
            )
          : equal(
              'abort_on_overflow=1: EmbryonicRsts = held clients',
              p.held,
              counter(obs, 'server', 'TcpExtEmbryonicRsts'),
              'the RST is counted as an embryonic reset',
              invalid,
            ),
        atMost(
          'abort_on_overflow=1: RST at once (ms after the ACK, slowest)',
          RESET_AT_ONCE_MS,
          o.held.resetMs.length ? Math.max(...o.held.resetMs) : null,
          'the reset answers the ACK itself, no timer',
          invalid,
        ),
      ];

/** tcp_abort_on_overflow 0: the held clients' ACKs are dropped; they wait, are served, or are reset once their request expired. */
const heldWait: Rule = ({ o, p, obs, invalid }) => {
  if (p.abortOnOverflow === 1) return [];
  const v: RuleVerdict[] = [];
  const w = heldClientReset(p.synackRetries, o.heldForMs / 1000);
  const hold = p.holdMs / 1000;
  const expiry = synackTimeline(p.synackRetries).expiresAt;
  const waits = p.acceptRate > 0 || hold < w.from - 0.5;
  v.push(equal('abort_on_overflow=0: EmbryonicRsts = 0', 0, counter(obs, 'server', 'TcpExtEmbryonicRsts'), 'nothing is reset', invalid));
  if (waits)
    v.push(equal('abort_on_overflow=0: no held client reset', 0, o.held.reset, 'the ACK is dropped; the request stays in the SYN queue', invalid));
  if (p.acceptRate > 0) {
    v.push(
      equal(
        'abort_on_overflow=0: held clients served once the server accepts again',
        p.held,
        o.held.answered,
        'the SYN-ACK is retransmitted, the client ACKs again and gets in',
        invalid,
      ),
    );
  } else if (waits) {
    v.push(
      equal(
        'abort_on_overflow=0: held clients believe they are connected and wait',
        p.held,
        o.held.waiting,
        `the server never accepts; their request expires ${expiry} s after its SYN-ACK (tcp_synack_retries=${p.synackRetries}), after the watch`,
        invalid,
      ),
    );
  } else if (hold > w.to + 0.5) {
    const why = `the request expires ${expiry} s after its SYN-ACK (tcp_synack_retries=${p.synackRetries}); the client's next data retransmission then meets no socket and gets an RST`;
    v.push(
      equal('abort_on_overflow=0: held clients reset once their request expired', p.held, o.held.reset, why, invalid),
      within(
        'abort_on_overflow=0: when they were reset (s after the release, latest)',
        Math.round((w.from - 0.5) * 10) / 10,
        Math.round((w.to + 0.5) * 10) / 10,
        o.held.resetMs.length ? Math.max(...o.held.resetMs) / 1000 : null,
        `${why}; its retransmission timer doubles, so between the expiry and about twice as late`,
        invalid,
      ),
    );
  } else {
    // The watch ends inside the window: each held client is reset in it or still waits at
    // the end; none is reset before its request expired.
    const inTime = o.held.resetMs.filter((ms) => ms / 1000 >= w.from - 0.5).length;
    v.push(
      equal(
        'abort_on_overflow=0: held clients reset once their request expired, or still waiting when the watch ends',
        p.held,
        inTime + o.held.waiting,
        `the request expires ${expiry} s after its SYN-ACK (tcp_synack_retries=${p.synackRetries}), and the client is reset on its next data retransmission, ${w.from.toFixed(1)}–${w.to.toFixed(1)} s after the release; the watch (${hold} s) ends inside that window`,
        invalid,
      ),
    );
  }
  return v;
};

/** With the tracer on, sharper, from the kernel's own events: which packet was dropped, why, and what answered it. */
const heldEvents: Rule = ({ ctx, o, p, obs, invalid }) => {
  if (!obs.trace) return [];
  const v: RuleVerdict[] = [];
  const stories = heldStories(obs.trace.events, obs.capture?.timelines ?? [], p.held, ctx.port);
  const dropped = stories.filter((h) => h.ackDroppedAt !== undefined).length;
  if (p.acceptRate === 0)
    v.push(
      equal(
        `(events) each held client's final ACK dropped with ${LISTEN_OVERFLOW}`,
        p.held,
        dropped,
        'skb:kfree_skb on the server: the segment that would complete the handshake met the full accept queue',
        invalid,
      ),
    );
  if (p.abortOnOverflow === 1) {
    const gaps = stories.flatMap((h) =>
      h.ackDroppedAt !== undefined && h.resetSentAt !== undefined ? [Math.abs(h.resetSentAt - h.ackDroppedAt)] : [],
    );
    v.push(
      equal(
        '(events) the server sent each held client an RST',
        p.held,
        stories.filter((h) => h.resetSentAt !== undefined).length,
        'tcp:tcp_send_reset answering the dropped ACK',
        invalid,
      ),
      atMost(
        '(events) the RST answers the dropped ACK itself (ms between them, slowest)',
        5,
        gaps.length === p.held ? Math.round(Math.max(...gaps) * 1000) / 1000 : null,
        'the same segment is answered and freed: no timer',
        invalid,
      ),
    );
  } else if (p.acceptRate === 0)
    v.push(
      equal(
        '(events) abort_on_overflow=0: no RST sent to a held client while watched',
        0,
        stories.filter((h) => h.resetSentAt !== undefined && h.resetSentAt < obs.trace!.summary.stoppedAt).length,
        'the dropped ACK is not answered; the request waits in the SYN queue',
        invalid || (o.held.reset > 0 ? "the watch reached the held requests' expiry" : undefined),
      ),
    );
  return v;
};

/**
 * The late clients' SYN retransmissions from the capture, when it ran and dropped nothing: each
 * client's own retransmission k, s after its first SYN (null otherwise).
 */
function lateSynsFromPackets(obs: Observations, p: Predicted): number[][] | null {
  // A packet the capture dropped would shift a client's SYNs: then ss's times.
  if (!obs.capture || obs.capture.summary.droppedByKernel === null || captureLost(obs.capture.summary) !== 0) return null;
  const late = lateTimelines(obs.capture.timelines, p.fill).slice(0, p.late);
  if (late.length < p.late) return null;
  return late.map((c) => c.syn.slice(1).map((t) => Math.round(t - c.syn[0]!) / 1000));
}

/** The late clients: their SYN retransmissions on the kernel's schedule, then connected, timed out or still waiting. */
const lateClients: Rule = ({ o, p, obs, invalid }) => {
  if (p.late === 0) return [];
  const v: RuleVerdict[] = [];
  const T = p.syn.timeoutAt;
  // The late clients are watched from their SYN to the end: the 300 ms before the release and the watch.
  const watched = p.holdMs / 1000 + 0.3;
  const timedOut = o.late.otherErrors['ETIMEDOUT'] ?? 0;
  const why = `connect() gives up ${T} s after the first SYN (${p.syn.retransmitsAt.length} retransmissions: tcp_syn_retries + tcp_syn_linear_timeouts)`;
  // Each time is when the client's pending timer was due, as ss showed it (the expiry it was
  // armed with), from the late clients' first connect(): never early, and late by the timer
  // wheel's lateness of the timers before it, which adds up. The measurement's own error: the
  // clients' connects spread over up to 0.1 s; ss prints a timer of 10 s or more in whole
  // seconds, cut down (up to 1 s early); and the time is taken as ss starts, so it is up to
  // as long as that ss took to run (readWithinSec) early: on a busy machine, 0.1 s and more.
  const { hz, known } = kernelHz();
  const windows = retransmitWindows(p.syn.retransmitsAt, hz, { early: 0.05, late: 0.1 });
  const outside = (t: number, k: number, read: number) => {
    const step = p.syn.retransmitsAt[k]! - (k ? p.syn.retransmitsAt[k - 1]! : 0);
    const lo = windows[k]![0] - (step >= 10 ? 1 : 0);
    return Math.max(0, lo - (t + read), t - windows[k]![1]);
  };
  const seen = (o.lateSyn ?? []).flatMap((x) =>
    x.retransmitsAt.flatMap((t, k) => (t === null || k >= p.syn.retransmitsAt.length ? [] : [outside(t, k, x.readWithinSec?.[k] ?? 0)])),
  );
  const last = windows[Math.min(windows.length, Math.max(...(o.lateSyn ?? []).map((x) => x.retransmitsAt.length), 0)) - 1];
  // With the capture on, the times are the packets' own (each client from its own first SYN, to
  // the microsecond): never early, late by the timer wheel's lateness so far and 10 ms; on the
  // wall clock, which may run WALL_CLOCK_SLEW off the timers' own.
  const packets = lateSynsFromPackets(obs, p);
  const tight = retransmitWindows(p.syn.retransmitsAt, hz, { early: 0.002, late: 0.01, share: WALL_CLOCK_SLEW });
  const fromPackets = (packets ?? []).flatMap((at) =>
    at.flatMap((t, k) => (k >= tight.length ? [] : [Math.max(0, tight[k]![0] - t, t - tight[k]![1])])),
  );
  const m = fromPackets.length
    ? {
        from: ', from the packets',
        outside: fromPackets,
        digits: 3,
        last: tight[Math.min(tight.length, Math.max(...packets!.map((x) => x.length))) - 1],
        why: "the capture's times, each client's from its own first SYN: never early, late by at most the timer wheel's lateness so far and 10 ms (and 0.5 % either way: the wall clock's slew)",
      }
    : {
        from: '',
        outside: seen,
        digits: 2,
        last,
        why: 'the first tcp_syn_linear_timeouts + 1 timeouts are 1 s, then each doubles; each fires up to its timer wheel granularity late, and the lateness adds up',
      };
  const round = 10 ** m.digits;
  v.push(
    m.outside.length
      ? atMost(
          `late clients' SYN retransmissions at ${p.syn.retransmitsAt.slice(0, 6).join(', ')}${p.syn.retransmitsAt.length > 6 ? ' …' : ''} s, each in its window${m.from} (s outside it, most; ${m.outside.length} seen)`,
          0,
          Math.round(Math.max(...m.outside) * round) / round,
          `${m.why} (HZ ${hz}${known ? '' : ', not known here: the coarsest'})${m.last ? ` (the last seen: ${m.last[0].toFixed(m.digits)}–${m.last[1].toFixed(m.digits)} s)` : ''}`,
          invalid,
        )
      : inconclusive("late clients' SYN retransmission times", 'no late client was seen in SYN-SENT with its timer'),
  );
  if (p.acceptRate > 0 && p.syn.retransmitsAt.length > 0) {
    v.push(
      atLeast(
        'late clients connect only after a SYN retransmission (ms, fastest)',
        p.syn.retransmitsAt[0]! * 1000 - 10,
        o.late.connectMs.length ? Math.min(...o.late.connectMs) : null,
        `their first SYN was dropped; the retransmission comes after ${p.syn.retransmitsAt[0]} s`,
        invalid,
      ),
    );
  } else if (watched > T + 1) {
    v.push(
      equal('late clients: connect() fails with ETIMEDOUT', p.late, timedOut, why, invalid),
      within(
        'late clients: when connect() failed (s after the first SYN, latest)',
        T - 0.3,
        T + 1,
        o.late.failedMs.length ? Math.max(...o.late.failedMs) / 1000 : null,
        why,
        invalid,
      ),
    );
  } else if (p.acceptRate === 0 && watched < T - 0.5) {
    v.push(equal('late clients still in SYN-SENT at the end', p.late, o.late.pending, `no SYN is answered; ${why}`, invalid));
  } else if (p.acceptRate === 0) {
    v.push(inconclusive('late clients: SYN-SENT or ETIMEDOUT', `the watch ends within a second of connect()'s timeout at ${T} s`));
  }
  return v;
};

const RULES: Rule[] = [fullQueue, heldReset, heldWait, heldEvents, lateClients];

export const overflow = defineScenario<z.infer<typeof Options>, Observed, Predicted>({
  name: 'overflow',
  tools: ['nft'],
  needsReactor: (o) => (o.acceptRate > 0 ? `scenario.options.acceptRate ${o.acceptRate} is the reactor's accept rate` : null),
  options: Options,
  loadgenCaps: ['NET_ADMIN'],
  reservedPorts: RESERVED_PORTS.overflow,
  check: (c, o) => tooManyClients(c, plannedLimit(c) + 1 + o.held + o.late, 'the overflow client (held + limit + 1 + late)'),
  listenerCovers: {
    // Every client sends its request once connected, so a deferring listener queues the fill and
    // meets the held clients' requests as any other. What deferral changes is how long a request
    // whose ACK was taken waits: it expires after max(tcp_synack_retries, the deferral's
    // timeouts) (syn_ack_recalc), which the held clients' reset rules do not model.
    deferAccept: (c, l, o) => {
      if (o.acceptRate > 0) return null;
      const retries = setting(c, 'server', 'net.ipv4.tcp_synack_retries');
      const resetFrom = heldClientReset(retries, 0).from;
      const later = deferAcceptTimeouts(l.deferAcceptSec ?? 0) > retries && o.holdMs / 1000 + 1 >= resetFrom;
      return setting(c, 'server', 'net.ipv4.tcp_abort_on_overflow') === 0 && later
        ? null
        : 'every client sends its request once connected: the deferral queues them as the rules do';
    },
  },
  async drive(ctx) {
    const o = ctx.options;
    const somaxconn = numSysctl(ctx.serverSysctl, 'net.core.somaxconn');
    const abort = numSysctl(ctx.serverSysctl, 'net.ipv4.tcp_abort_on_overflow');
    const limit = effectiveLimit(ctx);
    const synackRetries = numSysctl(ctx.serverSysctl, 'net.ipv4.tcp_synack_retries');
    const syn = synTimeline(numSysctl(ctx.clientSysctl, 'net.ipv4.tcp_syn_retries'), numSysctl(ctx.clientSysctl, 'net.ipv4.tcp_syn_linear_timeouts'));
    await ctx.control.pause();
    const args = [ctx.server.address, ctx.port, o.held, limit + 1, o.late, o.holdMs].map(String);
    const proc = ctx.client.start([...ctx.client.node('dist/lab/in-host/overflow-client.js'), ...args], 'overflow');
    try {
      await waitForLine(proc, /"event":"released"/, 30_000 + (limit + 1) * 50, 'overflow client');
      if (o.acceptRate > 0) {
        await ctx.control.setAcceptRate(o.acceptRate);
        await ctx.control.resume();
      }
      const line = await waitForLine(proc, /"event":"result"/, o.holdMs + 15_000, 'overflow client');
      const { lateSyn, heldForMs, held, fill, late, lateBeforeRelease } = JSON.parse(line) as Observed;
      const predicted: Predicted = {
        limit,
        somaxconn,
        abortOnOverflow: abort,
        acceptRate: o.acceptRate,
        held: o.held,
        fill: limit + 1,
        late: o.late,
        holdMs: o.holdMs,
        synackRetries,
        syn,
      };
      return { observed: { lateSyn, heldForMs, held, fill, late, lateBeforeRelease }, predicted };
    } finally {
      await proc.stop();
    }
  },
  judge(ctx, { observed: o, predicted: p }, obs) {
    const c: Case = { ctx, o, p, obs, invalid: notFull(o, p) };
    return RULES.flatMap((rule) => rule(c));
  },
  model: [
    { name: 'net.core.somaxconn', side: 'server', rule: 'accept queue limit = min(backlog, somaxconn); the fill is limit + 1' },
    { name: 'net.ipv4.tcp_abort_on_overflow', side: 'server', rule: '1: a final ACK meeting a full queue gets an RST at once; 0: it is dropped' },
    {
      name: 'net.ipv4.tcp_synack_retries',
      side: 'server',
      rule: 'abort 0: a held request expires after its SYN-ACK retries (1, 3, 7 … s); the client is reset on its next data retransmission',
      unless: (c, o) =>
        o.acceptRate > 0 && setting(c, 'server', 'net.ipv4.tcp_synack_retries') === 0 ? 'no SYN-ACK retransmission to let a held client in' : null,
    },
    { name: 'net.ipv4.tcp_syn_retries', side: 'client', rule: "the late clients' SYN retransmissions and connect()'s ETIMEDOUT" },
    { name: 'net.ipv4.tcp_syn_linear_timeouts', side: 'client', rule: "the late clients' SYN retransmissions and connect()'s ETIMEDOUT" },
  ],
  predict(c, o) {
    const somaxconn = setting(c, 'server', 'net.core.somaxconn');
    const limit = acceptQueueLimit(c.server.backlog, somaxconn);
    const abort = setting(c, 'server', 'net.ipv4.tcp_abort_on_overflow');
    const R = setting(c, 'server', 'net.ipv4.tcp_synack_retries');
    const syn = synTimeline(setting(c, 'client', 'net.ipv4.tcp_syn_retries'), setting(c, 'client', 'net.ipv4.tcp_syn_linear_timeouts'));
    const expiry = synackTimeline(R).expiresAt;
    const w = heldClientReset(R, 0);
    const hold = o.holdMs / 1000;
    const out: Prediction[] = [
      { what: 'accept queue fill', value: limit + 1, why: `limit ${limit} = min(backlog ${c.server.backlog}, somaxconn ${somaxconn}), + 1` },
      {
        what: 'late SYNs dropped (still SYN-SENT before the release)',
        value: o.late,
        why: 'a SYN meeting a full accept queue is dropped in both modes',
      },
      { what: 'ListenOverflows', value: `≥ ${o.late}`, why: 'each dropped SYN is counted' },
    ];
    if (abort === 1) out.push({ what: 'held clients reset', value: o.held, why: 'abort_on_overflow=1: at once (ms), EmbryonicRsts = held' });
    else if (o.acceptRate > 0)
      out.push({ what: 'held clients served', value: o.held, why: 'after the SYN-ACK retransmission at 1 s, once the server accepts again' });
    else if (hold < w.from - 0.5)
      out.push({
        what: 'held clients waiting',
        value: o.held,
        why: `their request expires ${expiry} s after its SYN-ACK (tcp_synack_retries=${R}), after the ${hold} s watch`,
      });
    else
      out.push({
        what: 'held clients reset',
        value: hold > w.to + 0.5 ? o.held : 'some or all',
        why: `their request expires at ${expiry} s (tcp_synack_retries=${R}); reset ${w.from}–${w.to} s after they send data`,
      });
    if (o.late > 0)
      out.push({
        what: 'late clients',
        value:
          o.acceptRate > 0 && syn.retransmitsAt.length
            ? `connect after ${syn.retransmitsAt[0]} s`
            : hold + 0.3 > syn.timeoutAt + 1
              ? `ETIMEDOUT at ${syn.timeoutAt} s`
              : 'in SYN-SENT at the end',
        why: `SYN retransmissions at ${syn.retransmitsAt.join(', ') || 'none'} s; connect() gives up at ${syn.timeoutAt} s`,
      });
    return out;
  },
  report: {
    metrics: [
      { label: 'held clients reset', value: (p) => p.scenario.observed.held.reset },
      { label: 'held clients served', value: (p) => p.scenario.observed.held.answered },
      {
        label: 'late clients in SYN-SENT before the release',
        value: (p) => p.scenario.observed.lateBeforeRelease.pending,
        predicted: (p) => p.scenario.predicted.late,
      },
      { label: 'EmbryonicRsts', value: counterOf('server', 'TcpExtEmbryonicRsts') },
      { label: 'ListenOverflows', value: counterOf('server', 'TcpExtListenOverflows') },
      { label: 'client SYN retransmits', value: counterOf('loadgen-1', 'TcpExtTCPSynRetrans') },
      { label: 'late clients timed out (ETIMEDOUT)', value: (p) => p.scenario.observed.late.otherErrors['ETIMEDOUT'] ?? 0 },
      {
        label: 'held clients reset, latest (s after the release)',
        value: (p) => (p.scenario.observed.held.resetMs.length ? Math.max(...p.scenario.observed.held.resetMs) / 1000 : null),
      },
    ],
    x: ['server.sysctls.net.ipv4.tcp_abort_on_overflow', 'scenario.options.acceptRate', 'server.sysctls.net.ipv4.tcp_synack_retries'],
    headline: (p) => {
      const q = p.scenario.predicted;
      const o = p.scenario.observed;
      return `abort_on_overflow=${q.abortOnOverflow}, accept rate ${q.acceptRate}/s: ${o.held.reset} of ${q.held} held clients reset, ${o.held.answered} served, ${o.held.waiting} waiting; ${o.lateBeforeRelease.pending} of ${q.late} late SYNs dropped`;
    },
    series: { label: 'server accept queue (Recv-Q) over time', host: () => 'server', value: recvQ },
    explain: (p) => {
      if (!p.trace?.summary) return [];
      const q = p.scenario.predicted;
      const events = eventsOf(p);
      const drops = overflowDrops(events);
      const rsts = events.filter((e) => e.host === 'server' && e.kind === 'reset-sent');
      const reasons = [...new Set(rsts.map((e) => e.reason))].join(', ');
      const out = [
        `${drops.length} segments that would complete a handshake (held clients' ACKs, and their retransmissions) dropped with reason ${LISTEN_OVERFLOW} at ${times(
          p,
          drops.map((e) => e.t),
        )}; ${rsts.length} RSTs sent${reasons ? ` (reason ${reasons})` : ''}.`,
      ];
      for (const h of heldStories(events, p.capture?.timelines ?? [], q.held, p.server.port)) {
        const parts = [`held client :${h.port}`];
        if (h.synAcks.length) parts.push(`SYN-ACK at ${times(p, h.synAcks)}`);
        parts.push(h.ackDroppedAt !== undefined ? `its ACK dropped (${h.dropReason}) at ${times(p, [h.ackDroppedAt])}` : 'no drop of its ACK seen');
        if (h.resetSentAt !== undefined) parts.push(`reset (${h.resetReason}) at ${times(p, [h.resetSentAt])}`);
        else if (h.servedAt !== undefined) parts.push(`served at ${times(p, [h.servedAt])}`);
        else parts.push('neither reset nor served while watched');
        out.push(parts.join('; ') + '.');
      }
      const overflows = p.hosts['server']?.counters.delta['TcpExtListenOverflows'] ?? 0;
      const ackDrops = countOf(p, 'server', `drop ${LISTEN_OVERFLOW}`);
      const lateSyns = lateSynsSeen(p.capture?.timelines, q.fill);
      if (overflows > ackDrops)
        out.push(
          `ListenOverflows counted ${overflows}: ${ackDrops} of them the drops above, ${overflows - ackDrops} SYNs${lateSyns === null ? '' : ` (the capture saw the late clients send ${lateSyns})`}. A SYN that meets the full queue leaves no kfree_skb event on this kernel (it is freed as consumed), so only the counter shows it.`,
        );
      return out;
    },
  },
});
