#!/usr/bin/env node
// Open-loop arrivals: new connections on a schedule that never waits for the server (a fixed
// rate, Poisson, or bursts of N every T), each with one request (Connection: close). Every
// time is measured from the connection's intended arrival, so a client that falls behind its
// schedule shows as later connects, not as fewer (no coordinated omission); how late each
// connection really started is kept too. Per connection: its local port (the 4-tuple, for a
// join with a capture or the kernel's events), when its handshake completed, its first byte
// of answer, and its outcome: answered, refused (ECONNREFUSED), reset (ECONNRESET/EPIPE),
// timed out (connect() gave up: ETIMEDOUT), address not available (EADDRNOTAVAIL), another
// error, or still waiting when the watch ended. Bounded by count and by the watch, which ends
// sooner once every connection has its outcome.
// Usage: arrivals.js JSON   (an ArrivalsSpec) → one JSON line, an ArrivalsResult
import { connect, type Socket } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

export type Schedule =
  | { kind: 'fixed'; rate: number; count: number }
  | { kind: 'poisson'; rate: number; count: number; seed: number }
  | { kind: 'bursts'; burst: number; periodMs: number; count: number };

export interface ArrivalsSpec {
  host: string;
  port: number;
  schedule: Schedule;
  /** How long after the last intended arrival the connections are watched, ms. */
  watchMs: number;
}

export type Outcome = 'answered' | 'refused' | 'reset' | 'timedout' | 'addrnotavail' | 'other' | 'waiting';

export interface Arrival {
  /** Intended arrival, ms after the schedule's start. */
  at: number;
  /** How much later than intended it really started: its connect() call (the SYN) just returned, ms. */
  lateMs: number;
  /**
   * When it was set going, before the connect() call, ms after `at`: its SYN left between this
   * and `lateMs` (the call can take a ms on a busy machine, and its timer starts with the SYN).
   */
  startMs?: number;
  /** Its local port (0 when the kernel gave none: EADDRNOTAVAIL). */
  port: number;
  outcome: Outcome;
  /** From the intended arrival, ms: the handshake done, the answer's first byte, the error. */
  connectMs?: number;
  firstByteMs?: number;
  errorMs?: number;
  /** The error's code, for outcome 'other'. */
  code?: string;
  /** The answer's HTTP status (outcome 'answered'). */
  status?: number;
}

export interface ArrivalsResult {
  schedule: Schedule;
  /** The epoch ms the schedule started at (the sampler's and the capture's clock). */
  t0: number;
  /**
   * Wall-clock ms per monotonic ms over the run. The times above are monotonic (the clock the
   * kernel's timers keep); the epoch's (a capture's stamps) can run at another rate: at times
   * 1.005 on this project's test machines (their wall clock is slewed now and then). `epochMs`
   * maps a time here onto the epoch, at the run's mean rate.
   */
  realPerMono: number;
  /** The monotonic clock (CLOCK_MONOTONIC, ms) when the schedule started: for a join with another process's monotonic times. */
  mono0: number;
  arrivals: Arrival[];
  byOutcome: Record<Outcome, number>;
  /** The latest a connection started behind its schedule, ms: what the client itself added. */
  maxLateMs: number;
  /**
   * The longest its event loop was held up over the run, ms (perf_hooks' event-loop delay, a
   * 5 ms timer): how late it may have seen any connect, error or byte.
   */
  loopDelayMaxMs: number;
}

/** mulberry32: a small, well-known PRNG, the same numbers for the same seed on every machine. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The intended arrival times, ms after the start. */
export function arrivalTimes(s: Schedule): number[] {
  if (s.kind === 'fixed') return Array.from({ length: s.count }, (_, i) => (i * 1000) / s.rate);
  if (s.kind === 'bursts') return Array.from({ length: s.count }, (_, i) => Math.floor(i / s.burst) * s.periodMs);
  const rnd = prng(s.seed);
  let t = 0;
  return Array.from({ length: s.count }, () => {
    const at = t;
    t += (-Math.log(1 - rnd()) * 1000) / s.rate;
    return at;
  });
}

const OUTCOME_OF: Record<string, Outcome> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ETIMEDOUT: 'timedout',
  EADDRNOTAVAIL: 'addrnotavail',
};

export async function runArrivals(spec: ArrivalsSpec): Promise<ArrivalsResult> {
  const times = arrivalTimes(spec.schedule);
  const arrivals: Arrival[] = times.map((at) => ({ at, lateMs: 0, port: 0, outcome: 'waiting' }));
  const sockets: Socket[] = [];
  // Times from the monotonic clock (sub-µs steps), rounded to µs; t0 on the epoch for a join with
  // a capture's or the sampler's times.
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  const p0 = performance.now();
  const mono0 = Number(process.hrtime.bigint()) / 1e6;
  const t0 = performance.timeOrigin + p0;
  const real0 = Date.now();
  const now = () => performance.now() - p0;
  const us = (ms: number) => Math.round(ms * 1000) / 1000;
  const since = (a: Arrival) => us(now() - a.at);
  const request = `GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n`;
  let done = 0;
  let allSettled = () => {};
  const settled = () => {
    if (++done === arrivals.length) allSettled();
  };
  const start = (a: Arrival) => {
    a.startMs = since(a);
    const s = connect({ host: spec.host, port: spec.port });
    sockets.push(s);
    // Node makes the connect() call (which sends the SYN) on the next tick, before this one:
    // here it has returned, so the time is the SYN's (a few µs after it), and the local port is
    // the kernel's, before the handshake completes.
    process.nextTick(() => {
      a.lateMs = since(a);
      const name: { port?: number } = {};
      (Reflect.get(s, '_handle') as { getsockname?(o: object): number } | undefined)?.getsockname?.(name);
      a.port = name.port ?? 0;
    });
    s.on('connect', () => {
      a.connectMs = since(a);
      a.port ||= s.localPort ?? 0;
      s.write(request);
    });
    s.on('data', (d) => {
      if (a.firstByteMs !== undefined) return;
      a.firstByteMs = since(a);
      const head = d.toString('latin1', 0, 12);
      if (a.outcome === 'waiting' && /^HTTP\/1\.[01] \d{3}$/.test(head)) {
        a.outcome = 'answered';
        a.status = Number(head.slice(9));
        settled();
      }
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (a.outcome !== 'waiting') return;
      a.errorMs = since(a);
      a.outcome = OUTCOME_OF[err.code ?? ''] ?? 'other';
      if (a.outcome === 'other') a.code = err.code ?? err.message;
      settled();
    });
  };
  // Start each connection at its time, never waiting for another: one timer for the next due.
  let next = 0;
  await new Promise<void>((done) => {
    const tick = () => {
      const t = now();
      while (next < arrivals.length && arrivals[next]!.at <= t) start(arrivals[next++]!);
      if (next >= arrivals.length) return done();
      setTimeout(tick, Math.max(0, arrivals[next]!.at - now()));
    };
    tick();
  });
  // The watch ends when it runs out, or sooner once every connection has its outcome.
  const end = (times.at(-1) ?? 0) + spec.watchMs;
  await new Promise<void>((r) => {
    const timer = setTimeout(r, Math.max(0, end - now()));
    allSettled = () => {
      clearTimeout(timer);
      r();
    };
    if (done === arrivals.length) allSettled();
  });
  for (const s of sockets) s.destroy();
  const byOutcome: Record<Outcome, number> = { answered: 0, refused: 0, reset: 0, timedout: 0, addrnotavail: 0, other: 0, waiting: 0 };
  for (const a of arrivals) byOutcome[a.outcome]++;
  loopDelay.disable();
  const mono = now();
  const realPerMono = mono >= 1000 ? (Date.now() - real0) / mono : 1;
  return {
    schedule: spec.schedule,
    t0,
    realPerMono,
    mono0,
    arrivals,
    byOutcome,
    maxLateMs: Math.max(0, ...arrivals.map((a) => a.lateMs)),
    loopDelayMaxMs: Math.round(loopDelay.max / 1e3) / 1e3,
  };
}

/** A time of the run (ms after its start, monotonic) on the epoch, ms. */
export const epochMs = (r: Pick<ArrivalsResult, 't0' | 'realPerMono'>, ms: number) => r.t0 + ms * (r.realPerMono ?? 1);

if (process.argv[1]?.endsWith('arrivals.js')) {
  const arg = process.argv[2];
  if (!arg) {
    process.stderr.write('usage: arrivals.js JSON\n');
    process.exitCode = 2;
  } else
    runArrivals(JSON.parse(arg) as ArrivalsSpec).then(
      (r) => process.stdout.write(JSON.stringify(r) + '\n'),
      (err: Error) => {
        process.stderr.write(`arrivals.js: ${err.message}\n`);
        process.exitCode = 1;
      },
    );
}
