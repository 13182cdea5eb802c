// Parses httperf's summary (httperf 0.9.0, Debian's package): an open-loop tool that opens new
// connections at a fixed rate whatever the server does (--rate, --num-conns), one request each
// by default. What it prints is per run, not per connection: the totals, the connection rate
// it held, connection times, reply statuses, and its errors by kind, each a kernel outcome a
// client sees (client-timo: no answer within --timeout, as for a SYN dropped by a full queue;
// connrefused: ECONNREFUSED; connreset: ECONNRESET; addrunavail: EADDRNOTAVAIL; fd-unavail:
// out of descriptors). It busy-polls, so it uses a core whatever the rate.
import { LoadgenError, type LoadOptions, type LoadResult } from './result.js';

export interface HttperfResult {
  connections: number;
  requests: number;
  replies: number;
  durationSec: number;
  /** The connection rate it held, /s, and the most connections it had open at once. */
  connRate: number;
  maxConcurrent: number;
  /** Connection life (ms): of the connections that completed; and the mean connect time. */
  connectionMs: { min: number; avg: number; max: number; median: number; stddev: number };
  connectMs: number;
  /** Reply rate, sampled every 5 s (samples 0 on a shorter run: the other fields are then 0). */
  replyRate: { min: number; avg: number; max: number; stddev: number; samples: number };
  /** Mean response and transfer time of the replies, ms. */
  replyMs: { response: number; transfer: number };
  /** Mean reply size, bytes (header, content and footer). */
  replyBytes: number;
  status: { '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number };
  errors: {
    total: number;
    clientTimo: number;
    socketTimo: number;
    connrefused: number;
    connreset: number;
    fdUnavail: number;
    addrunavail: number;
    ftabFull: number;
    other: number;
  };
  /** httperf's own CPU, s. */
  cpu: { user: number; system: number };
}

/** The numbers after `label`, on its line, as name → value for the names given. */
function fields(text: string, line: RegExp, names: string[]): Record<string, number> {
  const m = line.exec(text);
  if (!m) throw new LoadgenError(`httperf output has no line matching ${line.source}`, 'output');
  const out: Record<string, number> = {};
  for (const n of names) {
    const f = new RegExp(`(?:^|\\s)${n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[ =]([\\d.]+)`).exec(m[1]!);
    if (!f) throw new LoadgenError(`httperf's "${m[0].trim()}" has no ${n}`, 'output');
    out[n] = Number(f[1]);
  }
  return out;
}

export function parseHttperf(text: string): HttperfResult {
  if (/^httperf: (invalid|unrecognized) option/m.test(text)) throw new LoadgenError('httperf rejected its arguments', 'usage');
  const total = fields(text, /^Total: (.*)$/m, ['connections', 'requests', 'replies', 'test-duration']);
  const rate = /^Connection rate: ([\d.]+) conn\/s \([\d.]+ ms\/conn, <=(\d+) concurrent connections\)/m.exec(text);
  if (!rate) throw new LoadgenError('httperf output has no "Connection rate" line', 'output');
  const life = fields(text, /^Connection time \[ms\]: (min .*)$/m, ['min', 'avg', 'max', 'median', 'stddev']);
  const connect = fields(text, /^Connection time \[ms\]: (connect .*)$/m, ['connect']);
  const reply = /^Reply rate \[replies\/s\]: (.*) \((\d+) samples\)$/m.exec(text);
  if (!reply) throw new LoadgenError('httperf output has no "Reply rate" line', 'output');
  const replyRate = fields(reply[0], /^Reply rate \[replies\/s\]: (.*)$/m, ['min', 'avg', 'max', 'stddev']);
  const replyTime = fields(text, /^Reply time \[ms\]: (.*)$/m, ['response', 'transfer']);
  const replySize = /^Reply size \[B\]: .*\(total ([\d.]+)\)$/m.exec(text);
  if (!replySize) throw new LoadgenError('httperf output has no "Reply size" line', 'output');
  const status = fields(text, /^Reply status: (.*)$/m, ['1xx', '2xx', '3xx', '4xx', '5xx']);
  const e1 = fields(text, /^Errors: (total .*)$/m, ['total', 'client-timo', 'socket-timo', 'connrefused', 'connreset']);
  const e2 = fields(text, /^Errors: (fd-unavail .*)$/m, ['fd-unavail', 'addrunavail', 'ftab-full', 'other']);
  const cpu = fields(text, /^CPU time \[s\]: (.*)$/m, ['user', 'system']);
  return {
    connections: total['connections']!,
    requests: total['requests']!,
    replies: total['replies']!,
    durationSec: total['test-duration']!,
    connRate: Number(rate[1]),
    maxConcurrent: Number(rate[2]),
    connectionMs: { min: life['min']!, avg: life['avg']!, max: life['max']!, median: life['median']!, stddev: life['stddev']! },
    connectMs: connect['connect']!,
    replyRate: { min: replyRate['min']!, avg: replyRate['avg']!, max: replyRate['max']!, stddev: replyRate['stddev']!, samples: Number(reply[2]) },
    replyMs: { response: replyTime['response']!, transfer: replyTime['transfer']! },
    replyBytes: Number(replySize[1]),
    status: { '1xx': status['1xx']!, '2xx': status['2xx']!, '3xx': status['3xx']!, '4xx': status['4xx']!, '5xx': status['5xx']! },
    errors: {
      total: e1['total']!,
      clientTimo: e1['client-timo']!,
      socketTimo: e1['socket-timo']!,
      connrefused: e1['connrefused']!,
      connreset: e1['connreset']!,
      fdUnavail: e2['fd-unavail']!,
      addrunavail: e2['addrunavail']!,
      ftabFull: e2['ftab-full']!,
      other: e2['other']!,
    },
    cpu: { user: cpu['user']!, system: cpu['system']! },
  };
}

/** How long httperf waits on a connection (connect, then its reply), s: as long as the arrivals client watches. */
export const HTTPERF_TIMEOUT_SEC = 5;

/**
 * httperf as a load tool: new connections at a fixed rate (`--rate`, connections/s), one
 * request each (`--num-calls 1`: a new connection per request, keepAlive false), `--hog` so
 * it may use every local port, `--timeout` so a connection whose SYNs are dropped ends.
 */
export function httperfArgv(o: LoadOptions): string[] {
  if (o.keepAlive !== false)
    throw new LoadgenError('httperf opens a new connection per request here: set keepAlive false (--no-keep-alive)', 'usage');
  if (o.rate === undefined) throw new LoadgenError('httperf holds a rate of new connections: give one (--rate)', 'usage');
  if (o.pipelining !== undefined) throw new LoadgenError('httperf sends one request per connection: pipelining does not apply', 'usage');
  if (o.threads !== undefined && o.threads > 1)
    throw new LoadgenError('httperf runs one thread: loadgen threads do not apply (use more loadgens)', 'usage');
  const url = new URL(o.url);
  const count = o.requests ?? Math.max(1, Math.round(o.rate * (o.durationSec ?? 0)));
  // Overloaded, httperf can stall (its clock ran to 55 s in 8 s here, at 20,000/s on a CPU it
  // shared with the server). SIGINT makes it print its summary and stop: sent 10 s past its
  // schedule and timeout, the run ends with what it did, and its clock says it fell behind.
  const deadline = Math.ceil(count / o.rate) + HTTPERF_TIMEOUT_SEC + 10;
  return [
    'timeout',
    '-s',
    'INT',
    String(deadline),
    'httperf',
    '--server',
    url.hostname,
    '--port',
    url.port || '80',
    '--uri',
    url.pathname + url.search,
    '--rate',
    String(o.rate),
    '--num-conns',
    String(count),
    '--num-calls',
    '1',
    '--timeout',
    String(HTTPERF_TIMEOUT_SEC),
    '--hog',
  ];
}

/** httperf's summary as the lab's result: no percentiles (it prints means and a median of connection life). */
export function httperfResult(h: HttperfResult): LoadResult {
  const e = h.errors;
  return {
    tool: 'httperf',
    requests: h.replies,
    durationSec: h.durationSec,
    rps: h.durationSec > 0 ? Math.round((h.replies / h.durationSec) * 10) / 10 : 0,
    latencyMs: null,
    latencyResolutionUs: 100,
    latencyCorrected: false,
    errors: {
      connect: e.connrefused + e.addrunavail,
      read: 0,
      write: 0,
      timeout: e.clientTimo + e.socketTimo,
      reset: e.connreset,
      non2xx: h.replies - h.status['2xx'],
      other: e.fdUnavail + e.ftabFull + e.other,
    },
    bytes: Math.round(h.replyBytes * h.replies),
  };
}

/**
 * Whether httperf fell behind its schedule. It polls without sleeping, so it uses a core at any
 * rate and its CPU says nothing; its clock does. Its test ran from the first connection to the
 * last one's end: the schedule, (count − 1) / rate, plus the last connection's life (its
 * longest, or the timeout when one timed out). More than 5 % of the schedule beyond that (and
 * 50 ms): it could not start the connections on time.
 */
export function httperfBehind(h: HttperfResult, rate: number): string | null {
  const schedule = (h.connections - 1) / rate;
  const tail = h.errors.clientTimo + h.errors.socketTimo > 0 ? HTTPERF_TIMEOUT_SEC : h.connectionMs.max / 1000;
  const allowed = schedule * 1.05 + tail + 0.05;
  return h.durationSec > allowed
    ? `httperf fell behind its rate: ${h.connections} connections at ${rate}/s took ${h.durationSec} s (at most ${allowed.toFixed(2)} s on schedule)`
    : null;
}
