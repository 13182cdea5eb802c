// A point's optional watchers, started before the samplers and stopped after them: the kernel
// event tracer (`trace`) and the packet capture (`capture`). Each one that cannot run here says
// so in one progress line and the point runs without it; the record says why.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Host } from '../runtime/runtime.js';
import { startCapture, type Capture, type CaptureResult } from './capture.js';
import { startTracer, tracerUnavailable, type TraceResult, type Tracer } from './tracer.js';

/** Events kept in the point record; all of them are in raw/<point>/trace.jsonl. */
export const EVENTS_IN_RECORD = 5_000;

export interface TraceRecord {
  /** Why it did not run (no root, no bpftrace, …). */
  unavailable?: string;
  summary?: TraceResult['summary'];
  /** The first EVENTS_IN_RECORD events in time. */
  events?: TraceResult['events'];
  /** Every event, one JSON line each, relative to the run folder. */
  file?: string;
}

export interface CaptureRecord {
  unavailable?: string;
  host?: string;
  summary?: CaptureResult['summary'];
  timelines?: CaptureResult['timelines'];
  /** The pcap, relative to the run folder. */
  file?: string;
}

export interface Watched {
  /** For the scenario's verdicts and explanations. */
  observations: { trace?: TraceResult; capture?: CaptureResult };
  /** For the point record. */
  record: { trace?: TraceRecord; capture?: CaptureRecord };
}

export interface Watchers {
  stop(rawDir: string, rawRel: string): Promise<Watched>;
}

export async function startWatchers(o: {
  trace: boolean;
  capture: boolean;
  hosts: Host[];
  client: Host;
  port: number;
  logDir: string;
  progress: (line: string) => void;
}): Promise<Watchers> {
  let tracer: Tracer | undefined;
  let traceWhy: string | undefined;
  let capture: Capture | undefined;
  let captureWhy: string | undefined;
  if (o.trace) {
    traceWhy = (await tracerUnavailable()) ?? undefined;
    if (!traceWhy) {
      try {
        tracer = await startTracer(o.hosts, join(o.logDir, 'bpftrace.out'));
        o.progress(`trace: bpftrace attached (${o.hosts.map((h) => h.name).join(', ')})`);
      } catch (err) {
        traceWhy = `${(err as Error).message}: the point runs without the tracer`;
      }
    }
    if (traceWhy) o.progress(`trace: ${traceWhy}`);
  }
  if (o.capture) {
    try {
      capture = await startCapture(o.client, o.port, o.logDir);
      o.progress(`capture: tcpdump on ${o.client.name}, port ${o.port}`);
    } catch (err) {
      captureWhy = `${(err as Error).message}: the point runs without the capture`;
      o.progress(`capture: ${captureWhy}`);
    }
  }
  return {
    async stop(rawDir, rawRel) {
      const w: Watched = { observations: {}, record: {} };
      if (o.trace) {
        if (tracer) {
          const t = await tracer.stop();
          writeFileSync(join(rawDir, 'trace.jsonl'), t.events.map((e) => JSON.stringify(e)).join('\n') + (t.events.length ? '\n' : ''), {
            flag: 'wx',
          });
          w.observations.trace = t;
          w.record.trace = { summary: t.summary, events: t.events.slice(0, EVENTS_IN_RECORD), file: join(rawRel, 'trace.jsonl') };
          o.progress(`trace: ${t.summary.events} events${t.summary.dropped ? `, ${t.summary.dropped} past the cap or lost` : ''}`);
        } else w.record.trace = { unavailable: traceWhy! };
      }
      if (o.capture) {
        if (capture) {
          const c = await capture.stop(rawDir);
          if (c.result) w.observations.capture = c.result;
          w.record.capture = {
            host: o.client.name,
            ...(c.why ? { unavailable: c.why } : {}),
            ...(c.result ? { summary: c.result.summary, timelines: c.result.timelines } : {}),
            file: join(rawRel, 'capture.pcap'),
          };
          if (c.result) o.progress(`capture: ${c.result.summary.packets} packets, ${c.result.summary.connections} connections`);
          else if (c.why) o.progress(`capture: ${c.why}`);
        } else w.record.capture = { unavailable: captureWhy! };
      }
      return w;
    },
  };
}
