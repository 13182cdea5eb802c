// The ab (ApacheBench, Debian's apache2-utils) driver. ab speaks HTTP/1.0, one
// connection per request unless -k; one thread. Its percentiles are whole
// milliseconds of the total time (connect + wait + read), from when the request started.
import { LoadgenError, NO_ERRORS, type LoadOptions, type LoadResult } from './result.js';

/**
 * With only a time limit ab stops at 50,000 requests, and it allocates 32 bytes of
 * statistics per request up front, so the cap cannot just be lifted to "infinite".
 * 150,000 per second is above what ab does here (~90,000/s keep-alive on loopback);
 * the product is capped at 10 M requests (320 MB).
 */
export const abRequestCap = (durationSec: number) => Math.min(durationSec * 150_000, 10_000_000);

export function abArgv(o: LoadOptions): string[] {
  if ((o.durationSec === undefined) === (o.requests === undefined)) throw new LoadgenError('give either a duration or a request count', 'usage');
  if (o.pipelining !== undefined && o.pipelining > 1) throw new LoadgenError('ab cannot pipeline requests; use --loadgen autocannon or wrk', 'usage');
  if (o.rate !== undefined) throw new LoadgenError('ab cannot hold a request rate; use --loadgen autocannon or wrk2', 'usage');
  // -r: keep going on socket receive errors (count them); -q: no progress lines.
  const argv = ['ab', '-q', '-r', '-c', String(o.connections)];
  if (o.durationSec !== undefined) argv.push('-t', String(o.durationSec), '-n', String(abRequestCap(o.durationSec)));
  else argv.push('-n', String(o.requests));
  if (o.keepAlive !== false && o.keepAlive !== undefined) argv.push('-k');
  // ab wants a path; "http://host:port" alone is "invalid URL".
  argv.push(/^https?:\/\/[^/]+$/.test(o.url) ? `${o.url}/` : o.url);
  return argv;
}

const num = (re: RegExp, text: string) => {
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
};

export function parseAb(output: string): LoadResult {
  const refused = /apr_socket_connect\(\): (.*)|apr_socket_recv: (Connection refused.*)/.exec(output);
  if (refused && !/Complete requests:/.test(output)) throw new LoadgenError(`ab could not connect: ${(refused[1] ?? refused[2])!.trim()}`, 'connect');
  if (/^Usage: ab/m.test(output) || /invalid URL/.test(output))
    throw new LoadgenError(`ab rejected its arguments: ${output.trim().split('\n')[0]}`, 'usage');
  const complete = num(/^Complete requests:\s+(\d+)/m, output);
  const took = num(/^Time taken for tests:\s+([\d.]+) seconds/m, output);
  if (complete === undefined || took === undefined) {
    const last = output
      .trim()
      .split('\n')
      .filter((l) => l.trim() && !/^(This is|Copyright|Licensed|Benchmarking)/.test(l))
      .pop();
    throw new LoadgenError(`ab output has no "Complete requests" / "Time taken for tests" lines${last ? `; it said: ${last.trim()}` : ''}`, 'output');
  }
  const errors = { ...NO_ERRORS };
  const f = /\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)/.exec(output);
  if (f) Object.assign(errors, { connect: Number(f[1]), read: Number(f[2]), other: Number(f[3]) + Number(f[4]) });
  errors.non2xx = num(/^Non-2xx responses:\s+(\d+)/m, output) ?? 0;
  const pct = new Map<number, number>();
  for (const m of output.matchAll(/^\s+(\d+)%\s+(\d+)/gm)) pct.set(Number(m[1]), Number(m[2]));
  const latencyMs =
    pct.has(50) && pct.has(90) && pct.has(99) && pct.has(100)
      ? { p50: pct.get(50)!, p90: pct.get(90)!, p99: pct.get(99)!, max: pct.get(100)! }
      : null;
  return {
    tool: 'ab',
    requests: complete,
    durationSec: took,
    rps: num(/^Requests per second:\s+([\d.]+)/m, output) ?? (took > 0 ? complete / took : 0),
    latencyMs,
    latencyResolutionUs: 1000,
    latencyCorrected: false,
    errors,
    bytes: num(/^Total transferred:\s+(\d+) bytes/m, output) ?? 0,
  };
}
