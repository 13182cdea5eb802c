// Starts the sampler process (probe.js) on a host and turns its output into a time series.
import { readFileSync } from 'node:fs';
import type { Host } from '../runtime/runtime.js';
import type { Sample } from '../in-host/sampler-probe.js';

export type { Sample };

export interface Sampler {
  /** Stops the probe (it takes a last sample) and returns every sample, in time order. */
  stop(): Promise<Sample[]>;
}

export function startSampler(host: Host, intervalMs = 50, maxSec = 3600): Sampler {
  const proc = host.start([...host.node('dist/lab/in-host/sampler-probe.js'), String(intervalMs), String(maxSec)], 'sampler');
  return {
    async stop() {
      await proc.stop('SIGTERM');
      return parseSamples(readFileSync(proc.log, 'utf8'));
    },
  };
}

/** The probe's JSON lines; other lines (its stderr, shared file) are skipped. */
export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{"t":')) continue;
    try {
      out.push(JSON.parse(line) as Sample);
    } catch {
      // A line cut short by a kill: ignore it.
    }
  }
  return out.sort((a, b) => a.t - b.t);
}

export interface SeriesSummary {
  samples: number;
  /** Mean gap between samples, ms. */
  intervalMs: number | null;
  /**
   * The listener on `port`: its limit and the deepest accept queue seen, and for how long the
   * queue held at that depth (ms from the first to the last sample of the longest run of
   * samples at it; 0 when one sample alone saw it): a peak that held still is a settled one.
   */
  listener: { port: number; sendQ: number; peakRecvQ: number; peakHeldMs: number } | null;
  /** The most sockets seen in each state at one sample. */
  peakStates: Record<string, number>;
}

export function summarize(samples: Sample[], port?: number): SeriesSummary {
  const peakStates: Record<string, number> = {};
  let listener = null as SeriesSummary['listener'];
  // The current run of samples at the deepest queue so far: since when.
  let runFrom: number | null = null;
  for (const s of samples) {
    for (const [k, v] of Object.entries(s.states)) peakStates[k] = Math.max(peakStates[k] ?? 0, v);
    const l = port === undefined ? undefined : s.listeners.find((x) => x.port === port);
    if (!l) {
      runFrom = null;
      continue;
    }
    const prev = listener;
    if (!prev || l.recvQ > prev.peakRecvQ) {
      listener = { port: l.port, sendQ: l.sendQ, peakRecvQ: l.recvQ, peakHeldMs: 0 };
      runFrom = s.t;
    } else {
      listener = { ...prev, sendQ: l.sendQ };
      if (l.recvQ === prev.peakRecvQ) {
        runFrom ??= s.t;
        listener.peakHeldMs = Math.max(prev.peakHeldMs, s.t - runFrom);
      } else runFrom = null;
    }
  }
  const span = samples.length > 1 ? samples[samples.length - 1]!.t - samples[0]!.t : 0;
  return {
    samples: samples.length,
    intervalMs: samples.length > 1 ? Math.round((span / (samples.length - 1)) * 10) / 10 : null,
    listener,
    peakStates,
  };
}
