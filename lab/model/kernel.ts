// The kernel model: pure functions from settings to what the Linux TCP stack should do, in
// counts and in seconds. No I/O: the scenarios' judges use them with the values read back from
// each host, and `lab predict` with the values a lab file asks for. Each rule was measured on
// this kernel (6.18); lab/model/observed.ts keeps the numbers it showed and how they were
// measured, and test/model/kernel.test.ts holds every function to them.

/** TIME_WAIT lasts a fixed 60 s (TCP_TIMEWAIT_LEN); no sysctl changes it. */
export const TIME_WAIT_SEC = 60;

/** The initial retransmission timeout of a SYN or a SYN-ACK (TCP_TIMEOUT_INIT), s. */
export const INITIAL_RTO_SEC = 1;

/**
 * The accept queue's limit as listen() sets it: min(backlog as unsigned, somaxconn). A negative
 * backlog is a huge unsigned number, so it means somaxconn; 0 means 0. A full queue is one that
 * holds more than the limit, so it fills to limit + 1.
 */
export function acceptQueueLimit(backlog: number, somaxconn: number): number {
  return backlog < 0 || backlog > somaxconn ? somaxconn : backlog;
}

/** The most a retransmission timeout grows to, s (TCP_RTO_MAX). */
export const RTO_MAX_SEC = 120;

/**
 * When a connecting client sends its SYN retransmissions (s after the first SYN) and when
 * connect() fails with ETIMEDOUT. The first tcp_syn_linear_timeouts timeouts after the first
 * keep the initial 1 s, then each doubles (up to TCP_RTO_MAX, 120 s). tcp_syn_retries bounds
 * the time, not the count (tcp_write_timeout, tcp_model_timeout): the connection expires at
 * the first timeout that comes (2^(retries + 1) − 1) s or more after the first SYN, as if every
 * timeout doubled from 1 s (past 6 retries, 120 s more each). With the defaults (6, 4): at 1,
 * 2, 3, 4, 5, 7, 11, 19, 35, 67 s, and ETIMEDOUT at 131 s. The linear timeouts do not add
 * retries: with (1, 4), 2 retransmissions (1, 2 s) and ETIMEDOUT at 3 s.
 */
export function synTimeline(synRetries: number, linearTimeouts: number): { retransmitsAt: number[]; timeoutAt: number } {
  const thresh = Math.floor(Math.log2(RTO_MAX_SEC / INITIAL_RTO_SEC));
  const expiresAfter =
    synRetries <= thresh
      ? (2 ** (synRetries + 1) - 1) * INITIAL_RTO_SEC
      : (2 ** (thresh + 1) - 1) * INITIAL_RTO_SEC + (synRetries - thresh) * RTO_MAX_SEC;
  const at: number[] = [];
  let t = 0;
  let rto = INITIAL_RTO_SEC;
  for (let i = 1; ; i++) {
    t += rto;
    // The timer fires at t: past the bound (and after one retransmission at least), it expires.
    if (i > 1 && t >= expiresAfter) return { retransmitsAt: at, timeoutAt: t };
    at.push(t);
    // The first linear_timeouts + 1 timeouts are the initial one; then each doubles.
    if (i > linearTimeouts) rto = Math.min(rto * 2, RTO_MAX_SEC);
  }
}

/**
 * How late the kernel may fire a timer of `timeoutSec` on its timer wheel (kernel/time/timer.c),
 * s: a timer lands on the level that holds its timeout, level n (6 bits each, 8× coarser than
 * the one below) rounding its expiry up to 8^n jiffies, so it fires up to one granularity
 * late, plus the jiffy it is checked on. Level 0 holds timeouts below 63 jiffies, level n below
 * 63 × 8^n. HZ 250 (this machine): 1 s = 250 jiffies, level 1, up to 32 ms late; 8 s, level 2,
 * up to 256 ms; 32 s, level 3, up to 2.05 s.
 */
export function timerLatenessSec(timeoutSec: number, hz: number): number {
  return (8 ** wheelLevel(Math.ceil(timeoutSec * hz)) + 1) / hz;
}

/** The timer wheel's level a timeout of `jiffies` lands on (6 bits a level, each 8× coarser). */
export function wheelLevel(jiffies: number): number {
  let level = 0;
  while (jiffies >= 63 * 8 ** level) level++;
  return level;
}

/**
 * The window in which retransmission k (the k-th entry of a timeline, s after the first send)
 * is seen: never early, and late by at most the timer wheel's lateness of every timeout before
 * it and its own, which add up (each timer is armed when the one before it fired); `early` and
 * `late` widen it by what the measurement itself may be off.
 */
/**
 * How far the wall clock (a capture's stamps, the sampler's times) may run off the monotonic
 * one the kernel's timers keep, as a share of the time measured: 0.5 % on this project's test
 * machines, measured now and then (realtime gained 15 ms on monotonic over 3 s; at other times
 * none), as the host slews a guest's clock.
 */
export const WALL_CLOCK_SLEW = 0.005;

export function retransmitWindows(
  at: number[],
  hz: number,
  measurement: { early: number; late: number; /** a share of the time, either way (a clock's rate: WALL_CLOCK_SLEW) */ share?: number },
): Array<[number, number]> {
  let slack = 0;
  const share = measurement.share ?? 0;
  return at.map((t, k) => {
    slack += timerLatenessSec(t - (k ? at[k - 1]! : 0), hz);
    return [t - measurement.early - share * t, t + slack + measurement.late + share * t];
  });
}

/**
 * The server's SYN-ACK retransmissions for a request in its SYN queue (s after the first
 * SYN-ACK), on an exponential timer from 1 s, and when the request expires: after
 * tcp_synack_retries retransmissions and one more timeout (1, 3, 7, 15, 31 s and 63 s with the
 * default 5). The kernel lowers the retries under a SYN flood (a queue more than half full of
 * young requests): this timeline is for a queue that is not.
 */
export function synackTimeline(synackRetries: number): { retransmitsAt: number[]; expiresAt: number } {
  const at: number[] = [];
  for (let i = 1; i <= synackRetries + 1; i++) at.push(INITIAL_RTO_SEC * (2 ** i - 1));
  return { retransmitsAt: at.slice(0, synackRetries), expiresAt: at[synackRetries]! };
}

/**
 * A held client whose final ACK a full accept queue dropped (tcp_abort_on_overflow=0) and that
 * has since sent data: it waits until its request expires on the server; the first of its data
 * retransmissions after that meets no socket and gets an RST. Its retransmission timer doubles,
 * so the reset comes between the expiry and about twice as late. Seconds after the client sent
 * its data, given how long before that its handshake started.
 */
export function heldClientReset(synackRetries: number, heldBeforeDataSec: number): { from: number; to: number } {
  const expiry = synackTimeline(synackRetries).expiresAt - heldBeforeDataSec;
  return { from: Math.max(0, expiry), to: 2 * Math.max(0, expiry) + 2 * INITIAL_RTO_SEC };
}

/**
 * The SYN queue's cap for unproven peers (a flood from one address the server never completed
 * a handshake with). The queue's own limit is the accept queue's limit + 1; with
 * tcp_syncookies=0 tcp_max_syn_backlog (M) also caps it at M − M/4 + 1 (the request is dropped
 * once fewer than M/4 slots are left); with cookies 1 a full queue answers with cookies, with 2
 * every SYN gets one and nothing is queued.
 */
export function synQueueCap(limit: number, maxSynBacklog: number, syncookies: number): number {
  if (syncookies === 2) return 0;
  const own = limit + 1;
  return syncookies === 0 ? Math.min(own, maxSynBacklog - Math.floor(maxSynBacklog / 4) + 1) : own;
}

/**
 * TIME_WAIT sockets after C connections closed by one side within 60 s: tcp_max_tw_buckets (B)
 * caps them; every close past the cap skips TIME_WAIT (TCPTimeWaitOverflow) and frees its port
 * at once.
 */
export function timeWaitCap(closed: number, maxTwBuckets: number): { timeWait: number; overflow: number } {
  return { timeWait: Math.min(closed, maxTwBuckets), overflow: Math.max(0, closed - maxTwBuckets) };
}

/**
 * Whether a client that closes first runs out of local ports toward one server: each connection
 * holds its port for TIME_WAIT's 60 s unless tcp_tw_reuse=1 with timestamps on both sides hands
 * it on after tcp_tw_reuse_delay (`reuses`), or tcp_max_tw_buckets is below the ports less the
 * connections in flight, which hold ports too (`capped`: the rest close without TIME_WAIT and
 * free their port at once). tcp_tw_reuse=2 is loopback only: no help across the lab network.
 */
export function portsRunOut(o: {
  ports: number;
  inFlight: number;
  reuse: number;
  timestampsClient: number;
  timestampsServer: number;
  maxTwBuckets: number;
}): { reuses: boolean; capped: boolean } {
  const reuses = o.reuse === 1 && o.timestampsClient === 1 && o.timestampsServer === 1;
  return { reuses, capped: o.maxTwBuckets + o.inFlight < o.ports };
}

/**
 * Connections a client that closes first makes through P local ports in D ms when each port is
 * reused tcp_tw_reuse_delay ms after it entered TIME_WAIT: one round of P at the start, then one
 * every delay, so P × ceil(D / delay), give or take a round at either end.
 */
export function reuseConnections(ports: number, durationMs: number, delayMs: number): { rounds: number; from: number; to: number } {
  const rounds = Math.ceil(durationMs / Math.max(1, delayMs));
  return { rounds, from: ports * Math.max(1, rounds - 1), to: ports * (rounds + 1) };
}

/**
 * How long the kernel keeps an orphaned FIN-WAIT-2 socket (its owner closed it and the peer
 * never sends its FIN): tcp_fin_timeout seconds. TIME_WAIT's 60 s has nothing to do with it.
 * Below 1 s the kernel's floor (3.5 retransmission timeouts) takes over: not modelled.
 */
export function orphanFinWait2Sec(finTimeoutSec: number): number | null {
  return finTimeoutSec >= 1 ? finTimeoutSec : null;
}

/**
 * TCP_DEFER_ACCEPT's seconds as the kernel keeps them: a count of SYN-ACK timeouts, the fewest
 * whose exponential periods (1, 2, 4 … s, each at most 120) add up to the seconds
 * (secs_to_retrans in net/ipv4/tcp.c): 1 s → 1, 30 s → 5 (1 + 2 + 4 + 8 + 16 = 31 ≥ 30).
 */
export function deferAcceptTimeouts(seconds: number): number {
  if (seconds <= 0) return 0;
  let timeouts = 1;
  let timeout = INITIAL_RTO_SEC;
  let period = timeout;
  while (seconds > period && timeouts < 255) {
    timeouts++;
    timeout = Math.min(timeout * 2, 120);
    period += timeout;
  }
  return timeouts;
}

/**
 * A listener that defers accept (TCP_DEFER_ACCEPT, D timeouts) drops a handshake's bare final
 * ACK (TCPDeferAcceptDrop): the request stays in the SYN queue and its client believes it is
 * connected. It is queued for accept() when data or a FIN arrives. The SYN-ACK is not
 * retransmitted until the D-th timeout, at 2^D − 1 s (1, 3, 7, 15, 31 s …), and an ACK
 * after that one is taken as it is (syn_ack_recalc, tcp_check_req). Until then, N bare
 * handshakes at a listener that does not accept end as follows:
 * - the first limit + 1 wait in the SYN queue (its cap, synQueueCap, with syncookies 0 or 1);
 * - past the cap, syncookies 1 answers with a cookie, and a cookie's ACK makes the socket at
 *   once, deferral or not, into the accept queue until it is full (limit + 1);
 * - syncookies 0 drops the SYN;
 * - syncookies 2 gives every SYN a cookie, so nothing is deferred: as without the option.
 * The clients' FINs at close bring the deferred ones into the accept queue, which then fills.
 */
export function deferredBurst(
  clients: number,
  limit: number,
  maxSynBacklog: number,
  syncookies: number,
): { deferred: number; cookies: number; connected: number; waiting: number } {
  const cap = syncookies === 2 ? 0 : synQueueCap(limit, maxSynBacklog, syncookies);
  const deferred = Math.min(clients, cap);
  const cookies = syncookies === 0 ? 0 : Math.min(clients - deferred, limit + 1);
  return { deferred, cookies, connected: deferred + cookies, waiting: clients - deferred - cookies };
}

/** When a deferring listener first retransmits a deferred request's SYN-ACK, s after the handshake (the D-th timeout). */
export function deferredSynackAt(timeouts: number): number {
  let t = 0;
  for (let i = 0; i < timeouts; i++) t += Math.min(INITIAL_RTO_SEC * 2 ** i, 120);
  return t;
}

/**
 * The connect-time comb: when a client's connect() can complete, s after its first SYN. At
 * once, when that SYN is answered (tooth 0), or just after one of its SYN retransmissions
 * (synTimeline: 1, 2, 3, 4, 5, 7, 11 … s by default), when one is: a SYN dropped (a full
 * queue) is never answered late. Each tooth is a window: never early, late by the timer
 * wheel's lateness of every timeout so far (retransmitWindows) plus `lateSec`, the round trip
 * and how the connect is timed.
 */
export function connectTeeth(
  synRetries: number,
  linearTimeouts: number,
  hz: number,
  lateSec: number,
): Array<{ at: number; from: number; to: number }> {
  const at = synTimeline(synRetries, linearTimeouts).retransmitsAt;
  const w = retransmitWindows(at, hz, { early: 0, late: lateSec });
  return [{ at: 0, from: 0, to: lateSec }, ...at.map((t, k) => ({ at: t, from: w[k]![0], to: w[k]![1] }))];
}

/**
 * The tooth a connect time (s after the first SYN) falls on, or -1 when between teeth. With
 * `upTo`, the time is known only to lie in [sec, upTo] (the SYN's own time is known to lie in
 * an interval): the tooth that interval meets.
 */
export function toothOf(sec: number, teeth: Array<{ from: number; to: number }>, upTo = sec): number {
  return teeth.findIndex((t) => upTo >= t.from && sec <= t.to);
}
