// ab (ApacheBench) argv and output parsing, on output captured from the real ab 2.3.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { abArgv, abRequestCap, parseAb } from '../../lab/loadgen/ab.js';
import { NO_ERRORS } from '../../lab/loadgen/result.js';

const ab = (f: string) => readFileSync(fileURLToPath(new URL(`../fixtures/ab/${f}`, import.meta.url)), 'utf8');

describe('ab output', () => {
  it('close: one connection per request, percentiles in whole ms', () => {
    expect(parseAb(ab('close.txt'))).toEqual({
      tool: 'ab',
      requests: 2000,
      durationSec: 0.192,
      rps: 10441.52,
      latencyMs: { p50: 1, p90: 1, p99: 1, max: 2 },
      latencyResolutionUs: 1000,
      latencyCorrected: false,
      errors: NO_ERRORS,
      bytes: 178000,
    });
  });

  it('keep-alive with a time limit', () => {
    expect(parseAb(ab('keepalive-timelimit.txt'))).toMatchObject({ requests: 180126, durationSec: 2, rps: 90057.24, bytes: 16931844 });
  });

  it('non-2xx answers are counted as such', () => {
    expect(parseAb(ab('non2xx.txt')).errors).toEqual({ ...NO_ERRORS, non2xx: 200 });
  });

  it('failed requests are broken down (Length and Exceptions go to other)', () => {
    const r = parseAb(ab('failed.txt'));
    expect(r.requests).toBe(300);
    expect(r.errors).toEqual({ ...NO_ERRORS, connect: 0, read: 0, other: 214 });
  });

  it('nothing listening: a connect error, not a result of zeros', () => {
    expect(() => parseAb(ab('refused.txt'))).toThrow('ab could not connect: Connection refused (111)');
  });

  it('output without the result lines says what ab said', () => {
    expect(() => parseAb('This is ApacheBench, Version 2.3\nCould not allocate memory (64000000000 bytes)\n')).toThrow(
      'ab output has no "Complete requests" / "Time taken for tests" lines; it said: Could not allocate memory (64000000000 bytes)',
    );
  });
});

describe('ab argv', () => {
  const url = 'http://198.18.0.1:8080';
  it('a duration lifts ab 50,000-request default within a memory bound', () => {
    expect(abArgv({ url, connections: 8, durationSec: 10 })).toEqual(['ab', '-q', '-r', '-c', '8', '-t', '10', '-n', '1500000', `${url}/`]);
    expect(abRequestCap(3600)).toBe(10_000_000);
  });
  it('a request count and keep-alive', () => {
    expect(abArgv({ url: `${url}/x`, connections: 2, requests: 100, keepAlive: true })).toEqual([
      'ab',
      '-q',
      '-r',
      '-c',
      '2',
      '-n',
      '100',
      '-k',
      `${url}/x`,
    ]);
  });
  it.each([
    [{ url, connections: 1 }, 'give either a duration or a request count'],
    [{ url, connections: 1, durationSec: 1, pipelining: 4 }, 'ab cannot pipeline requests'],
    [{ url, connections: 1, durationSec: 1, rate: 100 }, 'ab cannot hold a request rate'],
  ])('refuses %j', (o, msg) => expect(() => abArgv(o)).toThrow(msg));
});
