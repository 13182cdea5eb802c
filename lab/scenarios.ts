// Scenarios: what a sweep point does between "server listening, samplers on" and
// "samplers off", and what the kernel's rules predict for it. Each verdict is PASS or
// FAIL against the prediction, or INCONCLUSIVE when the measurement cannot be trusted.
import type { LabFile } from './labfile.js';
import { runLoad, type LoadRun } from './loadgen/drivers.js';
import { loadOptions } from './loadgen/result.js';
import type { Sample } from './observe/sampler.js';
import { summarize } from './observe/sampler.js';
import type { Host } from './runtime/runtime.js';
import { control } from './up.js';

export type Verdict = 'PASS' | 'FAIL' | 'INCONCLUSIVE';

export interface RuleVerdict {
  rule: string;
  predicted: number | string | null;
  observed: number | string | null;
  verdict: Verdict;
  reason: string;
}

export interface ScenarioContext {
  config: LabFile;
  server: Host;
  client: Host;
  port: number;
  controlPort: number;
  /** The server host's sysctls as read back. */
  serverSysctl(name: string): string | null;
}

export interface ScenarioResult {
  observed: Record<string, unknown>;
  predicted: Record<string, unknown>;
  load?: Omit<LoadRun, 'stdout' | 'stderr'>;
  /** Filled once the series are in (judge()). */
  verdicts: RuleVerdict[];
}

export interface Scenario {
  /** Runs while the samplers sample; returns what it saw directly. */
  drive(ctx: ScenarioContext): Promise<Omit<ScenarioResult, 'verdicts'>>;
  /** The verdicts, from what drive() saw and the time series per host. */
  judge(ctx: ScenarioContext, r: Omit<ScenarioResult, 'verdicts'>, series: Record<string, Sample[]>): RuleVerdict[];
}

function rule(rule: string, predicted: number, observed: number | null, why: string, inconclusive?: string): RuleVerdict {
  if (inconclusive) return { rule, predicted, observed, verdict: 'INCONCLUSIVE', reason: inconclusive };
  if (observed === null) return { rule, predicted, observed, verdict: 'INCONCLUSIVE', reason: 'not observed' };
  const ok = observed === predicted;
  return { rule, predicted, observed, verdict: ok ? 'PASS' : 'FAIL', reason: ok ? why : `expected ${predicted}, observed ${observed}: ${why}` };
}

/**
 * The accept queue's limit as listen() sets it: a backlog above somaxconn (and any negative
 * one, taken as a huge unsigned number) is cut to somaxconn.
 */
export function predictedLimit(backlog: number, somaxconn: number): number {
  return backlog < 0 || backlog > somaxconn ? somaxconn : backlog;
}

/**
 * backlog: the server stops calling accept(), then a burst of limit + 1 + extra clients
 * arrives. The kernel completes handshakes while the queue holds fewer than limit + 1
 * (the full check is `>`), so Send-Q = limit, Recv-Q peaks at limit + 1, and exactly
 * limit + 1 clients connect; the rest stay in SYN-SENT (their SYNs are dropped).
 */
export const backlog: Scenario = {
  async drive(ctx) {
    const somaxconn = Number(ctx.serverSysctl('net.core.somaxconn'));
    const limit = predictedLimit(ctx.config.server.backlog, somaxconn);
    const clients = limit + 1 + ctx.config.scenario.options.extraClients;
    await control(ctx.server, ctx.controlPort, '/pause', 'POST');
    const r = await ctx.client.exec([...ctx.client.node('dist/lab/loadgen/burst.js'), ctx.server.address, String(ctx.port), String(clients), String(ctx.config.scenario.options.holdMs)], {
      timeoutMs: ctx.config.scenario.options.holdMs + 30_000,
    });
    if (r.exitCode !== 0) throw new Error(`burst failed on ${ctx.client.name}: ${r.stderr.trim()}`);
    const burst = JSON.parse(r.stdout) as { connected: number; pending: number; reset: number; refused: number; other: number };
    await control(ctx.server, ctx.controlPort, '/resume', 'POST');
    return { observed: { clients, ...burst }, predicted: { limit, queuePeak: limit + 1, connected: limit + 1, waiting: clients - limit - 1, somaxconn, backlog: ctx.config.server.backlog } };
  },
  judge(ctx, r, series) {
    const p = r.predicted as { limit: number; queuePeak: number; connected: number; waiting: number };
    const o = r.observed as { connected: number; pending: number };
    const sum = summarize(series['server'] ?? [], ctx.port);
    const few = sum.samples < 5 ? `only ${sum.samples} samples on the server` : undefined;
    return [
      rule('accept queue limit (Send-Q) = min(backlog, somaxconn)', p.limit, sum.listener?.sendQ ?? null, 'listen() caps the backlog at somaxconn', few),
      rule('accept queue peak (Recv-Q) = limit + 1', p.queuePeak, sum.listener?.peakRecvQ ?? null, 'the queue is full only when it holds more than the limit', few),
      rule('handshakes completed = limit + 1', p.connected, o.connected, 'SYNs meeting a full queue are dropped, so no SYN-ACK'),
      rule('clients left waiting in SYN-SENT', p.waiting, o.pending, 'their SYNs are dropped and retried'),
    ];
  },
};

/** throughput: the load generator's run; the verdict only says whether the numbers can be trusted. */
export const throughput: Scenario = {
  async drive(ctx) {
    const lg = ctx.config.loadgens[0]!;
    const run = await runLoad(ctx.client, lg.tool, loadOptions(lg.options, `http://${ctx.server.address}:${ctx.port}/`));
    const { stdout: _o, stderr: _e, ...load } = run;
    return { observed: { rps: run.result.rps, requests: run.result.requests, errors: run.result.errors }, predicted: {}, load };
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

export const SCENARIO_IMPLS: Record<LabFile['scenario']['name'], Scenario> = { backlog, throughput };
