// throughput: the load generator's run, and what the server spent on it (requests and CPU
// seconds between two /stats answers). The verdict only says whether the numbers can be
// trusted: a CPU-bound load generator measures itself.
import { runLoad } from '../loadgen/drivers.js';
import { loadOptions } from '../loadgen/result.js';
import { serverStats, serverWork } from '../up.js';
import { observedNum, type Scenario } from './common.js';

export const throughput: Scenario = {
  report: {
    metrics: [
      { label: 'requests/s', value: (p) => observedNum(p, 'rps'), better: 'higher' },
      { label: 'latency p99 (ms)', value: (p) => observedNum(p, 'latencyMs', 'p99'), better: 'lower' },
      { label: 'server CPU (cores)', value: (p) => observedNum(p, 'serverCores') },
      { label: 'requests per server CPU-second', value: (p) => observedNum(p, 'requestsPerCpuSec'), better: 'higher' },
    ],
    series: { label: 'server ESTAB over time', host: () => 'server', value: (s) => (s.full ? (s.states['ESTAB'] ?? 0) : null) },
  },
  async drive(ctx) {
    const lg = ctx.config.loadgens[0]!;
    const before = await serverStats(ctx.server, ctx.controlPort);
    const run = await runLoad(ctx.client, lg.tool, loadOptions(lg.options, `http://${ctx.server.address}:${ctx.port}/`));
    const after = await serverStats(ctx.server, ctx.controlPort);
    const work = serverWork(before, after);
    const { stdout: _o, stderr: _e, ...load } = run;
    const sec = run.result.durationSec;
    return {
      observed: {
        rps: run.result.rps,
        requests: run.result.requests,
        errors: run.result.errors,
        latencyMs: run.result.latencyMs,
        serverRequests: work.requests,
        serverCpuSec: work.cpuSec,
        serverCores: work.cpuSec !== null && sec > 0 ? Math.round((work.cpuSec / sec) * 1000) / 1000 : null,
        requestsPerCpuSec: work.cpuSec ? Math.round(work.requests / work.cpuSec) : null,
      },
      predicted: {},
      load,
    };
  },
  judge(_ctx, r) {
    const bound = r.load?.loadgenBound;
    const rps = (r.observed as { rps: number }).rps;
    return [
      {
        rule: 'measurement valid (load generator not the bottleneck)',
        predicted: null,
        observed: Math.round(rps),
        verdict: bound ? 'INCONCLUSIVE' : 'PASS',
        reason: bound ? `the load generator used ${r.load?.cpu?.cores.toFixed(2)} cores: the rate says more about it than the server` : 'the load generator had CPU to spare',
      },
    ];
  },
};
