// The arrivals driver: the lab's own open-loop client (lab/in-host/arrivals.ts) as a load tool.
// New connections at a fixed rate, one request each (a new connection per request: keepAlive
// false), on a schedule that never waits for the server; each latency is the time to the
// answer's first byte from the request's intended start, so a server (or a client) that falls
// behind shows as latency, not as fewer requests (no coordinated omission). It comes with
// npm install, as autocannon does. It holds up to 4,000 new connections a second on this
// 2-core machine, as httperf does (docs/servers.md); beyond, it falls behind its schedule.
import * as hdr from 'hdr-histogram-js';
import type { ArrivalsResult, ArrivalsSpec } from '../in-host/arrivals.js';
import { LoadgenError, type LoadOptions, type LoadResult } from './result.js';

/** How long the client waits for the last connections after the last arrival, ms (it ends sooner once every one has an outcome). */
export const ARRIVALS_WATCH_MS = 5000;

export function arrivalsArgv(o: LoadOptions, node: string[]): string[] {
  if (o.keepAlive !== false) throw new LoadgenError('arrivals opens a new connection per request: set keepAlive false (--no-keep-alive)', 'usage');
  if (o.rate === undefined) throw new LoadgenError('arrivals holds a rate of new connections: give one (--rate)', 'usage');
  if (o.pipelining !== undefined) throw new LoadgenError('arrivals sends one request per connection: pipelining does not apply', 'usage');
  if (o.threads !== undefined && o.threads > 1)
    throw new LoadgenError('arrivals runs one thread: loadgen threads do not apply (use more loadgens)', 'usage');
  const count = o.requests ?? Math.max(1, Math.round(o.rate * (o.durationSec ?? 0)));
  const url = new URL(o.url);
  const spec: ArrivalsSpec = {
    host: url.hostname,
    port: Number(url.port || 80),
    schedule: { kind: 'fixed', rate: o.rate, count },
    watchMs: ARRIVALS_WATCH_MS,
  };
  return [...node, JSON.stringify(spec)];
}

export function parseArrivals(stdout: string): LoadResult {
  let r: ArrivalsResult;
  try {
    r = JSON.parse(stdout.trim().split('\n').pop() ?? '') as ArrivalsResult;
  } catch {
    throw new LoadgenError(`arrivals printed no result: ${JSON.stringify(stdout.slice(0, 200))}`, 'output');
  }
  const answered = r.arrivals.filter((a) => a.outcome === 'answered' && a.firstByteMs !== undefined);
  if (!r.arrivals.length) throw new LoadgenError('arrivals made no connection', 'output');
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  for (const a of answered) h.recordValue(Math.max(1, Math.round(a.firstByteMs! * 1000)));
  // The run lasted the schedule, or until the last answer came if that was later.
  const scheduled = r.schedule.kind === 'bursts' ? 0 : r.schedule.count / r.schedule.rate;
  const lastAnswer = Math.max(0, ...answered.map((a) => a.at + a.firstByteMs!)) / 1000;
  const durationSec = Math.max(scheduled, lastAnswer);
  const ms = (us: number) => Math.round(us) / 1000;
  const n = r.byOutcome;
  return {
    tool: 'arrivals',
    requests: answered.length,
    durationSec: Math.round(durationSec * 1000) / 1000,
    rps: durationSec > 0 ? Math.round((answered.length / durationSec) * 10) / 10 : 0,
    latencyMs: h.totalCount
      ? { p50: ms(h.getValueAtPercentile(50)), p90: ms(h.getValueAtPercentile(90)), p99: ms(h.getValueAtPercentile(99)), max: ms(h.maxValue) }
      : null,
    latencyResolutionUs: 1,
    latencyCorrected: true,
    errors: {
      connect: n.refused + n.timedout + n.addrnotavail,
      read: 0,
      write: 0,
      timeout: n.waiting,
      reset: n.reset,
      non2xx: answered.filter((a) => a.status !== undefined && (a.status < 200 || a.status > 299)).length,
      other: n.other,
    },
    bytes: 0,
    ...(h.totalCount ? { histogramUs: hdr.encodeIntoCompressedBase64(h) } : {}),
  };
}
