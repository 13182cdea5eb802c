// autocannon: argv, parsing of captured --json output, and a live run against the reactor.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { autocannonArgv, parseAutocannon } from '../../lab/loadgen/autocannon.js';
import { Server } from '../../native/index.js';
import { OK_BYTES } from '../helpers/http.js';

const fixture = (f: string) => readFileSync(fileURLToPath(new URL(`../fixtures/autocannon/${f}`, import.meta.url)), 'utf8');

describe('autocannon', () => {
  it('builds argv from the option set', () => {
    const argv = autocannonArgv({ url: 'http://198.18.0.1:8080/', connections: 50, durationSec: 10, threads: 2, rate: 1000, pipelining: 4 });
    expect(argv[1]).toMatch(/dist\/lab\/in-host\/autocannon-us\.js$/);
    expect(JSON.parse(argv[2]!)).toEqual({
      url: 'http://198.18.0.1:8080/',
      connections: 50,
      duration: 10,
      workers: 2,
      overallRate: 1000,
      pipelining: 4,
    });
    expect(JSON.parse(autocannonArgv({ url: 'http://h/', connections: 1, requests: 100 })[2]!)).toEqual({
      url: 'http://h/',
      connections: 1,
      amount: 100,
    });
    expect(() => autocannonArgv({ url: 'http://h/', connections: 1, durationSec: 1, keepAlive: false })).toThrow(
      'autocannon cannot turn keep-alive off',
    );
    expect(() => autocannonArgv({ url: 'http://h/', connections: 1 })).toThrow('either a duration or a request count');
  });

  it('parses captured output', () => {
    const r = parseAutocannon(fixture('ok.json'));
    expect(r).toMatchObject({ tool: 'autocannon', requests: 18254, durationSec: 1.03, latencyCorrected: false, bytes: 1715876 });
    expect(r.rps).toBeCloseTo(18254 / 1.03, 6);
    // autocannon's own CLI output: whole milliseconds.
    expect(r.latencyMs).toEqual({ p50: 0, p90: 0, p99: 1, max: 24 });
    expect(r.latencyResolutionUs).toBe(1000);
    // Through autocannon-us.js: the same run's responses in µs (p50 75 µs where autocannon says 0 ms).
    const us = parseAutocannon(fixture('us.json'));
    expect(us.latencyMs).toEqual({ p50: 0.075, p90: 0.144, p99: 0.451, max: 8.343 });
    expect(us.latencyResolutionUs).toBe(1);
    expect(us.requests).toBe(39603);
    expect(() => parseAutocannon(fixture('server-down.json'))).toThrow(/autocannon got no answer: \d+ socket errors/);
    expect(() => parseAutocannon('Error: bad url')).toThrow('autocannon printed no JSON result: Error: bad url');
  });

  it('live: its count matches what the server answered', async () => {
    const s = new Server({ host: '127.0.0.1' });
    const { port } = await s.listen();
    try {
      const argv = autocannonArgv({ url: `http://127.0.0.1:${port}/`, connections: 8, requests: 3000 });
      const out = await execa(argv[0]!, argv.slice(1));
      const r = parseAutocannon(String(out.stdout));
      expect(r.requests).toBe(3000);
      expect(s.stats().total.requests).toBe(3000);
      expect(r.errors.other + r.errors.non2xx + r.errors.timeout).toBe(0);
      // The reactor's keep-alive answer, Date line included, 3,000 times.
      expect(r.bytes).toBe(3000 * OK_BYTES);
      // Every response in the µs histogram; a loopback answer takes well under a millisecond at p50.
      expect(r.latencyResolutionUs).toBe(1);
      expect(r.latencyMs!.p50).toBeGreaterThan(0);
      expect(r.latencyMs!.p50).toBeLessThan(1);
    } finally {
      await s.close();
    }
  });
});
