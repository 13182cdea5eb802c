// Open-loop arrivals at a listener, packet by packet: the SYN stage and the final ACK's stage.
// Pure: the arrivals scenario replays the client's real SYN times and the server's real accepts
// through it, `lab predict` and `lab tune` the times a lab file asks for.
//
// What the kernel does (net/ipv4/tcp_input.c tcp_conn_request, tcp_minisocks.c tcp_check_req,
// tcp_ipv4.c tcp_v4_syn_recv_sock, inet_connection_sock.c reqsk_timer_handler), as measured on
// this kernel (6.18) with a capture beside the counters:
// - A SYN is dropped while more than `limit` connections wait in the accept queue
//   (ListenOverflows). Else it is answered: with a request in the SYN queue, or, with
//   tcp_syncookies 1 while the SYN queue holds more than `limit` requests (2: always), with a
//   cookie and nothing kept. The client's connect() completes on that SYN-ACK.
// - The client's final ACK (and its request, a fraction of a ms later) makes the connection only
//   if the accept queue has room then; else each is dropped and counted (ListenOverflows again).
//   A request stays in the SYN queue, marked acked; a cookie leaves nothing.
// - Such a held client tries again with every data retransmission: a loss probe and then its
//   retransmission timeout, from 200 ms (tcp_rto_min) doubling. A kept request's SYN-ACK is
//   also sent again at 1, 3, 7 … s, and each brings back an ACK: one more try.
// - Timers fire on the kernel's timer wheel: a timeout is rounded up to its level's granularity
//   in absolute jiffies (8 jiffies, 32 ms at HZ 250, for the 1 s SYN retransmissions), so the
//   retransmissions of many clients leave in one batch. A batch's SYNs all meet the queue as it
//   was before any of their ACKs come back: all are answered when there is room for one, and
//   the ACKs past the room are dropped. That is how connections come to be held.
import { Heap } from 'heap-js';
import { wheelLevel } from './kernel.js';

/** A final ACK comes back a round trip after its SYN: after every SYN that left in the same batch. */
const ONE_US = 0.001;

export interface ListenerFate {
  /** Connections answered on each tooth: [0] on their first SYN, [k] on their k-th retransmission. */
  perTooth: number[];
  /** Connections whose SYN retries ran out (connect() gives ETIMEDOUT). */
  timedOut: number;
  /** Connections with no answer when the watch ends: still retrying their SYN, held, or not yet accepted. */
  waiting: number;
  /** Everything ListenOverflows counts: SYNs dropped on the full queue and final ACKs (or their retries) dropped on it. */
  drops: number;
  /** Of the drops, the final ACK's stage: each try of a held connection that met a full queue. */
  ackDrops: number;
  /** Connections held after connect() completed (a final ACK dropped at least once). */
  held: number;
  /** SYNs answered with a cookie (SyncookiesSent). */
  cookies: number;
}

/** The timer wheel of the kernel that runs a client's or a server's timers. */
export interface Wheel {
  hz: number;
  /** Where the jiffies stand against the times' origin, ms: jiffy j starts at phaseMs + j × 1000 / hz. */
  phaseMs: number;
  /**
   * Jiffies more for a timer armed at this time (ms): each CPU has a wheel of its own, and a
   * client's timers run on the CPU its thread was on. On these 2-core machines one CPU's
   * batches leave a jiffy after the other's (a capture: phases 10 and 14 ms in 32, in runs).
   */
  cpuLag?: (armMs: number) => number;
}

/**
 * When a timer armed at `armMs` for `jiffies` fires: its expiry rounded up past its level's
 * granularity (calc_index: (expires >> shift) + 1, so even level 0 is one jiffy on).
 */
export function wheelFires(w: Wheel, armMs: number, jiffies: number): number {
  const jiffy = 1000 / w.hz;
  const expires = Math.floor((armMs - w.phaseMs) / jiffy) + jiffies;
  const gran = 8 ** wheelLevel(jiffies);
  return w.phaseMs + ((Math.floor(expires / gran) + 1) * gran + (w.cpuLag?.(armMs) ?? 0)) * jiffy;
}

/**
 * The client's data retransmission intervals after its first send, jiffies: the loss probe
 * (srtt/4 + tcp_rto_min, no later than the RTO), then the RTO from srtt + tcp_rto_min (200 ms,
 * one jiffy more for the round trip's microseconds) doubling. Measured (HZ 250): 208, 208, 420,
 * 828, 1,664, 3,324 ms between a held client's tries.
 */
export function dataRetryJiffies(hz: number, count = 12): number[] {
  const rto = Math.floor((200 * hz) / 1000) + 1;
  return [rto, ...Array.from({ length: count - 1 }, (_, k) => Math.min(rto * 2 ** k, 120 * hz))];
}

export interface ListenerInput {
  /** Each client's first SYN, ms (when the client really sent it, or meant to). */
  times: number[];
  limit: number;
  /** The client's SYN retransmissions, s after the first SYN (synTimeline), and when connect() gives up. */
  retransmitsAt: number[];
  timeoutAt: number;
  /** The end of the watch, ms: SYNs due later are still waiting. */
  endMs: number;
  /** The server's accepts: at these times (ms, ascending), or at a rate through a token bucket that holds up to `bucket` tokens (at least 1). */
  acceptsAt?: number[];
  acceptRate?: number;
  bucket?: number;
  /**
   * The final ACK's stage. Without it, handshakes are instantaneous (a SYN let in is in the
   * accept queue at once) and retransmissions leave at their nominal times moved by `shiftMs`:
   * the SYN stage alone, for planning.
   */
  handshake?: {
    wheel: Wheel;
    /** tcp_syncookies on the server. */
    syncookies: number;
    /** The server's SYN-ACK retransmission intervals for a kept request, s (1, 2, 4 … with tcp_synack_retries 5). */
    synackIntervals: number[];
    /** How long after its final ACK the client sends its request, ms. */
    requestAfterMs: number;
  };
  shiftMs?: (k: number) => number;
  /** Retransmission k of connection i at this time (ms) instead of the wheel's: as a capture saw it. */
  synAt?: (i: number, k: number) => number | undefined;
}

type Ev = { t: number; seq: number; conn: number; kind: 'syn' | 'ack' | 'synack'; n: number };

export function listenerFate(o: ListenerInput): ListenerFate {
  const fate: ListenerFate = {
    perTooth: Array.from({ length: o.retransmitsAt.length + 1 }, () => 0),
    timedOut: 0,
    waiting: 0,
    drops: 0,
    ackDrops: 0,
    held: 0,
    cookies: 0,
  };
  const hs = o.handshake;
  const jiffies = (sec: number) => Math.round(sec * (hs?.wheel.hz ?? 1000));
  const synIntervals = o.retransmitsAt.map((t, k) => t - (k ? o.retransmitsAt[k - 1]! : 0));
  const dataIntervals = hs ? dataRetryJiffies(hs.wheel.hz) : [];
  let seq = 0;
  const events = new Heap<Ev>((a, b) => a.t - b.t || a.seq - b.seq);
  const push = (t: number, conn: number, kind: Ev['kind'], n: number) => events.push({ t, seq: seq++, conn, kind, n });
  o.times.forEach((t, i) => push(t, i, 'syn', 0));
  // Per connection: whether it holds a request, when its request (data) left, and whether it is in.
  const request = new Array<boolean>(o.times.length).fill(false);
  const synackAt = new Array<number>(o.times.length).fill(0);
  const dataAt = new Array<number>(o.times.length).fill(0);
  const state = new Array<'connecting' | 'handshake' | 'held' | 'in'>(o.times.length).fill('connecting');

  // The accept queue and the server's accepts up to time t.
  let queued = 0;
  let requests = 0;
  const perMs = (o.acceptRate ?? 0) / 1000;
  const cap = Math.max(1, o.bucket ?? 1);
  let tokens = 1;
  let now = 0;
  let nextAccept = 0;
  const advance = (t: number) => {
    if (o.acceptsAt) {
      for (; nextAccept < o.acceptsAt.length && o.acceptsAt[nextAccept]! <= t; nextAccept++) queued = Math.max(0, queued - 1);
      return;
    }
    if (!perMs) {
      queued = 0;
      return;
    }
    while (now < t) {
      if (queued === 0) {
        tokens = Math.min(cap, tokens + (t - now) * perMs);
        now = t;
        break;
      }
      if (tokens >= 1) {
        tokens -= 1;
        queued--;
        continue;
      }
      const due = now + (1 - tokens) / perMs;
      if (due > t) {
        tokens += (t - now) * perMs;
        now = t;
        break;
      }
      now = due;
      tokens = 1;
    }
    while (queued > 0 && tokens >= 1) {
      tokens -= 1;
      queued--;
    }
  };

  // A SYN dropped: its next retransmission, or the end of its connect().
  const retransmit = (t: number, i: number, k: number) => {
    if (k >= o.retransmitsAt.length) {
      const gaveUp = hs ? wheelFires(hs.wheel, t, jiffies(o.timeoutAt - o.retransmitsAt.at(-1)!)) : o.times[i]! + o.timeoutAt * 1000;
      if (gaveUp > o.endMs) fate.waiting++;
      else fate.timedOut++;
      return;
    }
    const next =
      o.synAt?.(i, k + 1) ??
      (hs ? wheelFires(hs.wheel, t, jiffies(synIntervals[k]!)) : o.times[i]! + o.retransmitsAt[k]! * 1000 + (o.shiftMs?.(k + 1) ?? 0));
    if (next > o.endMs) fate.waiting++;
    else push(next, i, 'syn', k + 1);
  };

  while (events.size()) {
    const { t, conn: i, kind, n } = events.pop()!;
    if (state[i] === 'in') continue;
    advance(t);
    if (kind === 'syn') {
      // The SYN queue first: past `limit` requests, a cookie (tcp_syncookies 1) or a drop (0).
      const full = requests > o.limit;
      const cookie = hs ? hs.syncookies === 2 || (hs.syncookies === 1 && full) : false;
      if (hs && hs.syncookies === 0 && full) {
        retransmit(t, i, n);
        continue;
      }
      if (queued > o.limit) {
        fate.drops++;
        retransmit(t, i, n);
        continue;
      }
      fate.perTooth[n]!++;
      if (!hs) {
        queued++;
        state[i] = 'in';
        continue;
      }
      if (cookie) fate.cookies++;
      else requests++;
      request[i] = !cookie;
      synackAt[i] = t;
      state[i] = 'handshake';
      // The final ACK comes back after every SYN that left with this one.
      push(t + ONE_US, i, 'ack', 0);
      continue;
    }
    // A try at the final ACK's stage: the ACK (n 0), the request (1), its retransmissions (2 …), or an ACK to a SYN-ACK sent again.
    if (queued <= o.limit) {
      queued++;
      if (request[i]) requests--;
      state[i] = 'in';
      continue;
    }
    fate.drops++;
    fate.ackDrops++;
    if (state[i] !== 'held') {
      state[i] = 'held';
      fate.held++;
      if (request[i] && hs!.synackIntervals.length) push(wheelFires(hs!.wheel, synackAt[i]!, jiffies(hs!.synackIntervals[0]!)), i, 'synack', 0);
    }
    if (kind === 'synack') {
      const next = n + 1;
      if (next < hs!.synackIntervals.length) push(wheelFires(hs!.wheel, t, jiffies(hs!.synackIntervals[next]!)), i, 'synack', next);
      continue;
    }
    if (n === 0) {
      dataAt[i] = t + hs!.requestAfterMs;
      push(dataAt[i]!, i, 'ack', 1);
    } else if (n - 1 < dataIntervals.length) {
      const next = wheelFires(hs!.wheel, n === 1 ? dataAt[i]! : t, dataIntervals[n - 1]!);
      if (next <= o.endMs) push(next, i, 'ack', n + 1);
    }
  }
  // Connected but not answered: held at the final ACK's stage, or in the queue, not yet accepted.
  advance(o.endMs);
  fate.waiting += state.filter((x) => x === 'held' || x === 'handshake').length + queued;
  return fate;
}
