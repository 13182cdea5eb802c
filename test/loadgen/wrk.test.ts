// wrk / wrk2 output parsing, on output captured from the real tools: wrk here
// (test/fixtures/wrk), wrk2 as captured where it could be built (test/fixtures/wrk2: it is not in Debian).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseWrk, parseWrkSize, parseWrkTime, wrkArgv } from '../../lab/loadgen/wrk.js';

const WRK2 = fileURLToPath(new URL('../fixtures/wrk2/', import.meta.url));
const wrk2 = (f: string) => readFileSync(WRK2 + f, 'utf8');
const wrk = (f: string) => readFileSync(fileURLToPath(new URL(`../fixtures/wrk/${f}`, import.meta.url)), 'utf8');

describe('units', () => {
  it.each([
    ['87.51us', 0.08751],
    ['0.98ms', 0.98],
    ['4.55s', 4550],
    ['1.5m', 90_000],
  ])('%s = %f ms', (s, v) => expect(parseWrkTime(s)).toBeCloseTo(v, 6));
  it('a latency without a unit is an error, never a guess', () => expect(() => parseWrkTime('4.55')).toThrow('without a known unit'));
  it.each([
    ['3.88MB', 4068475],
    ['529.63KB', 542341],
    ['12B', 12],
  ])('%s', (s, v) => expect(parseWrkSize(s)).toBe(v));
});

describe('wrk2', () => {
  it('latency-ok: corrected percentiles', () => {
    expect(parseWrk(wrk2('latency-ok.txt'))).toEqual({
      tool: 'wrk2',
      requests: 59816,
      durationSec: 12,
      rps: 4984.54,
      latencyMs: { p50: 0.98, p90: 1.57, p99: 1.95, max: 2.27 },
      latencyResolutionUs: 1,
      latencyCorrected: true,
      errors: { connect: 0, read: 0, write: 0, timeout: 0, reset: 0, non2xx: 0, other: 0 },
      bytes: parseWrkSize('3.88MB'),
    });
  });

  it('summary-ok (no --latency): no percentiles, still wrk2', () => {
    const r = parseWrk(wrk2('summary-ok.txt'));
    expect(r).toMatchObject({ tool: 'wrk2', requests: 95715, rps: 7975.67, latencyMs: null, latencyCorrected: false });
  });

  it('latency-uncorrected (-U): both spectra, kept apart', () => {
    const r = parseWrk(wrk2('latency-uncorrected.txt'));
    expect(r.latencyMs).toEqual({ p50: 0.93, p90: 1.5, p99: 1.86, max: 2.59 });
    expect(r.latencyCorrected).toBe(true);
    expect(r.latencyUncorrectedMs?.p50).toBeCloseTo(0.101, 6);
    expect(r.latencyUncorrectedMs?.max).toBeCloseTo(0.287, 6);
  });

  it('non2xx: every answer was a 404', () => {
    expect(parseWrk(wrk2('non2xx.txt')).errors.non2xx).toBe(35896);
  });

  it('saturated: latencies in seconds', () => {
    const r = parseWrk(wrk2('saturated.txt'));
    expect(r.latencyMs).toEqual({ p50: 4510, p90: 5190, p99: 5430, max: 5510 });
    expect(r.requests).toBe(1383542);
  });

  it('server-died-midrun: the socket errors line', () => {
    const r = parseWrk(wrk2('server-died-midrun.txt'));
    expect(r.errors).toEqual({ connect: 0, read: 0, write: 0, timeout: 16, reset: 0, non2xx: 0, other: 0 });
    expect(r.durationSec).toBe(16.08);
  });

  it('server-down and usage: one-line errors', () => {
    expect(() => parseWrk(wrk2('server-down.txt'))).toThrow('wrk could not connect to 198.18.0.1:8080: Connection refused');
    expect(() => parseWrk(wrk2('usage.txt'))).toThrow('rejected its arguments');
  });
});

describe('wrk', () => {
  it('latency-ok: uncorrected percentiles (wrk measures from when it sent)', () => {
    const r = parseWrk(wrk('latency-ok.txt'));
    expect(r.tool).toBe('wrk');
    expect(r.latencyCorrected).toBe(false);
    expect(r.requests).toBe(134067);
    expect(r.latencyMs!.p50).toBeCloseTo(0.082, 6);
    expect(r.latencyMs!.p99).toBeCloseTo(0.194, 6);
    expect(r.latencyMs!.max).toBeCloseTo(3.88, 6);
  });

  it('server-down', () => {
    expect(() => parseWrk(wrk('server-down.txt'))).toThrow('wrk could not connect to 127.0.0.1:8081: Connection refused');
  });
});

describe('wrk/wrk2 argv', () => {
  const url = 'http://198.18.0.1:8080/';
  it('wrk: threads capped at connections, latency on', () => {
    expect(wrkArgv({ url, connections: 2, durationSec: 5, threads: 4 }, 'wrk', '/p.lua')).toEqual([
      'wrk',
      '-t',
      '2',
      '-c',
      '2',
      '-d',
      '5s',
      '--latency',
      url,
    ]);
  });
  it('wrk: keep-alive off and pipelining', () => {
    expect(wrkArgv({ url, connections: 8, durationSec: 1, keepAlive: false, pipelining: 16 }, 'wrk', '/p.lua')).toEqual([
      'wrk',
      '-t',
      '1',
      '-c',
      '8',
      '-d',
      '1s',
      '--latency',
      '-H',
      'Connection: close',
      '-s',
      '/p.lua',
      url,
      '--',
      '16',
    ]);
  });
  it('wrk2: a rate, and the uncorrected spectrum too', () => {
    expect(wrkArgv({ url, connections: 4, durationSec: 3, rate: 1000 }, 'wrk2', '/p.lua')).toEqual([
      'wrk2',
      '-t',
      '1',
      '-c',
      '4',
      '-d',
      '3s',
      '--latency',
      '-R',
      '1000',
      '-U',
      url,
    ]);
  });
  it.each([
    [{ url, connections: 1, requests: 10 }, 'wrk', 'wrk runs for a duration, not a request count'],
    [{ url, connections: 1, durationSec: 1 }, 'wrk2', 'wrk2 needs a request rate'],
    [{ url, connections: 1, durationSec: 1, rate: 5 }, 'wrk', 'wrk cannot hold a request rate'],
  ] as const)('refuses %j for %s', (o, tool, msg) => expect(() => wrkArgv(o, tool, '/p.lua')).toThrow(msg));
});
