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
  /** The listener on `port`: its limit and the deepest accept queue seen. */
  listener: { port: number; sendQ: number; peakRecvQ: number } | null;
  /** The most sockets seen in each state at one sample. */
  peakStates: Record<string, number>;
}

export function summarize(samples: Sample[], port?: number): SeriesSummary {
  const peakStates: Record<string, number> = {};
  let listener = null as SeriesSummary['listener'];
  for (const s of samples) {
    for (const [k, v] of Object.entries(s.states)) peakStates[k] = Math.max(peakStates[k] ?? 0, v);
    const l = port === undefined ? undefined : s.listeners.find((x) => x.port === port);
    if (l) listener = { port: l.port, sendQ: l.sendQ, peakRecvQ: Math.max(listener ? listener.peakRecvQ : 0, l.recvQ) };
  }
  const span = samples.length > 1 ? samples[samples.length - 1]!.t - samples[0]!.t : 0;
  return {
    samples: samples.length,
    intervalMs: samples.length > 1 ? Math.round((span / (samples.length - 1)) * 10) / 10 : null,
    listener,
    peakStates,
  };
}
