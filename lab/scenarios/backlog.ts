// backlog: the server stops calling accept(), then a burst of limit + 1 + extra clients
// arrives. The kernel completes handshakes while the queue holds fewer than limit + 1
// (the full check is `>`), so Send-Q = limit, Recv-Q peaks at limit + 1, and exactly
// limit + 1 clients connect; the rest stay in SYN-SENT (their SYNs are dropped).
import { z } from 'zod';
import { int } from '../fields.js';
import type { BurstResult } from '../in-host/burst.js';
import { summarize } from '../observe/sampler.js';
import { control } from '../server-host.js';
import { defineScenario, equal, numSysctl, plannedLimit, predictedLimit, recvQ, runInHost, tooManyClients } from './common.js';

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
  backlog: number;
}

export type Observed = BurstResult & { clients: number };

export const backlog = defineScenario<z.infer<typeof Options>, Observed, Predicted>({
  name: 'backlog',
  options: Options,
  check: (c, o) => tooManyClients(c, plannedLimit(c) + 1 + o.extraClients, 'the burst (limit + 1 + extraClients)'),
  async drive(ctx) {
    const somaxconn = numSysctl(ctx.serverSysctl, 'net.core.somaxconn');
    const limit = predictedLimit(ctx.config.server.backlog, somaxconn);
    const clients = limit + 1 + ctx.options.extraClients;
    const hold = ctx.options.holdMs;
    await control(ctx.server, ctx.controlPort, '/pause', 'POST');
    const burst = await runInHost<BurstResult>(ctx.client, 'burst', [ctx.server.address, ctx.port, clients, hold], hold + 30_000);
    await control(ctx.server, ctx.controlPort, '/resume', 'POST');
    const predicted: Predicted = {
      limit,
      queuePeak: limit + 1,
      connected: limit + 1,
      waiting: clients - limit - 1,
      somaxconn,
      backlog: ctx.config.server.backlog,
    };
    return { observed: { clients, ...burst }, predicted };
  },
  judge(ctx, { observed: o, predicted: p }, obs) {
    const sum = summarize(obs.series['server'] ?? [], ctx.port);
    const few = sum.samples < 5 ? `only ${sum.samples} samples on the server` : undefined;
    return [
      equal(
        'accept queue limit (Send-Q) = min(backlog, somaxconn)',
        p.limit,
        sum.listener?.sendQ ?? null,
        'listen() caps the backlog at somaxconn',
        few,
      ),
      equal(
        'accept queue peak (Recv-Q) = limit + 1',
        p.queuePeak,
        sum.listener?.peakRecvQ ?? null,
        'the queue is full only when it holds more than the limit',
        few,
      ),
      equal('handshakes completed = limit + 1', p.connected, o.connected, 'SYNs meeting a full queue are dropped, so no SYN-ACK'),
      equal('clients left waiting in SYN-SENT', p.waiting, o.pending, 'their SYNs are dropped and retried'),
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
    series: { label: 'server accept queue (Recv-Q) over time', host: () => 'server', value: recvQ },
  },
});
