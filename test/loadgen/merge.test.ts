// Merging several load generators' results: against the raw samples themselves. Three
// instances record very different latency distributions into HDR histograms (as
// autocannon-us does); the merged percentiles must be those of all the samples pooled, within
// the histogram's 3 significant digits, and far from the average of the instances' percentiles.
import { describe, expect, it } from 'vitest';
import * as hdr from 'hdr-histogram-js';
import { mergeResults } from '../../lab/loadgen/merge.js';
import type { LoadResult } from '../../lab/loadgen/result.js';

/** A deterministic generator (mulberry32), so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The exact percentile of a sorted sample (nearest rank, as HdrHistogram defines it). */
const exact = (sorted: number[], p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;

function result(samplesUs: number[], requests: number): LoadResult {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  for (const v of samplesUs) h.recordValue(v);
  const s = [...samplesUs].sort((a, b) => a - b);
  return {
    tool: 'autocannon',
    requests,
    durationSec: 2,
    rps: requests / 2,
    latencyMs: { p50: exact(s, 50) / 1000, p90: exact(s, 90) / 1000, p99: exact(s, 99) / 1000, max: s[s.length - 1]! / 1000 },
    latencyResolutionUs: 1,
    latencyCorrected: true,
    errors: { connect: 1, read: 0, write: 0, timeout: 3, reset: 0, non2xx: 2, other: 0 },
    bytes: requests * 100,
    histogramUs: hdr.encodeIntoCompressedBase64(h),
  };
}

describe('mergeResults', () => {
  const r = rng(42);
  // A fast instance (≈100 µs), a slow one (≈5 ms) and one with a long tail, of unequal sizes.
  const a = Array.from({ length: 20_000 }, () => 80 + Math.floor(r() * 40));
  const b = Array.from({ length: 3_000 }, () => 4_000 + Math.floor(r() * 2_000));
  const c = Array.from({ length: 7_000 }, () => (r() < 0.05 ? 50_000 + Math.floor(r() * 200_000) : 200 + Math.floor(r() * 300)));
  const results = [result(a, a.length), result(b, b.length), result(c, c.length)];
  const pooled = [...a, ...b, ...c].sort((x, y) => x - y);

  it('percentiles are those of the pooled samples (within 3 significant digits), not an average of percentiles', () => {
    const m = mergeResults(results);
    expect(m.latencyWhy).toBeNull();
    for (const [p, key] of [
      [50, 'p50'],
      [90, 'p90'],
      [99, 'p99'],
    ] as const) {
      const want = exact(pooled, p) / 1000;
      expect(Math.abs(m.result.latencyMs![key] - want), `${key}: merged ${m.result.latencyMs![key]}, pooled ${want}`).toBeLessThanOrEqual(
        want / 1000 + 0.001,
      );
    }
    expect(m.result.latencyMs!.max).toBe(pooled[pooled.length - 1]! / 1000);
    // What averaging would have said is far off: the pooled p99 sits in c's tail.
    const avgP99 = results.reduce((s, x) => s + x.latencyMs!.p99, 0) / results.length;
    expect(Math.abs(avgP99 - m.result.latencyMs!.p99)).toBeGreaterThan(1);
    // The merged histogram, encoded, holds every sample.
    expect(hdr.decodeFromCompressedBase64(m.result.histogramUs!).totalCount).toBe(pooled.length);
  });

  it('counts add up: requests, rates, errors, bytes; the longest duration', () => {
    const m = mergeResults(results).result;
    expect(m.requests).toBe(30_000);
    expect(m.rps).toBe(15_000);
    expect(m.bytes).toBe(3_000_000);
    expect(m.durationSec).toBe(2);
    expect(m.errors).toEqual({ connect: 3, read: 0, write: 0, timeout: 9, reset: 0, non2xx: 6, other: 0 });
  });

  it('one result without a histogram: no merged latency, and why', () => {
    const noHist = { ...results[1]!, tool: 'wrk' as const, histogramUs: undefined };
    const m = mergeResults([{ ...results[0]!, tool: 'wrk' }, noHist]);
    expect(m.result.latencyMs).toBeNull();
    expect(m.latencyWhy).toBe('wrk gives no latency histogram, and percentiles of 2 load generators cannot be averaged');
    expect(m.result.requests).toBe(23_000);
  });

  it('a single result is itself', () => {
    expect(mergeResults([results[2]!])).toEqual({ result: results[2], latencyWhy: null });
  });
});
