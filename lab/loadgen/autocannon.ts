// The autocannon driver (the default load generator: it comes with npm install).
// Runs autocannon through lab/in-host/autocannon-us.ts, which records every response's time
// at 1 µs resolution (autocannon's own histogram keeps whole milliseconds), and maps the result
// to LoadResult. Latencies are measured from when each request was sent (not corrected for
// coordinated omission); with several workers only autocannon's 1 ms figures exist.
import { join } from 'node:path';
import { REPO_ROOT } from '../../core/paths.js';
import { LoadgenError, NO_ERRORS, type LoadOptions, type LoadResult } from './result.js';

/**
 * argv that runs autocannon's CLI; `node` is how the host runs it (default: this Node and
 * this install). Every option becomes a flag, nothing goes through a shell.
 */
export function autocannonArgv(o: LoadOptions, node: string[] = [process.execPath, join(REPO_ROOT, 'dist/lab/in-host/autocannon-us.js')]): string[] {
  if (o.keepAlive === false) {
    throw new LoadgenError('autocannon cannot turn keep-alive off; use --loadgen ab or wrk for new connections per request', 'usage');
  }
  if ((o.durationSec === undefined) === (o.requests === undefined)) {
    throw new LoadgenError('give either a duration or a request count', 'usage');
  }
  // autocannon's own option names (its API), one JSON argument: nothing goes through a shell.
  const opts: Record<string, string | number> = { url: o.url, connections: o.connections };
  if (o.durationSec !== undefined) opts['duration'] = o.durationSec;
  if (o.requests !== undefined) opts['amount'] = o.requests;
  if (o.threads !== undefined && o.threads > 1) opts['workers'] = o.threads;
  if (o.rate !== undefined) opts['overallRate'] = o.rate;
  if (o.pipelining !== undefined) opts['pipelining'] = o.pipelining;
  return [...node, JSON.stringify(opts)];
}

interface AutocannonJson {
  requests: { total: number };
  latency: { p50: number; p90: number; p99: number; max: number; totalCount: number };
  /** autocannon-us.js's own histogram, µs (absent from autocannon's CLI, null with several workers). */
  latencyUs?: { p50: number; p90: number; p99: number; max: number; totalCount: number } | null;
  histogramUs?: string | null;
  throughput: { total: number };
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}

export function parseAutocannon(json: string): LoadResult {
  let r: AutocannonJson;
  try {
    r = JSON.parse(json) as AutocannonJson;
  } catch {
    throw new LoadgenError(`autocannon printed no JSON result: ${json.trim().split('\n')[0]?.slice(0, 120) ?? ''}`, 'output');
  }
  if (typeof r?.requests?.total !== 'number' || typeof r.duration !== 'number')
    throw new LoadgenError('autocannon JSON has no requests.total / duration', 'output');
  const answered = r.requests.total;
  const us = r.latencyUs?.totalCount ? r.latencyUs : null;
  if (answered === 0 && r.errors > 0) {
    throw new LoadgenError(`autocannon got no answer: ${r.errors} socket errors (is the server up?)`, 'connect');
  }
  return {
    tool: 'autocannon',
    requests: answered,
    durationSec: r.duration,
    rps: answered / r.duration,
    latencyMs: us
      ? { p50: us.p50 / 1000, p90: us.p90 / 1000, p99: us.p99 / 1000, max: us.max / 1000 }
      : r.latency.totalCount
        ? { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max }
        : null,
    latencyResolutionUs: us ? 1 : 1000,
    latencyCorrected: false,
    errors: { ...NO_ERRORS, timeout: r.timeouts, non2xx: r.non2xx, other: r.errors },
    bytes: r.throughput.total,
    ...(us && typeof r.histogramUs === 'string' ? { histogramUs: r.histogramUs } : {}),
  };
}
