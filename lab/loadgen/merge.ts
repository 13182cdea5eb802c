// Several load generators' results as one: requests, bytes and errors add up, the rate is
// the sum of the instances' rates (they run together), and latency is merged from their
// histograms (HdrHistogram add), never by averaging percentiles. A tool without histograms
// (ab, wrk, wrk2) gives no merged latency: null, and the reason says why.
import * as hdr from 'hdr-histogram-js';
import type { LoadErrors, LoadResult } from './result.js';

export interface Merged {
  result: LoadResult;
  /** Why latency is null, when it is. */
  latencyWhy: string | null;
}

/** The histograms of every result, merged; null unless each has one. */
export function mergeHistograms(encoded: Array<string | undefined>): hdr.Histogram | null {
  if (!encoded.length || encoded.some((e) => e === undefined)) return null;
  const into = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  for (const e of encoded) into.add(hdr.decodeFromCompressedBase64(e!));
  return into;
}

export function mergeResults(results: LoadResult[]): Merged {
  if (results.length === 1) return { result: results[0]!, latencyWhy: null };
  const first = results[0]!;
  const sum = (f: (r: LoadResult) => number) => results.reduce((a, r) => a + f(r), 0);
  const errors: LoadErrors = { ...first.errors };
  for (const k of Object.keys(errors) as Array<keyof LoadErrors>) errors[k] = sum((r) => r.errors[k]);
  const h = mergeHistograms(results.map((r) => r.histogramUs));
  const latencyMs = h
    ? {
        p50: h.getValueAtPercentile(50) / 1000,
        p90: h.getValueAtPercentile(90) / 1000,
        p99: h.getValueAtPercentile(99) / 1000,
        // The largest of the instances' own maxima is the merged maximum, exactly (a
        // histogram's maxValue is only within its precision).
        max: Math.max(...results.map((r) => r.latencyMs?.max ?? h.maxValue / 1000)),
      }
    : null;
  const result: LoadResult = {
    tool: first.tool,
    requests: sum((r) => r.requests),
    durationSec: Math.max(...results.map((r) => r.durationSec)),
    rps: sum((r) => r.rps),
    latencyMs,
    latencyResolutionUs: h ? 1 : (first.latencyResolutionUs ?? 1000),
    latencyCorrected: results.every((r) => r.latencyCorrected),
    errors,
    bytes: sum((r) => r.bytes),
    ...(h ? { histogramUs: hdr.encodeIntoCompressedBase64(h) } : {}),
  };
  const why = h ? null : `${first.tool} gives no latency histogram, and percentiles of ${results.length} load generators cannot be averaged`;
  return { result, latencyWhy: why };
}
