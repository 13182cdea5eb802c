// httperf's summary, parsed from output captured from the real tool (test/fixtures/httperf/,
// with how each was made): every number below is the one httperf printed.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { httperfArgv, httperfBehind, httperfResult, parseHttperf } from '../../lab/loadgen/httperf.js';

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
      replyBytes: 94,
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

  it('as a lab load tool: the result (replies, errors by kind, bytes), and whether it held its schedule by its own clock', () => {
    const ok = parseHttperf(fixture('ok.txt'));
    expect(httperfResult(ok)).toMatchObject({ tool: 'httperf', requests: 3000, durationSec: 2.999, latencyMs: null, bytes: 3000 * 94 });
    expect(httperfResult(ok).rps).toBe(1000.3);
    // 3,000 at 1,000/s: scheduled over 2.999 s, and it took 2.999 s.
    expect(httperfBehind(ok, 1000)).toBeNull();
    const timeout = httperfResult(parseHttperf(fixture('timeout.txt')));
    expect(timeout.errors).toMatchObject({ connect: 1, timeout: 39, reset: 0, other: 0 });
    // Stopped by SIGINT after stalling: its clock says 55 s for a 2 s schedule.
    const stopped = parseHttperf(fixture('stopped.txt'));
    expect(stopped.errors).toMatchObject({ fdUnavail: 6927, clientTimo: 485 });
    expect(httperfBehind(stopped, 20_000)).toMatch(
      /^httperf fell behind its rate: 33073 connections at 20000\/s took 55.266 s \(at most 6\.7\d s on schedule\)$/,
    );
  });

  it('its argv: a new connection per request at a rate, bounded by its own timeout and a SIGINT past its schedule; what it cannot do is one line', () => {
    expect(httperfArgv({ url: 'http://198.18.0.1:8080/', connections: 1, durationSec: 2, rate: 300, keepAlive: false })).toEqual([
      'timeout',
      '-s',
      'INT',
      '17',
      'httperf',
      '--server',
      '198.18.0.1',
      '--port',
      '8080',
      '--uri',
      '/',
      '--rate',
      '300',
      '--num-conns',
      '600',
      '--num-calls',
      '1',
      '--timeout',
      '5',
      '--hog',
    ]);
    const base = { url: 'http://h:1/', connections: 1, durationSec: 1 };
    expect(() => httperfArgv({ ...base, rate: 10 })).toThrow(
      'httperf opens a new connection per request here: set keepAlive false (--no-keep-alive)',
    );
    expect(() => httperfArgv({ ...base, keepAlive: false })).toThrow('httperf holds a rate of new connections: give one (--rate)');
  });

  it('output it does not know: one error naming the missing line', () => {
    expect(() => parseHttperf('httperf: warning: open file limit > FD_SETSIZE\n')).toThrow(/httperf output has no line matching \^Total/);
    expect(() => parseHttperf("httperf: unrecognized option '--bogus'\n")).toThrow('httperf rejected its arguments');
  });
});
