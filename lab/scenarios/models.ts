// models: C keep-alive clients connect at once, each sends one request, and all stay open
// for holdMs. What each server design does with them follows from the design:
//   iterative — serves one; the others wait in the accept queue: min(C − 1, limit + 1) of
//               them (limit = min(backlog, somaxconn)), the rest in SYN-SENT;
//   prethread, prefork — N waiters (threads or processes) serve N; min(C − N, limit + 1)
//               wait in the accept queue;
//   thread    — serves all C, one thread per open connection;
//   fork      — serves all C, one child process per open connection;
//   the reactors (single, reuseport, acceptor, workers, reactors+workers, reactor-procs) —
//               serve all C with the threads (or processes) they started with: none is added
//               per connection.
// While the clients hold, the lab polls the server's /stats (connections open, connection
// threads or processes, the process's threads and child processes from /proc) and keeps the peaks, and reads the listener's
// Recv-Q with ss halfway through, at least 1.3 s in (the burst's transient has settled, and
// the SYNs a full queue dropped have been sent again after their 1 s timeout).
import { z } from 'zod';
import { int, isBlocking, type PointConfig } from '../../core/fields.js';
import type { HoldResult } from '../in-host/hold.js';
import { acceptQueueLimit } from '../model/kernel.js';
import { parseListeners } from '../observe/ss.js';
import { serverStats } from '../pipeline/server-host.js';
import { defineScenario, effectiveLimit, equal, recvQ, runInHost, setting, tooManyClients, type Prediction } from './common.js';

const Options = z
  .object({
    /** Keep-alive clients, all at once. */
    clients: int(1, 5000).default(20),
    /** A request not answered this long after its connect counts as waiting, ms. */
    answerMs: int(50, 10_000).default(500),
    /** How long every client stays connected, ms. */
    holdMs: int(1500, 60_000).default(2000),
  })
  .strict();

export interface Observed extends HoldResult {
  model: string;
  /** Peaks over /stats polled during the hold. */
  peakActive: number;
  peakConnThreads: number;
  /** The listener's Recv-Q halfway through the hold (ss -ltn on the server): who waits once the burst has settled. */
  queued: number | null;
  /** The process's threads at the peak, less before the clients came. */
  addedThreads: number;
  /** Its child processes at the peak, less before the clients came. */
  addedProcesses: number;
  /** The server's memory at the peak: its PSS and its child processes' (a page they share counted once, split between them). */
  rssKb: number | null;
  /**
   * When the peaks (open connections, connection threads, threads, processes) last rose, ms
   * after the clients started, and how long they then held before the hold ended: a design
   * that forks a process per connection may still be forking when a short hold ends.
   */
  settledAtMs?: number;
  stillForMs?: number;
}

/** How long the counts must hold still before the hold ends for the peaks to be judged: 3 looks at /stats and more. */
export const SETTLE_MS = 600;
/** How long past holdMs the hold goes on while the counts have not held still for SETTLE_MS. */
export const SETTLE_WAIT_MS = 5000;

export interface Predicted {
  model: string;
  clients: number;
  limit: number;
  /** Served at once: answered within answerMs. */
  served: number;
  /** In the accept queue (null: not judged, a reactor drains it as it comes). */
  queued: number | null;
  /** Threads the design adds for the connections. */
  addedThreads: number;
  /** Processes the design adds for the connections. */
  addedProcesses: number;
}

function expected(c: PointConfig, clients: number, limit: number): Predicted {
  const m = c.server.model;
  const n = m === 'prethread' || m === 'prefork' ? c.server.threads : m === 'iterative' ? 1 : clients;
  const served = Math.min(clients, n);
  const queued = m === 'iterative' || m === 'prethread' || m === 'prefork' ? Math.min(clients - served, limit + 1) : null;
  return { model: m, clients, limit, served, queued, addedThreads: m === 'thread' ? clients : 0, addedProcesses: m === 'fork' ? clients : 0 };
}

export const models = defineScenario<z.infer<typeof Options>, Observed, Predicted>({
  name: 'models',
  needsReactor: () => "it reads the reactor's open connections and connection threads from /stats",
  options: Options,
  check: (c, o) =>
    tooManyClients(c, o.clients, 'the clients') ??
    (o.answerMs >= o.holdMs ? `scenario.options.answerMs (${o.answerMs}) must be below holdMs (${o.holdMs})` : null),
  async drive(ctx) {
    const o = ctx.options;
    const limit = effectiveLimit(ctx);
    const before = await serverStats(ctx.server, ctx.controlPort);
    let done = false;
    // The hold goes on past holdMs (by SETTLE_WAIT_MS at most) until the counts held still for
    // SETTLE_MS; the lab then releases it (release.js finds it by its token).
    const token = `hold-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    const held = runInHost<HoldResult>(
      ctx.client,
      'hold',
      [ctx.server.address, ctx.port, o.clients, o.answerMs, o.holdMs, o.holdMs + SETTLE_WAIT_MS, token],
      o.holdMs + SETTLE_WAIT_MS + 60_000,
    ).finally(() => (done = true));
    held.catch(() => {}); // awaited below, after the polling: a failed hold is not an unhandled rejection meanwhile
    let released = false;
    let peakActive = 0;
    let peakConnThreads = 0;
    let peakThreads = before.process?.threads ?? 0;
    let peakProcesses = before.children?.processes ?? 0;
    let rssKb: number | null = null;
    const t0 = Date.now();
    let lastKey = '';
    let settledAtMs = 0;
    // Halfway through, and at least 1.3 s in: a SYN dropped by the full queue is sent again
    // after 1 s, so a queue a waiter took from after it filled is full again by then.
    const midMs = Math.max(1300, o.answerMs + (o.holdMs - o.answerMs) / 2);
    const queuedAt = new Promise<number | null>((resolve) =>
      setTimeout(() => {
        ctx.server
          .exec(['ss', '-ltn'], { timeoutMs: 10_000 })
          .then((r) => resolve(parseListeners(r.stdout).find((l) => l.port === ctx.port)?.recvQ ?? null))
          .catch(() => resolve(null));
      }, midMs),
    );
    while (!done) {
      const s = await serverStats(ctx.server, ctx.controlPort);
      peakActive = Math.max(peakActive, s.total.active);
      peakConnThreads = Math.max(peakConnThreads, s.total.connThreadsLive);
      peakThreads = Math.max(peakThreads, s.process?.threads ?? 0);
      peakProcesses = Math.max(peakProcesses, s.children?.processes ?? 0);
      const own = s.process ? (s.process.pssKb ?? s.process.rssKb) : 0;
      rssKb = Math.max(rssKb ?? 0, own + (s.children ? (s.children.pssKb ?? s.children.rssKb) : 0));
      // The peaks only: the counts fall again as the clients close at the hold's end.
      const key = [peakActive, peakConnThreads, peakThreads, peakProcesses].join();
      if (key !== lastKey) [lastKey, settledAtMs] = [key, Date.now() - t0];
      if (!released && Date.now() - t0 >= o.holdMs && Date.now() - t0 - settledAtMs >= SETTLE_MS) {
        released = true;
        await runInHost(ctx.client, 'release', [token], 15_000).catch(() => {}); // else the hold ends at its bound
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const stillForMs = Math.max(0, Date.now() - t0 - settledAtMs);
    const queued = await queuedAt;
    const hold = await held;
    return {
      observed: {
        ...hold,
        model: ctx.config.server.model,
        peakActive,
        peakConnThreads,
        queued,
        addedThreads: peakThreads - (before.process?.threads ?? peakThreads),
        addedProcesses: peakProcesses - (before.children?.processes ?? 0),
        rssKb,
        settledAtMs,
        stillForMs,
      },
      predicted: expected(ctx.config, o.clients, limit),
    };
  },
  judge(ctx, { observed: o, predicted: p }) {
    const design =
      p.model === 'iterative'
        ? 'an iterative server serves one connection to its end before it accepts the next'
        : p.model === 'prethread' || p.model === 'prefork'
          ? `each of the ${ctx.config.server.threads} waiters serves one connection to its end`
          : p.model === 'thread'
            ? 'a thread per connection'
            : p.model === 'fork'
              ? 'a process per connection'
              : 'a reactor multiplexes every connection on the threads (or processes) it has';
    // The peaks are judged once the counts held still for SETTLE_MS before the hold ended.
    const unsettled =
      o.stillForMs !== undefined && o.stillForMs < SETTLE_MS
        ? `the server had not settled: its counts last changed ${o.settledAtMs} ms in, ${o.stillForMs} ms before the hold ended at its bound, holdMs + ${SETTLE_WAIT_MS} ms (${SETTLE_MS} ms still needed)`
        : undefined;
    const out = [
      equal('clients served at once (answered while all hold)', p.served, o.answered, design),
      equal('connections open on the server (peak)', p.served, o.peakActive, design, unsettled),
      equal(
        'threads added for the connections',
        p.addedThreads,
        o.addedThreads,
        p.model === 'thread' ? 'one thread per open connection' : 'the design starts its threads up front',
        unsettled,
      ),
      equal(
        'processes added for the connections',
        p.addedProcesses,
        o.addedProcesses,
        p.model === 'fork' ? 'one child process per open connection' : 'the design starts its processes (if any) up front',
        unsettled,
      ),
    ];
    if (p.queued !== null)
      out.push(
        equal(
          'left waiting in the accept queue (Recv-Q halfway through the hold) = min(C − served, limit + 1)',
          p.queued,
          o.queued,
          'accepted only when a serving thread is free; the queue holds limit + 1, the rest stay in SYN-SENT',
        ),
      );
    if (p.model === 'thread') out.push(equal('connection threads (peak)', p.clients, o.peakConnThreads, 'one per open connection', unsettled));
    if (p.model === 'fork') out.push(equal('connection processes (peak)', p.clients, o.peakConnThreads, 'one per open connection', unsettled));
    return out;
  },
  listenerCovers: {
    // The queue is judged only for the designs that leave connections in it (iterative, prethread, prefork).
    reuseportGroup: (c) =>
      expected(c, 1, 1).queued === null ? 'no rule reads the accept queue of a design that drains it as connections come' : null,
  },
  model: [
    {
      name: 'net.core.somaxconn',
      side: 'server',
      rule: 'the clients the blocking designs leave queued: min(C − served, min(backlog, somaxconn) + 1)',
    },
  ],
  predict(c, o) {
    const limit = acceptQueueLimit(c.server.backlog, setting(c, 'server', 'net.core.somaxconn'));
    const p = expected(c, o.clients, limit);
    const rows: Prediction[] = [
      {
        what: 'clients served at once',
        value: p.served,
        why: isBlocking(c.server.model) ? 'a blocking design serves one connection per thread or process' : 'a reactor serves them all',
      },
      {
        what: 'threads added for the connections',
        value: p.addedThreads,
        why: p.model === 'thread' ? 'one per open connection' : 'none per connection',
      },
      {
        what: 'processes added for the connections',
        value: p.addedProcesses,
        why: p.model === 'fork' ? 'one per open connection' : 'none per connection',
      },
    ];
    if (p.queued !== null)
      rows.push({ what: 'left waiting in the accept queue', value: p.queued, why: `min(C − served, limit + 1), limit = ${limit}` });
    return rows;
  },
  report: {
    metrics: [
      {
        label: 'clients served at once',
        value: (p) => p.scenario.observed.answered,
        predicted: (p) => p.scenario.predicted.served,
        better: 'higher',
      },
      {
        label: 'left waiting in the accept queue (Recv-Q halfway through the hold)',
        value: (p) => p.scenario.observed.queued,
        predicted: (p) => p.scenario.predicted.queued,
        better: 'lower',
      },
      {
        label: 'threads added for the connections',
        value: (p) => p.scenario.observed.addedThreads,
        predicted: (p) => p.scenario.predicted.addedThreads,
        better: 'lower',
      },
      {
        label: 'processes added for the connections',
        value: (p) => p.scenario.observed.addedProcesses,
        predicted: (p) => p.scenario.predicted.addedProcesses,
        better: 'lower',
      },
      {
        label: 'server memory, MiB (peak PSS, its child processes added)',
        value: (p) => (p.scenario.observed.rssKb === null ? null : p.scenario.observed.rssKb / 1024),
        better: 'lower',
      },
    ],
    x: ['server.model', 'scenario.options.clients'],
    headline: (p) => {
      const o = p.scenario.observed;
      const q = p.scenario.predicted;
      const queue = o.queued;
      return `${o.model}, ${o.clients} keep-alive clients: ${o.answered} served at once, ${queue ?? '–'} waiting in the accept queue${q.queued !== null ? ` (min(C − ${q.served}, ${q.limit} + 1) = ${q.queued})` : ''}, ${o.addedThreads} thread(s) and ${o.addedProcesses} process(es) added`;
    },
    series: { label: 'server accept queue (Recv-Q) over time', host: () => 'server', value: recvQ },
  },
});
