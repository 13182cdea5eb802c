// throughput: the load generator's run, and what the server spent on it (requests and CPU
// seconds between two /stats answers). The verdict only says whether the numbers can be
// trusted: a CPU-bound load generator measures itself.
import { runLoad } from '../loadgen/drivers.js';
import { loadOptions } from '../loadgen/result.js';
import { serverStats, serverWork } from '../up.js';
import { atLeast, observedNum, type RuleVerdict, type Scenario } from './common.js';

const RATE_TOLERANCE = 0.05;

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
  judge(ctx, r) {
    const bound = r.load?.loadgenBound;
    const rps = (r.observed as { rps: number }).rps;
    const busy = bound ? `the load generator used ${r.load?.cpu?.cores.toFixed(2)} cores: the rate says more about it than the server` : undefined;
    const v: RuleVerdict[] = [
      {
        rule: 'measurement valid (load generator not the bottleneck)',
        predicted: null,
        observed: Math.round(rps),
        verdict: bound ? 'INCONCLUSIVE' : 'PASS',
        reason: busy ?? 'the load generator had CPU to spare',
      },
    ];
    // With a fixed offered rate (autocannon --overallRate, wrk2 -R): did the server keep up?
    const rate = ctx.config.loadgens[0]!.options.rate;
    if (rate !== undefined) {
      // One-sided: the load generator may overshoot its rate a little (autocannon does, by
      // 3–4 % over 3 s); what matters is a server falling behind.
      v.push(atLeast(`server kept up with the offered rate (req/s, ≥ ${100 - RATE_TOLERANCE * 100} % of it)`, Math.floor(rate * (1 - RATE_TOLERANCE)), Math.round(rps), 'a server with CPU to spare answers at the rate it is offered', busy));
    }
    return v;
  },
};
