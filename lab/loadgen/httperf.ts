// Parses httperf's summary (httperf 0.9.0, Debian's package): an open-loop tool that opens new
// connections at a fixed rate whatever the server does (--rate, --num-conns), one request each
// by default. What it prints is per run, not per connection: the totals, the connection rate
// it held, connection times, reply statuses, and its errors by kind, each a kernel outcome a
// client sees (client-timo: no answer within --timeout, as for a SYN dropped by a full queue;
// connrefused: ECONNREFUSED; connreset: ECONNRESET; addrunavail: EADDRNOTAVAIL; fd-unavail:
// out of descriptors). It busy-polls, so it uses a core whatever the rate.
import { LoadgenError } from './result.js';

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
