// throughput: the load generator's run; what the server spent on it is the point record's
// (server.requests and server.cpuSec, between the /stats answers the pipeline takes around
// the scenario, so no control-API connection falls inside the counted window). The verdict
// only says whether the numbers can be trusted: a CPU-bound load generator measures itself.
// `lab up` is a one-point throughput lab.
import { z } from 'zod';
import { readFileSync } from 'node:fs';
import { allowedCpus, DRIVERS, planPinning, runLoad, toolThreads } from '../loadgen/drivers.js';
import { listenerProcesses } from '../pipeline/server-host.js';
import { loadOptions, type LatencySummary, type LoadErrors } from '../loadgen/result.js';
import { mergeResults } from '../loadgen/merge.js';
import { cpuTimes, idleCores } from '../observe/machine.js';
import { serverFootprint, servedRequests, type LoadRecord, type PointRecord } from '../pipeline/record.js';
import { defaultOf, F, type PointConfig } from '../../core/fields.js';
import { acceptQueueLimit } from '../model/kernel.js';
import { formatLatency } from '../report/summary.js';
import { atLeast, defineScenario, equal, setting, type RuleVerdict } from './common.js';

const RATE_TOLERANCE = 0.05;
/**
 * Below this much idle CPU on the server's machine over the load (in cores), the server had no
 * CPU to spare: a rate it fell short of says what else ran there, not what it can do.
 */
const IDLE_FLOOR_CORES = 0.25;

/** The server's CPU over the load, in cores (its CPU seconds over the load's duration). */
export const serverCores = (p: PointRecord): number | null => {
  const sec = p.scenario.load?.result.durationSec ?? 0;
  return p.server.cpuSec !== null && sec > 0 ? Math.round((p.server.cpuSec / sec) * 1000) / 1000 : null;
};

/** Requests the server answered per CPU-second it used. */
export const requestsPerCpuSec = (p: PointRecord): number | null => {
  const n = servedRequests(p);
  return p.server.cpuSec && n !== null ? Math.round(n / p.server.cpuSec) : null;
};

/** The server's processes at their largest during the load (read from /proc once a second). */
export interface Peak {
  threads: number;
  processes: number;
  /** Their proportional set size: what they take together, a shared page counted once. */
  pssKb: number;
}

export interface Observed {
  /** null: no look at the server's processes succeeded. */
  peak: Peak | null;
  rps: number;
  requests: number;
  errors: LoadErrors;
  latencyMs: LatencySummary | null;
  durationSec: number;
  /** The server's machine's idle CPU over the load, in cores (its /proc/stat before and after); null: not read. */
  idleCores?: number | null;
}

export interface Predicted {
  /** The offered rate, when the load generators hold one (each its own: count × rate). */
  rate: number | null;
}

const CLIENT_PORT_TUNABLES = [
  'net.ipv4.tcp_tw_reuse',
  'net.ipv4.tcp_tw_reuse_delay',
  'net.ipv4.tcp_timestamps',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_max_tw_buckets',
  'net.ipv4.ip_local_port_range',
];

function keepAliveBelowLimit(c: PointConfig): string | null {
  const lg = c.loadgens[0]!.options;
  if (lg.keepAlive === false) return 'a new connection per request';
  const limit = acceptQueueLimit(c.server.backlog, setting(c, 'server', 'net.core.somaxconn'));
  const connections = lg.connections ?? defaultOf(F.connections);
  return limit < connections ? `accept queue limit ${limit} below ${connections} connections` : null;
}

/**
 * Errors first: every request of a throughput point is meant to be answered. With connection
 * errors, a verdict first says how many of which, and no rate verdict passes (a PASS becomes
 * INCONCLUSIVE, naming them); a FAIL stays one.
 */
export function errorsFirst(errors: LoadErrors, verdicts: RuleVerdict[]): RuleVerdict[] {
  const which = Object.entries(errors).filter(([, n]) => n > 0);
  const total = which.reduce((a, [, n]) => a + n, 0);
  if (!total) return verdicts;
  const named = which.map(([k, n]) => `${k} ${n}`).join(', ');
  const why = `the point had ${total} connection error(s) it did not expect (${named}): no rate verdict passes`;
  // About the server (or what stands between): a FAIL here is no fault of the kernel's.
  return [
    { ...equal('errors first: every request answered, no connection error', 0, total, `the errors: ${named}`), about: 'server' as const },
    ...verdicts.map((x) => (x.verdict === 'PASS' ? { ...x, verdict: 'INCONCLUSIVE' as const, reason: why } : x)),
  ];
}

export const throughput = defineScenario<Record<string, never>, Observed, Predicted>({
  name: 'throughput',
  options: z.object({}).strict(),
  usesLoadTool: true,
  async drive(ctx) {
    const lg = ctx.config.loadgens[0]!;
    const options = loadOptions(lg.options, `http://${ctx.server.address}:${ctx.port}/`);
    const what = options.durationSec !== undefined ? `${options.durationSec} s` : `${options.requests} requests`;
    ctx.progress(
      `${lg.tool} from ${ctx.clients.map((h) => h.name).join(', ')}, ${DRIVERS[lg.tool].openLoop ? `${options.rate}/s` : `${options.connections} connections`}${ctx.clients.length > 1 ? ' each' : ''}, ${what}${options.keepAlive === false ? ', new connection per request' : ''} …`,
    );
    // The server's threads, processes and PSS while the load runs: from /proc in its host (no
    // connection to it, so nothing falls into the counted traffic), once a second.
    let loading = true;
    const seen: { peak: Peak | null } = { peak: null };
    const watch = (async () => {
      await new Promise((r) => setTimeout(r, 300));
      while (loading) {
        const p = await listenerProcesses(ctx.server, ctx.port);
        if (p)
          seen.peak = {
            threads: Math.max(seen.peak?.threads ?? 0, p.threads),
            processes: Math.max(seen.peak?.processes ?? 0, p.processes),
            pssKb: Math.max(seen.peak?.pssKb ?? 0, p.pssKb),
          };
        for (let i = 0; i < 10 && loading; i++) await new Promise((r) => setTimeout(r, 100));
      }
    })();
    // Every load generator at once; with several, one merged result (lab/loadgen/merge.ts).
    // Several on this machine: each pinned to CPUs of its own where there are enough.
    const pinning =
      ctx.clients.length > 1 ? planPinning(ctx.clients, toolThreads(lg.tool, options), allowedCpus(readFileSync('/proc/self/status', 'utf8'))) : null;
    if (pinning) ctx.progress(`pinning: ${pinning.why}`);
    const cpuBefore = await cpuTimes(ctx.server);
    const runs = await Promise.all(ctx.clients.map((h, i) => runLoad(h, lg.tool, options, pinning?.plan?.[i]))).finally(() => (loading = false));
    const idle = idleCores(cpuBefore, await cpuTimes(ctx.server));
    await watch;
    ctx.clients.forEach((h, i) =>
      ctx.writeRaw(`${h.name}-${lg.tool}.out.txt`, runs[i]!.stdout + (runs[i]!.stderr ? `\n--- stderr ---\n${runs[i]!.stderr}` : '')),
    );
    const merged = mergeResults(runs.map((r) => r.result));
    const { rps, requests, errors, latencyMs, durationSec } = merged.result;
    const observed: Observed = { peak: seen.peak, rps, requests, errors, latencyMs, durationSec, idleCores: idle };
    const first = runs[0]!;
    const load: LoadRecord =
      runs.length === 1
        ? {
            host: ctx.client.name,
            tool: lg.tool,
            options,
            argv: first.argv,
            cpu: first.cpu,
            loadgenBound: first.loadgenBound,
            ...(first.boundWhy ? { boundWhy: first.boundWhy } : {}),
            result: first.result,
          }
        : {
            host: ctx.clients.map((h) => h.name).join(','),
            tool: lg.tool,
            options,
            argv: first.argv,
            cpu: null,
            loadgenBound: runs.some((r) => r.loadgenBound),
            result: merged.result,
            instances: runs.map((r, i) => ({
              host: ctx.clients[i]!.name,
              argv: r.argv,
              cpu: r.cpu,
              loadgenBound: r.loadgenBound,
              ...(r.boundWhy ? { boundWhy: r.boundWhy } : {}),
              result: r.result,
              ...(pinning?.plan ? { cpus: pinning.plan[i]! } : {}),
            })),
            ...(merged.latencyWhy ? { latencyWhy: merged.latencyWhy } : {}),
            pinning: { pinned: pinning?.plan != null, why: pinning!.why },
          };
    // Each load generator holds the rate: together they offer count × rate.
    return { observed, predicted: { rate: lg.options.rate !== undefined ? lg.options.rate * ctx.clients.length : null }, load };
  },
  judge(_ctx, r) {
    const bound = r.load?.loadgenBound;
    const rps = r.observed.rps;
    const busyOnes = (r.load?.instances ?? [])
      .filter((i) => i.loadgenBound)
      .map((i) => (i.boundWhy ? `${i.host}: ${i.boundWhy}` : `${i.host} used ${i.cpu?.cores.toFixed(2)} cores`));
    const busy = !bound
      ? undefined
      : busyOnes.length
        ? `${busyOnes.join(', ')}: the rate says more about the load generators than the server`
        : r.load?.boundWhy
          ? `${r.load.boundWhy}: the rate says more about it than the server`
          : `the load generator used ${r.load?.cpu?.cores.toFixed(2)} cores: the rate says more about it than the server`;
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
    const rate = r.predicted.rate;
    if (rate !== null) {
      // One-sided: the load generator may overshoot its rate a little (autocannon does, by
      // 3–4 % over 3 s); what matters is a server falling behind.
      const rule = `server kept up with the offered rate (req/s, ≥ ${100 - RATE_TOLERANCE * 100} % of it)`;
      const min = Math.floor(rate * (1 - RATE_TOLERANCE));
      const idle = r.observed.idleCores;
      // Its premise, checked only when it fell short: the server had CPU to spare.
      const starved =
        Math.round(rps) < min && idle != null && idle < IDLE_FLOOR_CORES
          ? `the server's machine had ${idle} cores idle over the load (under ${IDLE_FLOOR_CORES}): the server had no CPU to spare`
          : undefined;
      v.push(atLeast(rule, min, Math.round(rps), 'a server with CPU to spare answers at the rate it is offered', busy ?? starved));
    }
    return errorsFirst(r.observed.errors, v);
  },
  listenerCovers: {
    deferAccept: 'no rule here reads the accept queue: the clients send their request at once',
    reuseportGroup: 'no rule here reads the accept queue',
  },
  model: [
    {
      name: 'net.core.somaxconn',
      side: 'server',
      effect: 'none',
      rule: 'keep-alive connections arrive once: an accept queue limit at or above the connection count never fills',
      unless: (c) => keepAliveBelowLimit(c),
    },
    ...CLIENT_PORT_TUNABLES.map((name) => ({
      name,
      side: 'client' as const,
      effect: 'none' as const,
      rule: 'keep-alive connections are opened once: no port runs out and no TIME_WAIT builds up',
      unless: (c: PointConfig) => (c.loadgens[0]!.options.keepAlive === false ? 'a new connection per request' : null),
    })),
  ],
  predict(c) {
    const r = c.loadgens[0]!.options.rate;
    const rate = r === undefined ? undefined : r * c.loadgens[0]!.count;
    return rate === undefined
      ? [{ what: 'requests/s', value: 'as many as the server and the load generator can do', why: 'no rule predicts a rate without a fixed one' }]
      : [
          {
            what: 'requests/s',
            value: `≥ ${Math.floor(rate * (1 - RATE_TOLERANCE))}`,
            why: 'a server with CPU to spare answers at the rate it is offered',
          },
        ];
  },
  report: {
    metrics: [
      { label: 'requests/s', value: (p) => p.scenario.observed.rps, better: 'higher' },
      { label: 'latency p99 (ms)', value: (p) => p.scenario.observed.latencyMs?.p99 ?? null, better: 'lower' },
      { label: 'server CPU (cores)', value: (p) => serverCores(p) },
      { label: 'requests per server CPU-second', value: (p) => requestsPerCpuSec(p), better: 'higher' },
      { label: 'latency p50 (ms)', value: (p) => p.scenario.observed.latencyMs?.p50 ?? null, better: 'lower' },
      { label: "server's machine idle CPU over the load (cores)", value: (p) => p.scenario.observed.idleCores ?? null },
      { label: 'server threads, peak (over its processes)', value: (p) => p.scenario.observed.peak?.threads ?? null, better: 'lower' },
      { label: 'server processes, peak', value: (p) => p.scenario.observed.peak?.processes ?? null, better: 'lower' },
      {
        label: 'server memory, MiB, peak (PSS over its processes)',
        value: (p) => (p.scenario.observed.peak ? Math.round(p.scenario.observed.peak.pssKb / 102.4) / 10 : null),
        better: 'lower',
      },
      {
        label: 'server context switches per request',
        value: (p) => {
          const f = serverFootprint(p);
          const n = servedRequests(p);
          return f && n ? Math.round((f.ctxSwitches / n) * 100) / 100 : null;
        },
        better: 'lower',
      },
    ],
    x: ['loadgens.0.options.rate', 'server.io', 'server.model', 'loadgens.0.options.connections', 'server.threads'],
    headline: (p) => {
      const o = p.scenario.observed;
      const bound = p.scenario.load?.loadgenBound ? ', LOADGEN-BOUND' : '';
      const n = p.scenario.load?.instances?.length;
      const per = requestsPerCpuSec(p);
      return `${Math.round(o.rps).toLocaleString('en-US')} req/s${n ? ` from ${n} loadgens` : ''}${o.latencyMs ? `, p99 ${formatLatency(o.latencyMs.p99)}` : ''}${per ? `, ${per.toLocaleString('en-US')} req per server CPU-second` : ''}${bound}`;
    },
    series: { label: 'server ESTAB over time', host: () => 'server', value: (s) => (s.full ? (s.states['ESTAB'] ?? 0) : null) },
  },
});
