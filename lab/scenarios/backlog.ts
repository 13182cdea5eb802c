// backlog: the server stops calling accept(), then a burst of limit + 1 + extra clients
// arrives. The kernel completes handshakes while the queue holds fewer than limit + 1
// (the full check is `>`), so Send-Q = limit, Recv-Q peaks at limit + 1, and exactly
// limit + 1 clients connect; the rest stay in SYN-SENT (their SYNs are dropped).
import { summarize } from '../observe/sampler.js';
import { control } from '../up.js';
import { equal, numSysctl, observedNum, predictedLimit, predictedNum, recvQ, runHelper, type Scenario, scenarioOptions } from './common.js';

export const backlog: Scenario = {
  report: {
    metrics: [
      { label: 'accept queue limit (Send-Q)', value: (p) => p.hosts['server']?.series.summary.listener?.sendQ ?? null, predicted: (p) => predictedNum(p, 'limit') },
      { label: 'accept queue peak (Recv-Q)', value: (p) => p.hosts['server']?.series.summary.listener?.peakRecvQ ?? null, predicted: (p) => predictedNum(p, 'queuePeak') },
      { label: 'handshakes completed', value: (p) => observedNum(p, 'connected'), predicted: (p) => predictedNum(p, 'connected') },
      { label: 'clients left in SYN-SENT', value: (p) => observedNum(p, 'pending'), predicted: (p) => predictedNum(p, 'waiting') },
    ],
    series: { label: 'server accept queue (Recv-Q) over time', host: () => 'server', value: recvQ },
  },
  async drive(ctx) {
    const o = scenarioOptions(ctx, 'backlog');
    const somaxconn = numSysctl(ctx.serverSysctl, 'net.core.somaxconn');
    const limit = predictedLimit(ctx.config.server.backlog, somaxconn);
    const clients = limit + 1 + o.extraClients;
    await control(ctx.server, ctx.controlPort, '/pause', 'POST');
    const burst = await runHelper<{ connected: number; pending: number; reset: number; refused: number; other: number }>(ctx.client, 'burst', [ctx.server.address, ctx.port, clients, o.holdMs], o.holdMs + 30_000);
    await control(ctx.server, ctx.controlPort, '/resume', 'POST');
    return { observed: { clients, ...burst }, predicted: { limit, queuePeak: limit + 1, connected: limit + 1, waiting: clients - limit - 1, somaxconn, backlog: ctx.config.server.backlog } };
  },
  judge(ctx, r, obs) {
    const p = r.predicted as { limit: number; queuePeak: number; connected: number; waiting: number };
    const o = r.observed as { connected: number; pending: number };
    const sum = summarize(obs.series['server'] ?? [], ctx.port);
    const few = sum.samples < 5 ? `only ${sum.samples} samples on the server` : undefined;
    return [
      equal('accept queue limit (Send-Q) = min(backlog, somaxconn)', p.limit, sum.listener?.sendQ ?? null, 'listen() caps the backlog at somaxconn', few),
      equal('accept queue peak (Recv-Q) = limit + 1', p.queuePeak, sum.listener?.peakRecvQ ?? null, 'the queue is full only when it holds more than the limit', few),
      equal('handshakes completed = limit + 1', p.connected, o.connected, 'SYNs meeting a full queue are dropped, so no SYN-ACK'),
      equal('clients left waiting in SYN-SENT', p.waiting, o.pending, 'their SYNs are dropped and retried'),
    ];
  },
};
