// The summary's latency: the unit that fits the value, and the percentile ladder.
import { describe, expect, it } from 'vitest';
import { formatLatency, latencyLadder } from '../../lab/report/summary.js';

describe('latency in the summary', () => {
  it.each([
    [0.075, '75 µs'],
    [0.9994, '999 µs'],
    [1.423, '1.42 ms'],
    [23.14, '23.1 ms'],
    [1200, '1.20 s'],
  ])('%f ms → %s', (ms, text) => expect(formatLatency(ms)).toBe(text));

  it('a ladder: one row per percentile, bars growing on a log scale, the max full width', () => {
    const rows = latencyLadder({ p50: 0.075, p90: 0.144, p99: 0.451, max: 8.343 }, 30);
    expect(rows.map((r) => r.trim().split(/\s+/).slice(0, 3).join(' '))).toEqual(['p50 75 µs', 'p90 144 µs', 'p99 451 µs', 'max 8.34 ms']);
    const bars = rows.map((r) => (r.match(/█/g) ?? []).length);
    expect(bars[3]).toBe(30);
    expect(bars).toEqual([...bars].sort((a, b) => a - b));
    // log10(75) / log10(8343) of 30 cells: 14.
    expect(bars[0]).toBe(14);
  });
});
