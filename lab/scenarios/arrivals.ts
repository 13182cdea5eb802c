// arrivals: new connections on a schedule that never waits for the server (open loop: a fixed
// rate, Poisson, or bursts), one request each, toward a server that accepts at a set rate.
// What the kernel does: while more than `limit` connections wait in the accept queue, each SYN
// is dropped (ListenOverflows) and its client sends it again at its retransmission times (1, 2,
// 3, 4, 5, 7 … s with the defaults). So each connect lands on a tooth of a comb: at once, or
// one retransmission time later, late by the timer wheel's lateness at most.
// A SYN answered while the queue had room can still be held: SYNs the timer wheel sends in one
// batch are all answered before any of their final ACKs come back, and the ACKs past the room
// are dropped (ListenOverflows again); such a client is connected, and tries again with each
// retransmission of its request until one finds room.
// The model (lab/model/listener.ts) replays the client's real SYN times through both stages
// against a queue of limit + 1 drained as the server accepted, and says how many connections
// land on each tooth, how many time out and how many drops ListenOverflows counts; its range
// comes from what it cannot know (fates).
// Every error is joined to its kernel cause; one the join cannot explain is counted unexplained.
import { z } from 'zod';
import * as hdr from 'hdr-histogram-js';
import { int, type PointConfig } from '../../core/fields.js';
import { arrivalTimes, prng, type ArrivalsResult, type Outcome, type Schedule } from '../in-host/arrivals.js';
import { acceptQueueLimit, connectTeeth, retransmitWindows, synackTimeline, synTimeline, toothOf } from '../model/kernel.js';
import { listenerFate, type ListenerFate, type ListenerInput } from '../model/listener.js';
import type { Counters } from '../observe/nstat.js';
import type { TraceEvent } from '../observe/tracer.js';
import {
  atLeast,
  counter,
  counterOf,
  defineScenario,
  effectiveLimit,
  equal,
  kernelHz,
  MAX_CLIENT_CONNECTIONS,
  numSysctl,
  runInHost,
  setting,
  within,
  type Prediction,
  type RuleVerdict,
} from './common.js';

const Options = z
  .object({
    /** fixed: evenly spaced; poisson: exponential gaps (seeded); bursts: `burst` at once every `periodMs`. */
    schedule: z.enum(['fixed', 'poisson', 'bursts']).default('fixed'),
    /** New connections a second (fixed, poisson). */
    rate: int(1, 5000).default(100),
    /** How long connections arrive, ms. */
    durationMs: int(100, 10_000).default(1000),
    burst: int(1, 2000).default(20),
    periodMs: int(10, 10_000).default(500),
    seed: int(0, 2 ** 31 - 1).default(1),
    /** Connections the server accepts a second (the reactor's accept rate); 0: as fast as it can. */
    acceptRate: int(0, 100_000).default(100),
    /** How long the connections are watched after the last arrival, ms: long enough for the comb's teeth to be seen. */
    watchMs: int(500, 120_000).default(6000),
  })
  .strict();
export type Options = z.infer<typeof Options>;

/**
 * How late the client itself may see a connect, s: its event loop's turn on a busy 2-core
 * machine (measured against a capture: under 50 ms), or, when its loop was held up longer in
 * the run (CI's parallel suites: 69 ms seen), that delay as it measured it, and 5 ms for its
 * timer's step.
 */
const CLIENT_SLACK_SEC = 0.05;
export const clientSlackSec = (r: Pick<ArrivalsResult, 'loopDelayMaxMs'>) => Math.max(CLIENT_SLACK_SEC, ((r.loopDelayMaxMs ?? 0) + 5) / 1000);
/**
 * The most tokens the reactor's accept bucket holds at this rate (native/src/loop.cc
 * AcceptBucket::take): a hundredth of a second's worth, at least 1, and one more once it has
 * waited for a token. Seen at 200/s: after a quiet spell, 3 accepts at once.
 */
export const reactorBucket = (acceptRate: number) => Math.max(1, acceptRate / 100) + 1;
/** How long after its final ACK the client sends its request, ms (a capture: 0.1–0.4 ms). */
const REQUEST_AFTER_MS = 0.3;

export function scheduleOf(o: Options): Schedule {
  if (o.schedule === 'bursts') return { kind: 'bursts', burst: o.burst, periodMs: o.periodMs, count: Math.ceil(o.durationMs / o.periodMs) * o.burst };
  const count = Math.max(1, Math.round((o.rate * o.durationMs) / 1000));
  return o.schedule === 'poisson' ? { kind: 'poisson', rate: o.rate, count, seed: o.seed } : { kind: 'fixed', rate: o.rate, count };
}

export interface ErrorCause {
  outcome: Exclude<Outcome, 'answered'>;
  count: number;
  cause: string;
  /** The kernel's count that explains it; null when the join found none (the errors are unexplained). */
  evidence: string | null;
  /**
   * With the tracer on: of these connections (by their 4-tuple, as far as the record keeps
   * their ports), how many the kernel's events on their own 4-tuple show the cause of, and what
   * those events were.
   */
  events?: { seen: number; of: number; what: string };
}

/** Errored connections' local ports kept per outcome, at most this many each. */
const ERROR_PORTS_KEPT = 2000;

/**
 * The kernel's events that show an error's cause on one connection (the client's port): its
 * SYNs sent again by the client's kernel and never answered (a timeout), an RST its kernel
 * received or the server's sent to it (refused, reset). Only final outcomes: a connection still
 * connecting when the watch ended may not have reached its first retransmission yet. A SYN the
 * full queue dropped leaves no event of its own on this kernel (freed as consumed, not by
 * kfree_skb): its client's retransmissions show it.
 */
const EVIDENCE: Partial<Record<ErrorCause['outcome'], { what: string; shows(events: TraceEvent[], port: number): boolean }>> = {
  timedout: {
    what: 'its SYN sent again by its kernel (tcp_retransmit_skb in SYN-SENT)',
    shows: (ev, port) => ev.some((e) => e.kind === 'retransmit' && e.lport === port && e.state === 'SYN-SENT'),
  },
  refused: {
    what: 'an RST to its port (tcp_send_reset on the server, tcp_receive_reset on it)',
    shows: (ev, port) => ev.some((e) => (e.kind === 'reset-received' && e.lport === port) || (e.kind === 'reset-sent' && e.rport === port)),
  },
  reset: {
    what: 'an RST to its port (tcp_send_reset on the server, tcp_receive_reset on it)',
    shows: (ev, port) => ev.some((e) => (e.kind === 'reset-received' && e.lport === port) || (e.kind === 'reset-sent' && e.rport === port)),
  },
};

export interface Observed {
  connections: number;
  byOutcome: Record<Outcome, number>;
  /** Connections that got in on each tooth (from the client's connect time after its SYN). */
  perTooth: number[];
  /** Connects between the teeth. */
  offTeeth: number;
  /** First SYNs that were lost: connections not in on tooth 0 (later teeth, timed out, still connecting). */
  firstSynsLost: number;
  /** Connections whose connect() had not completed when the watch ended (of those 'waiting'; the rest were connected, not yet answered). */
  stillConnecting?: number;
  /** Their SYNs surely sent (and so dropped) by the watch's end: at least this many drops. */
  stillConnectingDrops?: number;
  /** The client's connect times after each SYN, µs (HdrHistogram, compressed base64) and their percentiles, ms. */
  connect: { histogramUs: string | null; p50: number | null; p99: number | null; max: number | null };
  /** The connect times after each SYN in log buckets (10 a decade): [upper edge ms, count], non-empty ones. */
  connectBuckets: Array<[number, number]>;
  firstByte: { p50: number | null; p99: number | null };
  /** The latest a connection started behind its schedule, ms. */
  maxLateMs: number;
  /** Accepts a second while the connections arrived (the median gap between two answers' first bytes); null with fewer than 2. */
  acceptRate: number | null;
  /** The error codes of outcome 'other'. */
  otherCodes: string[];
  /** The client's local ports (ip_local_port_range). */
  clientPorts: number;
  /** The local ports of the connections that ended in each error (at most ERROR_PORTS_KEPT each): their 4-tuples, for the join with the kernel's events. */
  errorPorts?: Partial<Record<Exclude<Outcome, 'answered'>, number[]>>;
}

export interface Predicted {
  limit: number;
  acceptRate: number;
  /** The teeth: s after the SYN, each with the window it may be seen in. */
  teeth: Array<{ at: number; from: number; to: number }>;
  /** The model on the client's real SYN times: nominal, and the range over what the timing may be. */
  fate: ListenerFate;
  perTooth: Array<[number, number]>;
  timedOut: [number, number];
  waiting: [number, number];
  drops: [number, number];
  firstSynsLost: [number, number];
  /**
   * Connections the final ACK's stage held (their ACK dropped on a full queue after their SYN
   * was answered), and its drops, fewest and most over the variants; absent in records made
   * before the stage was modelled.
   */
  held?: [number, number];
  ackDrops?: [number, number];
  /** The lowest rate (fixed schedule, this duration) at which a SYN is dropped: the knee, /s; null when the server accepts at once. */
  knee: number | null;
  /** How long the connections were watched from the first arrival, s: the teeth past it are not seen. */
  horizonSec: number;
  /** The knee at the accept rate the server really kept (a point that dropped SYNs: it was saturated); else null. */
  kneeMeasured: number | null;
}

/** The timer wheel's phases tried, ms: one every jiffy of the 1 s timers' 8-jiffy granularity. */
const PHASES = 8;
/** How long a client's thread stays on one CPU in the runs tried, ms on average (a capture at 300/s: runs of 20–150 ms). */
const CPU_RUN_MS = 20;

/**
 * Which CPU's wheel (0, or the one a jiffy behind) runs a timer armed at a time: runs of random
 * length (seeded), as the client's thread moves between the 2 CPUs. Seed 0: one wheel.
 */
function cpuRuns(seed: number, endMs: number): ((armMs: number) => number) | undefined {
  if (!seed) return undefined;
  const rnd = prng(seed);
  const edges: number[] = [];
  for (let t = 0; t < endMs + 10_000; t += -Math.log(1 - rnd()) * CPU_RUN_MS) edges.push(t);
  const first = rnd() < 0.5 ? 0 : 1;
  return (armMs) => {
    let lo = 0;
    let hi = edges.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (edges[m]! <= armMs) lo = m + 1;
      else hi = m;
    }
    return (lo + first) % 2;
  };
}

/**
 * The model's fate of the SYNs as the client sent them, over what it cannot know, as a range.
 * - When the server accepted. The latest it can have: each answer's first byte at the client
 *   (an answer comes after its accept; the client stamps one that came while its loop was busy,
 *   as when it issues a burst's connects, when the loop is free again): the most drops. The
 *   earliest: the reactor's token bucket at its rate (held to it within 4 %) and burst, taking
 *   each connection as soon as it may, or with no accept rate set, each at once: the fewest.
 * - When the retransmissions left. With the final ACK's stage (lab/model/listener.ts): the
 *   timer wheel's batches, at each of its phases, with the client's timers on one CPU's wheel
 *   or moving between two; the SYN stage alone: each retransmission at its nominal time or its
 *   latest.
 * - ± 1: a SYN at the very moment of an accept may go either way.
 * The nominal: the variant whose drops are the median.
 */
export function fates(
  sent: number[],
  acceptsAt: number[],
  limit: number,
  syn: { retransmitsAt: number[]; timeoutAt: number },
  endMs: number,
  hz: number,
  acceptRate: number,
  server: { syncookies: number; synackRetries: number },
) {
  const base = { times: sent, limit, retransmitsAt: syn.retransmitsAt, timeoutAt: syn.timeoutAt, endMs };
  const windows = retransmitWindows(syn.retransmitsAt, hz, { early: 0, late: 0 });
  const latest = (k: number) => (windows[k - 1]![1] - syn.retransmitsAt[k - 1]!) * 1000;
  const servers: Array<Partial<ListenerInput>> = [
    { acceptsAt },
    { acceptsAt: acceptsAt.map((t) => t - 1) },
    // The earliest: the reactor's bucket at its rate, or, for a server that takes connections as
    // fast as it can (a foreign server, or no accept rate set), each at once.
    ...(acceptRate > 0 ? [0.96, 1, 1.04].map((x) => ({ acceptRate: acceptRate * x, bucket: reactorBucket(acceptRate * x) })) : [{ acceptRate: 0 }]),
  ];
  const synack = synackTimeline(server.synackRetries).retransmitsAt;
  const synackIntervals = synack.map((t, k) => t - (k ? synack[k - 1]! : 0));
  const variants: ListenerFate[] = servers.flatMap((srv) => [
    ...[undefined, latest].map((shiftMs) => listenerFate({ ...base, ...srv, ...(shiftMs ? { shiftMs } : {}) })),
    ...Array.from({ length: PHASES }, (_, ph) =>
      [0, 1, 2, 3].map((seed) =>
        listenerFate({
          ...base,
          ...srv,
          handshake: {
            wheel: { hz, phaseMs: (ph * 1000) / hz, cpuLag: cpuRuns(seed && seed * PHASES + ph + 1, endMs) },
            syncookies: server.syncookies,
            synackIntervals,
            requestAfterMs: REQUEST_AFTER_MS,
          },
        }),
      ),
    ).flat(),
  ]);
  const byDrops = [...variants].sort((a, b) => a.drops - b.drops);
  const nominal = byDrops[byDrops.length >> 1]!;
  const range = (f: (x: ListenerFate) => number): [number, number] => [
    Math.max(0, Math.min(...variants.map(f)) - 1),
    Math.max(...variants.map(f)) + 1,
  ];
  return {
    nominal,
    perTooth: nominal.perTooth.map((_, k) => range((x) => x.perTooth[k]!)),
    timedOut: range((x) => x.timedOut),
    waiting: range((x) => x.waiting),
    drops: range((x) => x.drops),
    firstSynsLost: range((x) => sent.length - x.perTooth[0]!),
    held: [Math.min(...variants.map((x) => x.held)), Math.max(...variants.map((x) => x.held))] as [number, number],
    ackDrops: [Math.min(...variants.map((x) => x.ackDrops)), Math.max(...variants.map((x) => x.ackDrops))] as [number, number],
  };
}

/**
 * The model on a point's settings alone, for `lab predict` and `lab tune`: the SYNs at their
 * intended times, a queue of limit + 1 drained at the accept rate, the SYN stage only. Its
 * drops are the fewest (a final ACK that meets a full queue adds to them; with no SYN dropped
 * there is no retransmission to batch, so "none" is exact).
 */
export function plannedFate(c: PointConfig, o: Options, limit: number) {
  const syn = synTimeline(setting(c, 'client', 'net.ipv4.tcp_syn_retries'), setting(c, 'client', 'net.ipv4.tcp_syn_linear_timeouts'));
  const schedule = scheduleOf(o);
  const times = arrivalTimes(schedule);
  const fate = listenerFate({
    times,
    limit,
    acceptRate: o.acceptRate,
    bucket: reactorBucket(o.acceptRate),
    retransmitsAt: syn.retransmitsAt,
    timeoutAt: syn.timeoutAt,
    endMs: (times.at(-1) ?? 0) + o.watchMs,
  });
  return { syn, schedule, fate };
}

/** The lowest fixed rate that drops a SYN at a queue of `limit` drained at acceptRate over durationMs (bisection on the model). */
export function kneeRate(limit: number, acceptRate: number, durationMs: number): number | null {
  if (acceptRate === 0) return null;
  const drops = (rate: number) => {
    const times = arrivalTimes({ kind: 'fixed', rate, count: Math.max(1, Math.round((rate * durationMs) / 1000)) });
    return listenerFate({ times, limit, acceptRate, bucket: reactorBucket(acceptRate), retransmitsAt: [], timeoutAt: 0, endMs: Infinity }).drops > 0;
  };
  let [lo, hi] = [1, Math.max(2, acceptRate * 4 + ((limit + 2) * 2000) / durationMs)];
  if (!drops(hi)) return null;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (drops(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** Events a second from the median gap between consecutive times (ms); null with fewer than 2. */
function medianRate(times: number[]): number | null {
  const gaps = times
    .slice(1)
    .map((t, i) => t - times[i]!)
    .sort((a, b) => a - b);
  if (!gaps.length) return null;
  const mid = gaps[Math.floor(gaps.length / 2)]!;
  return mid > 0 ? Math.round(100_000 / mid) / 100 : null;
}

/** A time's log bucket (10 a decade, ms): its index, and the bucket's upper edge (3 significant digits). */
export const logIndex = (msec: number) => Math.ceil(Math.round(Math.log10(msec) * 1e6) / 1e5);
export const logEdge = (i: number) => Number((10 ** (i / 10)).toPrecision(3));

const ms = (us: number | null) => (us === null ? null : Math.round(us / 10) / 100);

/** Each error outcome with its kernel cause, joined to the server's counter that shows it; unexplained when none does. */
export function errorCauses(
  o: Pick<Observed, 'byOutcome' | 'connections' | 'otherCodes' | 'clientPorts' | 'errorPorts' | 'stillConnecting'>,
  server: Counters,
  events?: TraceEvent[],
): ErrorCause[] {
  const out: ErrorCause[] = [];
  const add = (outcome: ErrorCause['outcome'], cause: string, evidence: string | null, count = o.byOutcome[outcome]) => {
    if (count === 0) return;
    const e = EVIDENCE[outcome];
    const ports = o.errorPorts?.[outcome];
    const joined =
      events && e && ports?.length
        ? { events: { seen: ports.filter((port) => port > 0 && e.shows(events, port)).length, of: ports.length, what: e.what } }
        : {};
    out.push({ outcome, count, cause, evidence, ...joined });
  };
  const count = (name: string) => server[name] ?? 0;
  const overflows = count('TcpExtListenOverflows');
  const dropped = overflows > 0 ? `ListenOverflows ${overflows.toLocaleString('en-US')}` : null;
  add('timedout', 'connect timeouts: SYNs dropped on a full accept queue', dropped);
  // Waiting: still connecting (every SYN so far dropped), or connected and held (the final ACK
  // and each retry of the request dropped) or not yet accepted.
  const connecting = o.stillConnecting ?? o.byOutcome.waiting;
  add('waiting', 'still connecting when the watch ended: SYNs dropped on a full accept queue', dropped, connecting);
  add(
    'waiting',
    'connected, not answered when the watch ended: final ACKs (held) or requests not yet accepted on a full accept queue',
    dropped,
    o.byOutcome.waiting - connecting,
  );
  const embryonic = count('TcpExtEmbryonicRsts');
  add('reset', 'resets: a final ACK met a full queue with tcp_abort_on_overflow 1', embryonic > 0 ? `EmbryonicRsts ${embryonic}` : null);
  const rsts = count('TcpOutRsts');
  add('refused', 'refused: no listener answered the SYN with RST', rsts > 0 ? `the server's OutRsts ${rsts}` : null);
  add(
    'addrnotavail',
    "address not available: the client's local ports ran out",
    o.connections >= o.clientPorts ? `${o.connections} connections, ${o.clientPorts} local ports` : null,
  );
  add('other', `other errors (${o.otherCodes.join(', ')})`, null);
  return out;
}

export function errorsLine(errors: ErrorCause[]): string {
  if (!errors.length) return 'no connection errors';
  return errors
    .map((e) => {
      const events = e.events ? `; the kernel's events on their own 4-tuple: ${e.events.seen} of ${e.events.of} with ${e.events.what}` : '';
      return `${e.count.toLocaleString('en-US')} ${e.cause}${e.evidence ? ` (${e.evidence}${events})` : ` (unexplained: no kernel count shows it${events})`}`;
    })
    .join('; ');
}

function errorPortsOf(r: ArrivalsResult): Observed['errorPorts'] {
  const out: NonNullable<Observed['errorPorts']> = {};
  for (const a of r.arrivals) {
    if (a.outcome === 'answered') continue;
    const ports = (out[a.outcome] ??= []);
    if (ports.length < ERROR_PORTS_KEPT) ports.push(a.port);
  }
  return out;
}

function observe(r: ArrivalsResult, teeth: Predicted['teeth'], clientPorts: number, endMs: number): Omit<Observed, 'acceptRate'> {
  const perTooth = teeth.map(() => 0);
  let offTeeth = 0;
  const build = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  const connect = build();
  const firstByte = build();
  for (const a of r.arrivals) {
    if (a.connectMs === undefined) continue;
    const sinceSyn = Math.max(0, a.connectMs - a.lateMs);
    connect.recordValue(Math.max(1, Math.round(sinceSyn * 1000)));
    if (a.firstByteMs !== undefined) firstByte.recordValue(Math.max(1, Math.round((a.firstByteMs - a.lateMs) * 1000)));
    // The SYN left between the call and its return: up to (lateMs − startMs) before the stamp.
    const longest = a.startMs !== undefined ? a.connectMs - a.startMs : sinceSyn;
    const k = toothOf(sinceSyn / 1000, teeth, longest / 1000);
    if (k < 0) offTeeth++;
    else perTooth[k]!++;
  }
  const pct = (h: hdr.Histogram, p: number) => (h.totalCount ? ms(h.getValueAtPercentile(p)) : null);
  const connecting = r.arrivals.filter((a) => a.outcome === 'waiting' && a.connectMs === undefined);
  // Every bucket from the first to the last non-empty one (empty ones as 0, so a line between
  // two teeth goes down to 0); the client's times have 0.1 ms resolution.
  const idx = r.arrivals.filter((a) => a.connectMs !== undefined).map((a) => logIndex(Math.max(0.1, a.connectMs! - a.lateMs)));
  const counts = new Map<number, number>();
  for (const i of idx) counts.set(i, (counts.get(i) ?? 0) + 1);
  const [lo, hi] = idx.length ? [Math.min(...idx), Math.max(...idx)] : [0, -1];
  return {
    connectBuckets: Array.from({ length: hi - lo + 1 }, (_, k) => [logEdge(lo + k), counts.get(lo + k) ?? 0] as [number, number]),
    connections: r.arrivals.length,
    byOutcome: r.byOutcome,
    errorPorts: errorPortsOf(r),
    perTooth,
    offTeeth,
    firstSynsLost: r.arrivals.length - perTooth[0]!,
    stillConnecting: connecting.length,
    // Each SYN surely sent by the watch's end (its tooth's window closed) was dropped: connect() had not completed.
    stillConnectingDrops: connecting.reduce((n, a) => n + teeth.filter((t) => t.to * 1000 <= endMs - (a.at + a.lateMs)).length, 0),
    connect: {
      histogramUs: connect.totalCount ? hdr.encodeIntoCompressedBase64(connect) : null,
      p50: pct(connect, 50),
      p99: pct(connect, 99),
      max: connect.totalCount ? ms(connect.maxValue) : null,
    },
    firstByte: { p50: pct(firstByte, 50), p99: pct(firstByte, 99) },
    maxLateMs: r.maxLateMs,
    otherCodes: [...new Set(r.arrivals.filter((a) => a.outcome === 'other').map((a) => a.code ?? '?'))],
    clientPorts,
  };
}

/**
 * Where the knee is on a sweep of the rate: the model's (at the accept rate asked, and at the
 * one the server kept where it dropped SYNs) and the measured one (the lowest rate that lost a
 * first SYN, above the highest that lost none).
 */
export function kneeMarks(points: Array<{ settings: Record<string, unknown>; scenario: { observed: Observed; predicted: Predicted } }>) {
  const marks: Array<{ label: string; x: number }> = [];
  const first = points[0]?.scenario.predicted;
  if (!first || first.knee === null) return marks;
  marks.push({ label: `the model's knee: ${first.knee}/s (accept rate ${first.acceptRate}/s, limit ${first.limit})`, x: first.knee });
  const kept = points.map((p) => p.scenario.predicted.kneeMeasured).filter((k): k is number => k !== null);
  if (kept.length) {
    const k = kept.sort((a, b) => a - b)[kept.length >> 1]!;
    marks.push({ label: `the model's knee at the accept rate the server kept: ${k}/s`, x: k });
  }
  const byRate = points
    .map((p) => ({ rate: Number(p.settings['scenario.options.rate']), lost: p.scenario.observed.firstSynsLost }))
    .sort((a, b) => a.rate - b.rate);
  const at = byRate.find((r) => r.lost > 0);
  if (at) {
    const below = byRate.filter((r) => r.rate < at.rate && r.lost === 0).at(-1);
    marks.push({ label: `measured knee: first SYNs lost at ${at.rate}/s${below ? ` (none at ${below.rate}/s)` : ''}`, x: at.rate });
  }
  return marks;
}

/** The SYNs the comb says were dropped: k for a client in on tooth k, every one for a timed-out client. */
const combDrops = (o: Observed, p: Predicted) => o.perTooth.reduce((n, c, k) => n + c * k, 0) + o.byOutcome.timedout * p.teeth.length;

/** ListenOverflows split into the comb's SYNs and the final ACK's stage, when the stage dropped any. */
function ackStageText(o: Observed, p: Predicted, overflows: number): string {
  const syns = combDrops(o, p) + (o.stillConnectingDrops ?? 0);
  if (overflows <= syns || o.offTeeth) return '';
  const model = p.ackDrops ? ` (the model: ${p.ackDrops[0].toLocaleString('en-US')}–${p.ackDrops[1].toLocaleString('en-US')})` : '';
  return `; ListenOverflows ${overflows.toLocaleString('en-US')}: ${syns.toLocaleString('en-US')} SYNs on the comb, ${(overflows - syns).toLocaleString('en-US')} at the final ACK's stage${model}`;
}

function kneeText(p: Predicted, o: Observed): string {
  if (p.knee === null) return '';
  const kept = p.kneeMeasured !== null ? `, ${p.kneeMeasured}/s at the ${o.acceptRate}/s it kept` : '';
  return `; predicted knee ${p.knee}/s at accept rate ${p.acceptRate}/s${kept}`;
}

function portRange(get: (n: string) => string | null): number {
  const [lo, hi] = (get('net.ipv4.ip_local_port_range') ?? '32768 60999').trim().split(/\s+/).map(Number);
  return hi! - lo! + 1;
}

export const arrivals = defineScenario<Options, Observed, Predicted>({
  name: 'arrivals',
  options: Options,
  needsReactor: (o) => (o.acceptRate > 0 ? "it sets the server's accept rate through the reactor's control API" : null),
  check: (_c, o) => {
    const n = scheduleOf(o).count;
    return n > MAX_CLIENT_CONNECTIONS
      ? `arrivals would open ${n} connections; at most ${MAX_CLIENT_CONNECTIONS}: lower scenario.options.rate or durationMs`
      : null;
  },
  async drive(ctx) {
    const o = ctx.options;
    const schedule = scheduleOf(o);
    if (o.acceptRate > 0) await ctx.control.setAcceptRate(o.acceptRate);
    ctx.progress(`arrivals: ${schedule.count} connections (${o.schedule}) over ${o.durationMs} ms, watched ${o.watchMs} ms more …`);
    const lastAt = arrivalTimes(schedule).at(-1) ?? 0;
    const r = await runInHost<ArrivalsResult>(
      ctx.client,
      'arrivals',
      [JSON.stringify({ host: ctx.server.address, port: ctx.port, schedule, watchMs: o.watchMs })],
      lastAt + o.watchMs + 60_000,
    );
    ctx.writeRaw('arrivals.json', JSON.stringify(r));
    const { hz } = kernelHz();
    const syn = synTimeline(numSysctl(ctx.clientSysctl, 'net.ipv4.tcp_syn_retries'), numSysctl(ctx.clientSysctl, 'net.ipv4.tcp_syn_linear_timeouts'));
    const teeth = connectTeeth(
      numSysctl(ctx.clientSysctl, 'net.ipv4.tcp_syn_retries'),
      numSysctl(ctx.clientSysctl, 'net.ipv4.tcp_syn_linear_timeouts'),
      hz,
      clientSlackSec(r),
    );
    const limit = effectiveLimit(ctx);
    // The model runs on the SYNs as the client really sent them and the accepts as the server
    // really made them (each answer's first byte), until the watch ended.
    const sent = r.arrivals.map((a) => a.at + a.lateMs);
    const acceptsAt = r.arrivals
      .filter((a) => a.firstByteMs !== undefined)
      .map((a) => a.at + a.firstByteMs!)
      .sort((x, y) => x - y);
    const f = fates(sent, acceptsAt, limit, syn, lastAt + o.watchMs, hz, o.acceptRate, {
      syncookies: numSysctl(ctx.serverSysctl, 'net.ipv4.tcp_syncookies'),
      synackRetries: numSysctl(ctx.serverSysctl, 'net.ipv4.tcp_synack_retries'),
    });
    const acceptRate = medianRate(acceptsAt.filter((t) => t <= o.durationMs));
    return {
      observed: { ...observe(r, teeth, portRange(ctx.clientSysctl), lastAt + o.watchMs), acceptRate },
      predicted: {
        limit,
        acceptRate: o.acceptRate,
        teeth,
        fate: f.nominal,
        perTooth: f.perTooth,
        timedOut: f.timedOut,
        waiting: f.waiting,
        drops: f.drops,
        firstSynsLost: f.firstSynsLost,
        held: f.held,
        ackDrops: f.ackDrops,
        knee: o.schedule === 'fixed' ? kneeRate(limit, o.acceptRate, o.durationMs) : null,
        horizonSec: (lastAt + o.watchMs) / 1000,
        kneeMeasured:
          o.schedule === 'fixed' && f.nominal.drops > 0 && acceptRate !== null ? kneeRate(limit, Math.round(acceptRate), o.durationMs) : null,
      },
    };
  },
  judge(ctx, d, obs) {
    const o = d.observed;
    const p = d.predicted;
    const out: RuleVerdict[] = [];
    const unexpected = o.byOutcome.refused + o.byOutcome.reset + o.byOutcome.addrnotavail + o.byOutcome.other;
    out.push(
      equal(
        'errors first: no connection error the model does not predict (refused, reset, no address, other)',
        0,
        unexpected,
        'a full accept queue drops SYNs, it refuses and resets nothing (tcp_abort_on_overflow 0)',
      ),
    );
    const causes = errorCauses(o, obs.counters['server'] ?? {}, obs.trace?.events);
    const unexplained = causes.filter((e) => e.evidence === null);
    out.push(
      equal(
        'every connection error joined to a kernel count',
        0,
        unexplained.reduce((n, e) => n + e.count, 0),
        unexplained.length
          ? `unexplained: ${unexplained.map((e) => `${e.count} ${e.outcome}`).join(', ')}`
          : 'each error outcome has the counter of its cause',
      ),
    );
    // With the tracer on: each errored connection, by its own 4-tuple, in the kernel's events.
    const joined = causes.filter((e) => e.events);
    if (joined.length) {
      const lost = obs.trace!.summary.dropped;
      out.push(
        equal(
          "every connection error seen in the kernel's events on its own 4-tuple",
          0,
          joined.reduce((n, e) => n + e.events!.of - e.events!.seen, 0),
          `each has its cause on that connection: ${joined.map((e) => `${e.outcome}: ${e.events!.seen} of ${e.events!.of} with ${e.events!.what}`).join('; ')}`,
          lost > 0 ? `the tracer lost ${lost} event(s): a connection without one is not known to have none` : undefined,
        ),
      );
    }
    out.push(
      equal(
        'every connect on a tooth of the comb',
        0,
        o.offTeeth,
        'a dropped SYN is sent again only at its retransmission times, late by the timer wheel at most (and the client sees it late by its own event loop at most)',
      ),
    );
    // The comb's drops: a client in on tooth k had k SYNs dropped, a timed-out one every SYN.
    // ListenOverflows counts more: each try of a final ACK that met a full queue after its SYN
    // was answered (the final ACK's stage: SYNs answered together in one batch of the timer
    // wheel, whose ACKs then find room for fewer than all).
    const overflows = counter(obs, 'server', 'TcpExtListenOverflows');
    const comb = combDrops(o, p);
    // Still connecting at the watch's end: each SYN surely sent by then was dropped (a lower bound).
    const known = o.stillConnectingDrops !== undefined;
    const atLeastDrops = comb + (o.stillConnectingDrops ?? 0);
    const unknown = o.offTeeth + (known ? 0 : o.byOutcome.waiting);
    out.push(
      atLeast(
        'SYNs dropped: ListenOverflows ≥ the comb',
        atLeastDrops,
        overflows,
        `a client in on tooth k had k SYNs dropped on the full queue, a timed-out one all of them${o.stillConnecting ? `, one still connecting each SYN it surely sent (${o.stillConnectingDrops} SYNs of ${o.stillConnecting} clients)` : ''}; a final ACK that meets a full queue is counted too`,
        unknown > 0 ? `${unknown} connection(s) not on a tooth: their drops are not known from the client` : undefined,
      ),
    );
    // The model's counts. Outside its range, with connections held at the final ACK's stage in
    // any variant, the verdict is INCONCLUSIVE, not FAIL: which held client or which SYN batch
    // wins each slot the server frees turns on microseconds (the wheel's phase, the CPU each
    // timer ran on, each accept's instant), which the model covers by its variants, not exactly.
    const held = p.held?.[1] ?? 0;
    const modelled = (rule: string, [lo, hi]: [number, number], observed: number, why: string): RuleVerdict => {
      const v = within(rule, lo, hi, observed, why);
      if (v.verdict !== 'FAIL' || held === 0) return v;
      return {
        ...v,
        verdict: 'INCONCLUSIVE',
        reason: `expected ${lo}–${hi}, observed ${observed}, while the final ACK's stage held up to ${held} connection(s): who wins each freed slot turns on microseconds the model covers by its variants (the timer wheel's phase, which CPU ran each timer, each accept's instant), not exactly`,
      };
    };
    const lastOf = (xs: boolean[]) => xs.lastIndexOf(true);
    const last = Math.max(lastOf(o.perTooth.map((n) => n > 0)), lastOf(p.perTooth.map(([, hi]) => hi > 1)));
    for (let k = 0; k <= last; k++)
      out.push(
        modelled(
          `connections in on tooth ${k} (${p.teeth[k]!.at} s after the SYN)`,
          p.perTooth[k]!,
          o.perTooth[k]!,
          k === 0
            ? 'SYNs that found room in the queue (limit + 1, drained as the server accepted)'
            : `SYNs dropped ${k} time(s) on the full queue, then answered`,
        ),
      );
    out.push(modelled('connect timeouts (SYN retries exhausted)', p.timedOut, o.byOutcome.timedout, 'every SYN of the client dropped'));
    if (p.knee !== null)
      out.push(
        modelled(
          `the knee (${p.knee}/s at accept rate ${p.acceptRate}/s, limit ${p.limit}): first SYNs lost`,
          p.firstSynsLost,
          o.firstSynsLost,
          'arrivals faster than accepts for longer than the queue absorbs: the excess SYNs are dropped',
        ),
      );
    out.push(
      modelled(
        'SYNs and final ACKs dropped (ListenOverflows) as the model says',
        p.drops,
        overflows,
        held > 0
          ? `the queue of limit + 1, drained as the server accepted; ${p.ackDrops![0]}–${p.ackDrops![1]} of them at the final ACK's stage (${p.held![0]}–${held} connections held)`
          : 'the queue of limit + 1, drained as the server accepted',
      ),
    );
    return out;
  },
  model: [
    {
      name: 'net.core.somaxconn',
      side: 'server',
      rule: 'accept queue limit = min(backlog, somaxconn); a SYN is dropped while more than the limit wait',
    },
    {
      name: 'net.ipv4.tcp_syncookies',
      side: 'server',
      rule: "the final ACK's stage: past limit requests in the SYN queue a SYN gets a cookie (1; 2: always) and nothing is kept, or is dropped (0)",
    },
    {
      name: 'net.ipv4.tcp_synack_retries',
      side: 'server',
      rule: "the final ACK's stage: a held request's SYN-ACK is sent again at 1, 3, 7 … s, each bringing back an ACK to try",
      unless: (c, o) => {
        const expires = synackTimeline(setting(c, 'server', 'net.ipv4.tcp_synack_retries')).expiresAt;
        return expires * 1000 < o.durationMs + o.watchMs
          ? `a held request expires ${expires} s after its SYN-ACK, within the watch (its client is then reset): not modelled`
          : null;
      },
    },
    { name: 'net.ipv4.tcp_syn_retries', side: 'client', rule: "the comb's teeth: the SYN retransmission times, and when connect() gives up" },
    { name: 'net.ipv4.tcp_syn_linear_timeouts', side: 'client', rule: "the comb's teeth: the first timeouts stay at 1 s" },
    { name: 'net.ipv4.ip_local_port_range', side: 'client', rule: 'the local ports the connections may use (address not available past them)' },
  ],
  predict(c: PointConfig, o: Options): Prediction[] {
    const limit = acceptQueueLimit(c.server.backlog, setting(c, 'server', 'net.core.somaxconn'));
    const { syn, schedule, fate } = plannedFate(c, o, limit);
    const knee = o.schedule === 'fixed' ? kneeRate(limit, o.acceptRate, o.durationMs) : null;
    return [
      { what: 'connections', value: schedule.count, why: `${o.schedule} arrivals over ${o.durationMs} ms` },
      { what: "the comb's teeth, s after the SYN", value: [0, ...syn.retransmitsAt].join(', '), why: 'tcp_syn_retries and tcp_syn_linear_timeouts' },
      {
        what: 'connections per tooth',
        value:
          fate.perTooth
            .map((n, k) => `${k}:${n}`)
            .filter((x) => !x.endsWith(':0'))
            .join(' ') || 'none',
        why: `a queue of limit ${limit} + 1 drained at ${o.acceptRate || 'an unlimited'}/s`,
      },
      { what: 'SYNs dropped (ListenOverflows)', value: fate.drops, why: 'each SYN that meets more than the limit waiting' },
      { what: 'connect timeouts', value: fate.timedOut, why: 'every SYN of the client dropped' },
      ...(knee !== null
        ? [
            {
              what: 'the knee: lowest fixed rate that drops a SYN, /s',
              value: knee,
              why: `accept rate ${o.acceptRate}/s + (limit + 1) over ${o.durationMs} ms`,
            },
          ]
        : []),
    ];
  },
  report: {
    metrics: [
      {
        label: 'first SYNs lost',
        value: (p) => p.scenario.observed.firstSynsLost,
        predicted: (p) => p.scenario.observed.connections - p.scenario.predicted.fate.perTooth[0]!,
        better: 'lower',
      },
      {
        label: 'SYNs dropped (ListenOverflows)',
        value: counterOf('server', 'TcpExtListenOverflows'),
        predicted: (p) => p.scenario.predicted.fate.drops,
        better: 'lower',
      },
      { label: 'connect p99, ms', value: (p) => p.scenario.observed.connect.p99, better: 'lower' },
      {
        label: 'connect timeouts',
        value: (p) => p.scenario.observed.byOutcome.timedout,
        predicted: (p) => p.scenario.predicted.fate.timedOut,
        better: 'lower',
      },
    ],
    x: ['scenario.options.rate', 'scenario.options.acceptRate', 'server.backlog'],
    curve: {
      label: 'the knee: first SYNs lost per arrival rate, measured and the model’s (on the accepts as they happened)',
      axis: 'scenario.options.rate',
      yTitle: 'first SYNs lost',
      observed: (p) => p.scenario.observed.firstSynsLost,
      predicted: (p) => p.scenario.observed.connections - p.scenario.predicted.fate.perTooth[0]!,
      marks: (points) => kneeMarks(points),
    },
    histogram: {
      label: 'connect time after the SYN (the comb), per point',
      xTitle: 'ms after the SYN (log)',
      buckets: (p) => p.scenario.observed.connectBuckets,
      marks: (p) => p.scenario.predicted.teeth.filter((t, k) => k > 0 && t.at <= p.scenario.predicted.horizonSec).map((t) => t.at * 1000),
      marksLabel: "the model's teeth (SYN retransmission times)",
    },
    headline: (p) => {
      const o = p.scenario.observed;
      const teeth = o.perTooth.map((n, k) => (n ? `${n} at ${p.scenario.predicted.teeth[k]!.at} s` : '')).filter(Boolean);
      const server = p.hosts['server']?.counters.delta ?? {};
      return `${errorsLine(errorCauses(o, server, p.trace?.events))}; ${o.connections} connections, in on the comb: ${teeth.join(', ') || 'none'}${ackStageText(o, p.scenario.predicted, server['TcpExtListenOverflows'] ?? 0)}; connect p99 ${o.connect.p99 ?? '–'} ms${kneeText(p.scenario.predicted, o)}`;
    },
  },
});
