// Parses the output of wrk and wrk2 (same family: wrk2 adds -R, calibration, HdrHistogram
// percentiles corrected for coordinated omission, and -U for the uncorrected ones).
import { LoadgenError, NO_ERRORS, type LatencySummary, type LoadOptions, type LoadResult } from './result.js';

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** "87.51us", "4.55s", "0.98ms" → milliseconds. wrk always prints a unit. */
export function parseWrkTime(s: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(s.trim());
  if (!m) throw new LoadgenError(`wrk printed a latency without a known unit: "${s}"`, 'output');
  return Number(m[1]) * TIME_UNITS[m[2]!]!;
}

export function parseWrkSize(s: string): number {
  const m = /^([\d.]+)(B|KB|MB|GB|TB)$/.exec(s.trim());
  if (!m) throw new LoadgenError(`wrk printed a size without a known unit: "${s}"`, 'output');
  return Math.round(Number(m[1]) * SIZE_UNITS[m[2]!]!);
}

/** Percentile lines of one "Latency Distribution" block: " 50.000%    0.98ms" or "     50%   82.00us". */
function percentiles(block: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of block.matchAll(/^\s*([\d.]+)%\s+(\S+)\s*$/gm)) out.set(Number(m[1]), parseWrkTime(m[2]!));
  return out;
}

function summary(p: Map<number, number>, max: number): LatencySummary | null {
  const get = (q: number) => p.get(q);
  if (get(50) === undefined || get(90) === undefined || get(99) === undefined) return null;
  return { p50: get(50)!, p90: get(90)!, p99: get(99)!, max: p.get(100) ?? max };
}

export function parseWrk(output: string, tool: 'wrk' | 'wrk2' = /Thread calibration|HdrHistogram/.test(output) ? 'wrk2' : 'wrk'): LoadResult {
  const down = /unable to connect to (\S+) (.*)/.exec(output);
  if (down) throw new LoadgenError(`${tool} could not connect to ${down[1]}: ${down[2]!.trim()}`, 'connect');
  if (/^Usage: wrk/m.test(output)) throw new LoadgenError(`${tool} rejected its arguments (it printed its usage)`, 'usage');
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m|h), (\S+) read/.exec(output);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(output);
  if (!total || !rps) throw new LoadgenError(`${tool} output has no "N requests in T" / "Requests/sec" lines`, 'output');

  const maxLine = /^\s*Latency\s+\S+\s+\S+\s+(\S+)/m.exec(output);
  const max = maxLine ? parseWrkTime(maxLine[1]!) : NaN;

  // wrk2 prints a "Latency Distribution (HdrHistogram - Recorded Latency)" block and,
  // with -U, an "Uncorrected Latency" one; plain wrk prints "Latency Distribution".
  const blocks = output
    .split(/^\s*Latency Distribution/m)
    .slice(1)
    .map((b) => {
      const head = b.split('\n')[0] ?? '';
      const body = b.split(/Detailed Percentile spectrum|\d+ requests in /)[0] ?? '';
      return { uncorrected: /Uncorrected/.test(head), p: percentiles(body.split('\n').slice(1).join('\n')) };
    });
  const corrected = blocks.find((b) => !b.uncorrected);
  const uncorrected = blocks.find((b) => b.uncorrected);

  const errors = { ...NO_ERRORS };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  if (sock) Object.assign(errors, { connect: Number(sock[1]), read: Number(sock[2]), write: Number(sock[3]), timeout: Number(sock[4]) });
  errors.non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);

  const result: LoadResult = {
    tool,
    requests: Number(total[1]),
    durationSec: parseWrkTime(`${total[2]}${total[3]}`) / 1000,
    rps: Number(rps[1]),
    latencyMs: corrected ? summary(corrected.p, max) : null,
    latencyResolutionUs: 1,
    latencyCorrected: tool === 'wrk2' && corrected !== undefined,
    errors,
    bytes: parseWrkSize(total[4]!),
  };
  const u = uncorrected ? summary(uncorrected.p, max) : null;
  if (u) result.latencyUncorrectedMs = u;
  return result;
}

/**
 * argv for wrk, or for wrk2 (which needs a rate, -R). Both run for a duration only.
 * Keep-alive off = a `Connection: close` header (wrk reconnects after each answer);
 * pipelining = the pipeline.lua script with the depth as its argument.
 */
export function wrkArgv(o: LoadOptions, tool: 'wrk' | 'wrk2', pipelineScript: string): string[] {
  if (o.durationSec === undefined || o.requests !== undefined)
    throw new LoadgenError(`${tool} runs for a duration, not a request count; give --duration`, 'usage');
  if (tool === 'wrk2' && o.rate === undefined) throw new LoadgenError('wrk2 needs a request rate: give --rate', 'usage');
  if (tool === 'wrk' && o.rate !== undefined) throw new LoadgenError('wrk cannot hold a request rate; use --loadgen wrk2 or autocannon', 'usage');
  const threads = Math.min(o.threads ?? 1, o.connections);
  const argv = [tool, '-t', String(threads), '-c', String(o.connections), '-d', `${o.durationSec}s`, '--latency'];
  if (tool === 'wrk2') argv.push('-R', String(o.rate), '-U');
  if (o.keepAlive === false) argv.push('-H', 'Connection: close');
  if (o.pipelining !== undefined && o.pipelining > 1) argv.push('-s', pipelineScript);
  argv.push(o.url);
  if (o.pipelining !== undefined && o.pipelining > 1) argv.push('--', String(o.pipelining));
  return argv;
}
