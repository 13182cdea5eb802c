// The autocannon driver (the default load generator: it comes with npm install).
// Runs autocannon's own CLI with --json and maps its result to LoadResult.
// Its latencies are measured from when each request was sent (not corrected for
// coordinated omission) at 1 ms resolution.
import { createRequire } from 'node:module';
import { LoadgenError, NO_ERRORS, type LoadOptions, type LoadResult } from './result.js';

const require = createRequire(import.meta.url);

/**
 * argv that runs autocannon's CLI; `node` is how the host runs it (default: this Node and
 * this install). Every option becomes a flag, nothing goes through a shell.
 */
export function autocannonArgv(o: LoadOptions, node: string[] = [process.execPath, require.resolve('autocannon/autocannon.js')]): string[] {
  if (o.keepAlive === false) {
    throw new LoadgenError('autocannon cannot turn keep-alive off; use --loadgen ab or wrk for new connections per request', 'usage');
  }
  if ((o.durationSec === undefined) === (o.requests === undefined)) {
    throw new LoadgenError('give either a duration or a request count', 'usage');
  }
  const argv = [...node, '--json', '--no-progress', '-c', String(o.connections)];
  if (o.durationSec !== undefined) argv.push('-d', String(o.durationSec));
  if (o.requests !== undefined) argv.push('-a', String(o.requests));
  if (o.threads !== undefined && o.threads > 1) argv.push('-w', String(o.threads));
  if (o.rate !== undefined) argv.push('-R', String(o.rate));
  if (o.pipelining !== undefined) argv.push('-p', String(o.pipelining));
  argv.push(o.url);
  return argv;
}

interface AutocannonJson {
  requests: { total: number };
  latency: { p50: number; p90: number; p99: number; max: number; totalCount: number };
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
  if (answered === 0 && r.errors > 0) {
    throw new LoadgenError(`autocannon got no answer: ${r.errors} socket errors (is the server up?)`, 'connect');
  }
  return {
    tool: 'autocannon',
    requests: answered,
    durationSec: r.duration,
    rps: answered / r.duration,
    latencyMs: r.latency.totalCount ? { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max } : null,
    latencyCorrected: false,
    errors: { ...NO_ERRORS, timeout: r.timeouts, non2xx: r.non2xx, other: r.errors },
    bytes: r.throughput.total,
  };
}
