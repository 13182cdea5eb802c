// The human summary of one point record (stdout of `lab up` without --json).
import { isBlocking, NGINX_SHARE } from '../../core/fields.js';
import { listenLine } from '../pipeline/listen.js';
import { WATCHED } from '../observe/nstat.js';
import { servedRequests, type PointRecord } from '../pipeline/record.js';
import type { LatencySummary } from '../loadgen/result.js';
import { DRIVERS } from '../loadgen/drivers.js';

const int = (n: number) => Math.round(n).toLocaleString('en-US');
// Tools with 1 ms resolution (ab, autocannon) print whole numbers: keep them whole.
/** A latency in ms with the unit that fits it: 75 µs, 1.42 ms, 23.1 ms, 1.20 s. */
export function formatLatency(ms: number): string {
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/**
 * The percentiles as a ladder, a bar each on a log scale from 1 µs, so a tail a hundred times
 * the median shows at a glance:
 *   p50    75 µs  ███████████▌
 */
export function latencyLadder(q: LatencySummary, width = 30): string[] {
  const rows: Array<[string, number]> = [
    ['p50', q.p50],
    ['p90', q.p90],
    ['p99', q.p99],
    ['max', q.max],
  ];
  const top = Math.log10(Math.max(q.max, 0.001) * 1000) || 1;
  const bar = (ms: number) => {
    const cells = Math.max(0, (Math.log10(Math.max(ms, 0.001) * 1000) / top) * width);
    return '█'.repeat(Math.floor(cells)) + (cells % 1 >= 0.5 ? '▌' : '');
  };
  const labels = rows.map(([, v]) => formatLatency(v));
  const w = Math.max(...labels.map((l) => l.length));
  return rows.map(([name, v], i) => `  ${name}  ${labels[i]!.padStart(w)}  ${bar(v)}`);
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map(
    (r) =>
      '  ' +
      r
        .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
        .join('   ')
        .trimEnd(),
  );
}

export function formatSummary(r: PointRecord, dir: string): string {
  const out: string[] = [];
  const hosts = Object.values(r.hosts);
  out.push(`tcplab run ${r.runId} (${r.runtime}, kernel ${r.environment.kernel}) → ${dir}/`);
  const l = r.scenario.load;
  if (l) out.push(...loadLines(l));
  out.push(...serverLines(r), '');
  out.push(...hostLines(r, hosts));
  out.push('');
  out.push(
    `points/${r.id}.json, raw/${r.id}/ (ss -tanoi, ss -ltn, netstat -s, netstat -tan, nstat -az per host, before and after), logs/${r.id}/, report.md: ${dir}/`,
  );
  return out.join('\n') + '\n';
}

function loadLines(l: NonNullable<PointRecord['scenario']['load']>): string[] {
  const out: string[] = [];
  const res = l.result;
  const mode = [
    // The open-loop client opens as many connections as its rate needs: no pool of them.
    ...(DRIVERS[l.tool].openLoop ? [] : [`${l.options.connections} connections`]),
    l.options.durationSec !== undefined ? `${l.options.durationSec} s` : `${l.options.requests} requests`,
    l.options.keepAlive === false ? 'new connection per request' : 'keep-alive',
    ...(l.options.pipelining && l.options.pipelining > 1 ? [`pipelining ${l.options.pipelining}`] : []),
    ...(l.options.rate ? [`rate ${l.options.rate}/s`] : []),
  ].join(', ');
  out.push('');
  out.push(`load      ${l.tool} from ${l.host}: ${mode}`);
  out.push(`          ${int(res.rps)} req/s, ${int(res.requests)} requests in ${res.durationSec.toFixed(2)} s, ${int(res.bytes)} bytes`);
  if (res.latencyMs) {
    const q = res.latencyMs;
    const resolution =
      res.latencyResolutionUs === undefined
        ? ''
        : res.latencyResolutionUs >= 1000
          ? ', whole milliseconds'
          : res.latencyResolutionUs >= 100
            ? ', 0.1 ms resolution'
            : ', µs resolution';
    out.push(
      `latency   p50 ${formatLatency(q.p50)}, p90 ${formatLatency(q.p90)}, p99 ${formatLatency(q.p99)}, max ${formatLatency(q.max)} (${l.tool}${resolution}, ${res.latencyCorrected ? 'corrected for coordinated omission' : 'from send, not corrected for coordinated omission'})`,
    );
    out.push(...latencyLadder(q).map((x) => `        ${x}`));
  } else if (!l.latencyWhy) out.push(`latency   none: ${l.tool} printed no percentiles`);
  const errs = Object.entries(res.errors).filter(([, v]) => v > 0);
  out.push(`errors    ${errs.length ? errs.map(([k, v]) => `${k} ${int(v)}`).join(', ') : 'none'}`);
  if (l.cpu) {
    out.push(
      `loadgen   CPU ${l.cpu.cores.toFixed(2)} cores (user ${l.cpu.userSec.toFixed(2)} s, sys ${l.cpu.systemSec.toFixed(2)} s)${l.loadgenBound ? `  LOADGEN-BOUND: ${l.boundWhy ?? 'the load generator was the bottleneck'}` : ''}`,
    );
  }
  if (l.latencyWhy) out.push(`latency   none merged: ${l.latencyWhy}`);
  // Several load generators: the lines above are their merge; each one's own, here.
  for (const i of l.instances ?? []) {
    const cpu = i.cpu ? `CPU ${i.cpu.cores.toFixed(2)} cores` : 'CPU not measured';
    const p99 = i.result.latencyMs ? `, p99 ${formatLatency(i.result.latencyMs.p99)}` : '';
    out.push(
      `  ${i.host.padEnd(10)} ${int(i.result.rps)} req/s, ${int(i.result.requests)} requests${p99}, ${cpu}${i.cpus ? ` (pinned to CPU ${i.cpus.join(',')})` : ''}${i.loadgenBound ? `  LOADGEN-BOUND${i.boundWhy ? `: ${i.boundWhy}` : ''}` : ''}`,
    );
  }
  if (l.pinning && !l.pinning.pinned) out.push(`  pinning   ${l.pinning.why}`);
  return out;
}

function serverLines(r: PointRecord): string[] {
  const out: string[] = [];
  const s = r.server;
  const t = s.stats?.total;
  if (s.kind !== 'tcplab') {
    const n = servedRequests(r);
    const procs = s.processes;
    const how =
      s.kind === 'nginx'
        ? `nginx, ${s.options.threads} worker process(es), ${NGINX_SHARE[s.options.share]}`
        : `command ${r.config.server.command?.[0] ?? ''}`;
    out.push(
      `server    ${how}, backlog ${s.options.backlog} at ${s.address}:${s.port}: ` +
        (procs ? `${procs.pids.length} process(es), ${procs.threads} thread(s), RSS ${(procs.rssKb / 1024).toFixed(1)} MiB` : 'no process seen') +
        (s.cpuSec !== null ? `, CPU ${s.cpuSec.toFixed(2)} s` : '') +
        (s.cpuSec !== null && n !== null
          ? ` (${int(n / Math.max(s.cpuSec, 0.001))} req per CPU-second, requests as the load generator counted them)`
          : ''),
    );
  } else
    out.push(
      `server    ${s.options.model}/${isBlocking(s.options.model) ? `share ${s.options.share ?? 'accept'}` : s.options.io === 'io_uring' ? 'io_uring' : s.options.trigger}, ${s.options.threads} thread(s),${s.options.workUs ? ` work ${s.options.workUs} µs ${s.options.work} per request,` : ''} backlog ${s.options.backlog} at ${s.address}:${s.port}: ` +
        (t ? `${int(s.requests ?? 0)} requests, ${int(t.accepted)} accepted, ${int(t.active)} open` : 'no stats') +
        (s.cpuSec !== null ? `, CPU ${s.cpuSec.toFixed(2)} s (${int((s.requests ?? 0) / Math.max(s.cpuSec, 0.001))} req per CPU-second)` : ''),
    );
  if (s.listen) out.push(`listen()  ${listenLine(s.listen, s.options.backlog)}`);
  const errorsSeen = t
    ? Object.entries({
        400: t.badRequests,
        408: t.headerTimeouts + t.bodyTimeouts,
        overCap: t.overCap,
        413: t.bodyTooLarge,
        431: t.headersTooLarge,
        501: t.notImplemented,
        505: t.versionNotSupported,
        idleTimeouts: t.idleTimeouts,
      }).filter(([, v]) => v > 0)
    : [];
  if (errorsSeen.length) out.push(`          ${errorsSeen.map(([k, v]) => `${k}: ${int(v)}`).join(', ')}`);
  const ls = s.listener;
  const sum = r.hosts[s.host]?.series.summary;
  out.push(
    ls
      ? `listener  :${ls.port} Send-Q ${ls.sendQ} (accept queue limit = min(backlog, somaxconn)), peak Recv-Q ${ls.peakRecvQ} (${sum?.samples} samples, every ${sum?.intervalMs} ms)`
      : 'listener  not seen by the sampler',
  );
  return out;
}

function hostLines(r: PointRecord, hosts: Array<PointRecord['hosts'][string]>): string[] {
  const out: string[] = [];
  const head = ['', ...hosts.map((h) => h.name)];
  const stateRows = ['TIME-WAIT', 'ESTAB', 'SYN-RECV', 'SYN-SENT'].map((st) => [
    `${st} peak / end`,
    ...hosts.map((h) => `${h.series.summary.peakStates[st] ?? 0} / ${h.states.after[st] ?? 0}`),
  ]);
  out.push('sockets');
  out.push(...table([head, ...stateRows]));

  // TCP counters in the table (the watched ones first); IP/ICMP/UDP ones only counted here, all in result.json.
  const all = [...new Set(hosts.flatMap((h) => Object.keys(h.counters.nonZero)))];
  const names = all.filter((n) => n.startsWith('Tcp'));
  const watched = new Set<string>(WATCHED);
  names.sort((a, b) => Number(watched.has(b)) - Number(watched.has(a)) || a.localeCompare(b));
  out.push('');
  out.push('TCP counters that changed (nstat deltas over the run)');
  out.push(
    ...(names.length
      ? table([head, ...names.map((n) => [n, ...hosts.map((h) => (h.counters.delta[n] ? int(h.counters.delta[n]) : '-'))])])
      : ['  none']),
  );
  if (all.length > names.length) out.push(`  (+${all.length - names.length} non-zero IP/ICMP/UDP counters: result.json, hosts.*.counters.nonZero)`);

  out.push('');
  out.push('sysctls that differ from the kernel default');
  const diffs = hosts.flatMap((h) => h.sysctls.differsFromKernelDefault.map((d) => [h.name, d.name, `${d.after}`, `(default ${d.before})`]));
  out.push(...(diffs.length ? table(diffs) : ['  none']));
  const applied = hosts.flatMap((h) => Object.keys(h.sysctls.requested).map((n) => `${h.name}: ${n}=${h.sysctls.readBack[n]}`));
  if (applied.length) out.push(`applied and read back: ${applied.join('; ')}`);
  const v = r.scenario.verdicts;
  if (v.length) {
    out.push('', `verdicts (${r.scenario.name})`);
    for (const x of v)
      out.push(
        `  ${x.verdict.padEnd(12)} ${x.about === 'server' ? '(server) ' : ''}${x.rule}: ${x.observed ?? '–'}${x.verdict === 'PASS' ? '' : ` (${x.reason})`}`,
      );
  }
  return out;
}
