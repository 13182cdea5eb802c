// herd: N waiters of a prethread server share one port (server.share), and connections
// arrive one at a time with a gap, so every waiter is idle when each one comes. What the
// kernel does per connection:
//   accept    — the waiters block in accept() on one listener: an exclusive wait, one is woken;
//   epoll     — each waiter's level-triggered epoll holds the listener: every idle waiter is
//               woken (the thundering herd); those that find nothing ready mostly sleep again
//               inside the kernel, so the herd shows in their context switches, not in accepts;
//   exclusive — EPOLLEXCLUSIVE: the first idle waiter in registration order is woken;
//   reuseport — a listener per waiter: the kernel picks one by hash; no one else wakes.
// A waiter's voluntary context switches (from /proc/<pid>/task/<tid>/status, read by the
// server) count its wake-ups. Serving one `Connection: close` request costs it at most 4
// (the wait that returns, the request's read, the client's FIN, one spare), so switches
// beyond 4 per connection it took are wake-ups for connections it did not take.
import { z } from 'zod';
import { int, type PointConfig } from '../../core/fields.js';
import type { SequentialResult } from '../in-host/sequential.js';
import type { StatsWithCpu } from '../pipeline/record.js';
import { serverStats } from '../pipeline/server-host.js';
import { atLeast, atMost, defineScenario, equal, runInHost, type Prediction } from './common.js';

const Options = z
  .object({
    /** Connections, one after another. */
    connections: int(20, 5000).default(200),
    /** Quiet between two connections, ms (every waiter goes back to its wait). */
    gapMs: int(0, 1000).default(5),
  })
  .strict();

/** Switches a waiter may spend on one connection it took (see the header). */
export const SERVE_SWITCHES = 4;
const MIN_WAITERS = 4;

export interface Waiter {
  role: string;
  accepted: number;
  voluntaryCtxSwitches: number;
}

export interface Observed extends SequentialResult {
  share: string;
  waiters: Waiter[];
  wakeups: number;
  futileWakeups: number;
  /** Σ over waiters of max(0, switches − 4 × connections taken): wake-ups for others' connections. */
  foreignWakeups: number;
}

export interface Predicted {
  share: string;
  waiters: number;
  connections: number;
  /** The least foreign wake-ups the herd makes (epoll), or the most the others may show. */
  foreignAtLeast: number | null;
  foreignAtMost: number | null;
}

function expected(c: PointConfig, o: z.infer<typeof Options>): Predicted {
  const n = c.server.threads;
  const herd = c.server.share === 'epoll';
  return {
    share: c.server.share,
    waiters: n,
    connections: o.connections,
    // Every idle waiter wakes per connection: N − 1 foreign wake-ups each, less what the
    // generous serving allowance absorbs; a third of that is a floor it clears by far.
    foreignAtLeast: herd ? Math.floor(((n - 1) * o.connections) / 3) : null,
    foreignAtMost: herd ? null : Math.ceil(o.connections / 10),
  };
}

function waitersOf(before: StatsWithCpu, after: StatsWithCpu): Waiter[] {
  return after.perThread.map((t, i) => {
    const b = before.perThread[i];
    return {
      role: t.role,
      accepted: t.accepted - (b?.accepted ?? 0),
      voluntaryCtxSwitches: (t.voluntaryCtxSwitches ?? 0) - (b?.voluntaryCtxSwitches ?? 0),
    };
  });
}

export const herd = defineScenario<z.infer<typeof Options>, Observed, Predicted>({
  name: 'herd',
  needsReactor: () => "it reads the reactor's wake-up counters from /stats",
  options: Options,
  check: (c) =>
    c.server.model !== 'prethread' || c.server.threads < MIN_WAITERS
      ? `the herd scenario needs server.model prethread with at least ${MIN_WAITERS} waiters (server.threads), got model ${c.server.model} with ${c.server.threads} thread(s): with fewer, one woken waiter's switches cannot be told from serving costs`
      : null,
  async drive(ctx) {
    const o = ctx.options;
    const before = await serverStats(ctx.server, ctx.controlPort);
    const seq = await runInHost<SequentialResult>(
      ctx.client,
      'sequential',
      [ctx.server.address, ctx.port, o.connections, o.gapMs],
      o.connections * (o.gapMs + 100) + 30_000,
    );
    // The client saw each close; the server's counters follow within moments.
    let after = await serverStats(ctx.server, ctx.controlPort);
    for (let i = 0; i < 40 && after.total.closed - before.total.closed < seq.ok; i++) {
      await new Promise((r) => setTimeout(r, 50));
      after = await serverStats(ctx.server, ctx.controlPort);
    }
    const waiters = waitersOf(before, after);
    const foreignWakeups = waiters.reduce((s, w) => s + Math.max(0, w.voluntaryCtxSwitches - SERVE_SWITCHES * w.accepted), 0);
    return {
      observed: {
        ...seq,
        share: ctx.config.server.share,
        waiters,
        wakeups: after.total.wakeups - before.total.wakeups,
        futileWakeups: after.total.futileWakeups - before.total.futileWakeups,
        foreignWakeups,
      },
      predicted: expected(ctx.config, o),
    };
  },
  judge(_ctx, { observed: o, predicted: p }) {
    const accepted = o.waiters.reduce((s, w) => s + w.accepted, 0);
    const out = [
      equal('every connection answered', p.connections, o.ok, 'one request each, served to its end'),
      equal('connections accepted over the waiters', p.connections, accepted, 'each connection is accepted by exactly one waiter'),
    ];
    if (p.share === 'accept')
      out.push(
        equal(
          'blocking accept(): one wake-up per connection',
          p.connections,
          o.wakeups,
          'the waiters sleep in an exclusive wait: the kernel wakes one',
        ),
        equal('no futile wake-up', 0, o.futileWakeups, 'a woken accept() returns the connection it was woken for'),
      );
    if (p.share === 'reuseport')
      out.push(
        equal('no futile wake-up', 0, o.futileWakeups, 'each waiter has its own listener and queue'),
        atLeast(
          'every waiter got connections (spread by hash)',
          1,
          Math.min(...o.waiters.map((w) => w.accepted)),
          'the kernel picks a listener by the 4-tuple hash',
        ),
      );
    if (p.foreignAtLeast !== null)
      out.push(
        atLeast(
          `the herd: wake-ups for others' connections ≥ (N − 1) × connections / 3`,
          p.foreignAtLeast,
          o.foreignWakeups,
          'shared level-triggered epoll wakes every idle waiter for each connection; all but one sleep again',
        ),
      );
    if (p.foreignAtMost !== null)
      out.push(
        atMost(
          `no herd: wake-ups for others' connections ≤ connections / 10`,
          p.foreignAtMost,
          o.foreignWakeups,
          p.share === 'exclusive'
            ? 'EPOLLEXCLUSIVE wakes one waiter per connection'
            : p.share === 'accept'
              ? 'blocking accept() wakes one waiter per connection'
              : 'SO_REUSEPORT wakes only the waiter whose queue got the connection',
        ),
      );
    return out;
  },
  listenerCovers: { reuseportGroup: 'share reuseport is one of its designs: a listener per waiter, one woken per connection' },
  model: [],
  predict(c, o) {
    const p = expected(c, o);
    const n = p.waiters;
    const rows: Prediction[] = [
      { what: 'connections accepted over the waiters', value: o.connections, why: 'each by exactly one waiter' },
      {
        what: 'waiters woken per connection',
        value: p.share === 'epoll' ? n : 1,
        why:
          p.share === 'epoll'
            ? 'shared level-triggered epoll wakes every idle waiter (the thundering herd)'
            : p.share === 'exclusive'
              ? 'EPOLLEXCLUSIVE: the first idle waiter in registration order'
              : p.share === 'accept'
                ? 'blocking accept() is an exclusive wait'
                : 'SO_REUSEPORT: the waiter whose listener the hash picks',
      },
    ];
    if (p.foreignAtLeast !== null)
      rows.push({ what: "wake-ups for others' connections", value: `≥ ${p.foreignAtLeast}`, why: '(N − 1) per connection, a third as the floor' });
    if (p.foreignAtMost !== null)
      rows.push({
        what: "wake-ups for others' connections",
        value: `≤ ${p.foreignAtMost}`,
        why: 'no waiter wakes for a connection it does not take',
      });
    if (p.share === 'reuseport') rows.push({ what: 'futile wake-ups', value: 0, why: 'each waiter has its own queue' });
    return rows;
  },
  report: {
    metrics: [
      {
        label: "wake-ups for others' connections, per connection",
        value: (p) => p.scenario.observed.foreignWakeups / Math.max(1, p.scenario.predicted.connections),
        better: 'lower',
      },
      { label: 'futile wake-ups (accept found EAGAIN)', value: (p) => p.scenario.observed.futileWakeups, better: 'lower' },
      {
        label: 'largest share of one waiter, %',
        value: (p) => (100 * Math.max(...p.scenario.observed.waiters.map((w) => w.accepted))) / Math.max(1, p.scenario.predicted.connections),
      },
      {
        label: "waiters' context switches per connection",
        value: (p) => p.scenario.observed.waiters.reduce((s, w) => s + w.voluntaryCtxSwitches, 0) / Math.max(1, p.scenario.predicted.connections),
        better: 'lower',
      },
    ],
    x: ['server.share', 'server.threads'],
    headline: (p) => {
      const o = p.scenario.observed;
      const per = (o.foreignWakeups / Math.max(1, p.scenario.predicted.connections)).toFixed(2);
      return `share ${o.share}, ${o.waiters.length} waiters: ${per} wake-ups per connection for others' connections, ${o.futileWakeups} futile accepts; connections per waiter ${o.waiters.map((w) => w.accepted).join('/')}`;
    },
  },
});
