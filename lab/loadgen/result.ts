// The one result shape every load-generator driver produces.
import { LabError } from '../../core/errors.js';
import { DEFAULT_DURATION_SEC, type LoadTool } from '../../core/fields.js';

export type { LoadTool };

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface LoadErrors {
  connect: number;
  read: number;
  write: number;
  timeout: number;
  reset: number;
  non2xx: number;
  /** Socket errors the tool does not break down (autocannon counts them as one). */
  other: number;
}

export interface LoadResult {
  tool: LoadTool;
  requests: number;
  durationSec: number;
  rps: number;
  /** Milliseconds; null when the tool printed no percentiles. */
  latencyMs: LatencySummary | null;
  /** The finest step the tool's latencies have, µs (1: µs; 1000: whole milliseconds). Absent in records before it was kept. */
  latencyResolutionUs?: number;
  /**
   * Whether latency is corrected for coordinated omission (measured from when a
   * request should have been sent at the set rate: wrk2), or not (from when it was sent).
   */
  latencyCorrected: boolean;
  /** wrk2 -U: the uncorrected figures next to the corrected ones. */
  latencyUncorrectedMs?: LatencySummary;
  errors: LoadErrors;
  bytes: number;
  /**
   * The latency histogram itself, where the tool gives one (autocannon, 1 µs resolution):
   * HdrHistogram's compressed base64 encoding, values in µs. Several loadgens' latencies are
   * merged from these, never by averaging percentiles.
   */
  histogramUs?: string;
}

/** The tool ran but could not do its job (server down, arguments refused); one line. */
export class LoadgenError extends LabError {
  constructor(
    message: string,
    readonly kind: 'connect' | 'usage' | 'output' | 'missing',
  ) {
    // A missing tool or options it cannot honour: the input or the machine (exit 2). A tool
    // that could not connect or printed nothing usable: this point failed (exit 1).
    super(message, kind === 'usage' || kind === 'missing' ? 2 : 1);
  }
}

/** What a load run asks for; each driver turns it into its tool's argv. */
export interface LoadOptions {
  url: string;
  connections: number;
  /** Run for this long … */
  durationSec?: number;
  /** … or send this many requests. */
  requests?: number;
  threads?: number;
  /** Requests per second over all connections (rate-limited tools). */
  rate?: number;
  keepAlive?: boolean;
  pipelining?: number;
}

export const NO_ERRORS: LoadErrors = { connect: 0, read: 0, write: 0, timeout: 0, reset: 0, non2xx: 0, other: 0 };

/** A load as users write it (flags, lab files): duration in seconds, 10 s unless a request count is given. */
export interface LoadSpec {
  connections: number;
  duration?: number | undefined;
  requests?: number | undefined;
  threads?: number | undefined;
  rate?: number | undefined;
  keepAlive?: boolean | undefined;
  pipelining?: number | undefined;
}

export function loadOptions(s: LoadSpec, url: string): LoadOptions {
  return {
    url,
    connections: s.connections,
    ...(s.requests !== undefined ? { requests: s.requests } : { durationSec: s.duration ?? DEFAULT_DURATION_SEC }),
    ...(s.threads !== undefined ? { threads: s.threads } : {}),
    ...(s.rate !== undefined ? { rate: s.rate } : {}),
    ...(s.keepAlive === false ? { keepAlive: false } : {}),
    ...(s.pipelining !== undefined ? { pipelining: s.pipelining } : {}),
  };
}
