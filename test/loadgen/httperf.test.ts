// httperf's summary, parsed from output captured from the real tool (test/fixtures/httperf/,
// with how each was made): every number below is the one httperf printed.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseHttperf } from '../../lab/loadgen/httperf.js';

const fixture = (f: string) => readFileSync(fileURLToPath(new URL(`../fixtures/httperf/${f}`, import.meta.url)), 'utf8');

describe('httperf', () => {
  it('a run at 1,000 new connections/s against the reactor: totals, the rate held, times, statuses, no errors', () => {
    expect(parseHttperf(fixture('ok.txt'))).toEqual({
      connections: 3000,
      requests: 3000,
      replies: 3000,
      durationSec: 2.999,
      connRate: 1000.2,
      maxConcurrent: 5,
      connectionMs: { min: 0, avg: 0.1, max: 4.5, median: 0.5, stddev: 0.3 },
      connectMs: 0,
      replyRate: { min: 0, avg: 0, max: 0, stddev: 0, samples: 0 },
      replyMs: { response: 0.1, transfer: 0 },
      status: { '1xx': 0, '2xx': 3000, '3xx': 0, '4xx': 0, '5xx': 0 },
      errors: { total: 0, clientTimo: 0, socketTimo: 0, connrefused: 0, connreset: 0, fdUnavail: 0, addrunavail: 0, ftabFull: 0, other: 0 },
      cpu: { user: 1.25, system: 1.75 },
    });
  });

  it('a 6 s run: one reply-rate sample', () => {
    expect(parseHttperf(fixture('samples.txt')).replyRate).toEqual({ min: 500, avg: 500, max: 500, stddev: 0, samples: 1 });
  });

  it('errors by kind: every connect refused; a full queue that never accepts times the clients out', () => {
    const refused = parseHttperf(fixture('refused.txt'));
    expect([refused.connections, refused.requests, refused.errors.total, refused.errors.connrefused]).toEqual([50, 0, 50, 50]);
    const timeout = parseHttperf(fixture('timeout.txt'));
    // Limit 2: 3 connected and sent their request (never answered); the rest waited on dropped SYNs.
    expect([timeout.connections, timeout.requests, timeout.replies, timeout.maxConcurrent]).toEqual([40, 3, 0, 21]);
    expect(timeout.errors).toMatchObject({ total: 40, clientTimo: 39, connrefused: 1 });
  });

  it('output it does not know: one error naming the missing line', () => {
    expect(() => parseHttperf('httperf: warning: open file limit > FD_SETSIZE\n')).toThrow(/httperf output has no line matching \^Total/);
    expect(() => parseHttperf("httperf: unrecognized option '--bogus'\n")).toThrow('httperf rejected its arguments');
  });
});
