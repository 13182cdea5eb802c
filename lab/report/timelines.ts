// What a point's kernel events and packet timelines say, for the report and the scenarios'
// explanations: times in seconds since the point's samplers started (the queue series' x-axis),
// the swimlanes of the report's timeline chart, and lookups by connection.
import type { ConnTimeline } from '../observe/capture.js';
import type { TraceEvent } from '../observe/tracer.js';
import type { PointRecord } from '../pipeline/record.js';

/** The point's time origin: the server's first sample (the series charts start there), ms since the epoch. */
export const origin = (p: PointRecord): number => p.hosts['server']?.series.samples[0]?.t ?? Date.parse(p.startedAt);

/** ms since the epoch → seconds since the origin, 3 decimals. */
export const rel = (p: PointRecord, t: number) => Math.round(t - origin(p)) / 1000;

/** A list of times as "+1.234, +1.240 s" (at most `max`, then "…"). */
export function times(p: PointRecord, ts: number[], max = 6): string {
  const shown = ts.slice(0, max).map((t) => `${rel(p, t).toFixed(3)}`);
  return `t = ${shown.join(', ')}${ts.length > max ? ', …' : ''} s`;
}

export const eventsOf = (p: PointRecord): TraceEvent[] => p.trace?.events ?? [];
export const countOf = (p: PointRecord, host: string, key: string): number => p.trace?.summary?.byHost[host]?.[key] ?? 0;

/** The events of the connection whose client side is port `clientPort` (either host's view of it). */
export const eventsOfClient = (events: TraceEvent[], clientPort: number, serverPort: number) =>
  events.filter((e) => (e.host === 'server' ? e.rport === clientPort && e.lport === serverPort : e.lport === clientPort && e.rport === serverPort));

export interface Mark {
  lane: number;
  /** Seconds since the origin. */
  x: number;
  kind: string;
  /** The tooltip: what happened, e.g. "ACK dropped: TCP_LISTEN_OVERFLOW". */
  text: string;
}

export interface Lanes {
  lanes: string[];
  marks: Mark[];
  /** Connections or event kinds not drawn (past the lane limit). */
  more: number;
}

export const MAX_LANES = 40;

/** The kinds of marks, in legend order. */
export const MARK_KINDS = [
  'SYN',
  'SYN retransmitted',
  'SYN-ACK',
  'SYN-ACK retransmitted',
  'ACK',
  'data',
  'response',
  'FIN',
  'RST',
  'dropped (kernel)',
  'RST sent (kernel)',
  'retransmit (kernel)',
  'state (kernel)',
] as const;

const port = (client: string) => Number(client.slice(client.lastIndexOf(':') + 1));

function traceMark(e: TraceEvent): { kind: string; text: string } | null {
  const at = `${e.host}`;
  if (e.kind === 'drop') return { kind: 'dropped (kernel)', text: `${at}: ${e.flags ?? ''} dropped: ${e.reason}` };
  if (e.kind === 'reset-sent') return { kind: 'RST sent (kernel)', text: `${at}: RST sent (${e.reason})` };
  if (e.kind === 'retransmit' || e.kind === 'synack-retransmit')
    return { kind: 'retransmit (kernel)', text: `${at}: ${e.kind} (${e.state ?? 'SYN-RECV'})` };
  if (e.kind === 'state') return { kind: 'state (kernel)', text: `${at}: ${e.from} → ${e.to}` };
  if (e.kind === 'reset-received') return { kind: 'RST', text: `${at}: RST received` };
  return null;
}

/**
 * The swimlanes of one point: a lane per connection of the capture (its packets, and the kernel's
 * events on that connection), else a lane per host and event kind of the trace.
 */
export function lanesOf(p: PointRecord): Lanes | null {
  const timelines: ConnTimeline[] = p.capture?.timelines ?? [];
  const events = eventsOf(p);
  const serverPort = p.server.port;
  const marks: Mark[] = [];
  const lanes: string[] = [];
  if (timelines.length) {
    const shown = timelines.slice(0, MAX_LANES);
    shown.forEach((c, lane) => {
      lanes.push(c.client);
      const add = (t: number | undefined, kind: string, text: string) => t !== undefined && marks.push({ lane, x: rel(p, t), kind, text });
      c.syn.forEach((t, i) => add(t, i ? 'SYN retransmitted' : 'SYN', i ? `SYN again (${i})` : 'SYN'));
      c.synAck.forEach((t, i) => add(t, i ? 'SYN-ACK retransmitted' : 'SYN-ACK', i ? `SYN-ACK again (${i})` : 'SYN-ACK'));
      add(c.ack, 'ACK', "client's ACK");
      add(c.data, 'data', "client's first data");
      add(c.response, 'response', "server's first data");
      add(c.fin?.t, 'FIN', `FIN from the ${c.fin?.by}`);
      add(c.rst?.t, 'RST', `RST from the ${c.rst?.by}`);
      for (const e of eventsOfClient(events, port(c.client), serverPort)) {
        const m = traceMark(e);
        if (m && e.kind !== 'state' && e.kind !== 'reset-received') marks.push({ lane, x: rel(p, e.t), ...m });
      }
    });
    return { lanes, marks, more: Math.max(0, timelines.length - shown.length) + (p.capture?.summary?.notInRecord ?? 0) };
  }
  if (!events.length) return null;
  const laneOf = new Map<string, number>();
  for (const e of events) {
    const m = traceMark(e);
    if (!m) continue;
    const name = `${e.host} ${e.kind}${e.reason ? ` ${e.reason}` : ''}`;
    let lane = laneOf.get(name);
    if (lane === undefined) {
      if (lanes.length >= MAX_LANES) continue;
      laneOf.set(name, (lane = lanes.length));
      lanes.push(name);
    }
    marks.push({ lane, x: rel(p, e.t), ...m, text: `${m.text}: ${e.local}:${e.lport} ↔ ${e.remote}:${e.rport}` });
  }
  return { lanes, marks, more: 0 };
}

/**
 * The SYN-ACKs each flood port got, as the loadgen's kernel dropped them (its nft rule: reason
 * NETFILTER_DROP): the first, then the retransmissions; ms since the epoch, by local port.
 */
export function synAcksDropped(events: TraceEvent[], first: number, last: number): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const e of events)
    if (e.host !== 'server' && e.kind === 'drop' && e.flags === 'SYN|ACK' && e.lport >= first && e.lport <= last)
      out.set(e.lport, [...(out.get(e.lport) ?? []), e.t]);
  return out;
}

/**
 * Each flood request's SYN-ACKs for the retransmission rule: the first as it reached the
 * loadgen (its nft rule dropped it), then each retransmission as the server's kernel sent it
 * (tcp:tcp_retransmit_synack). Not the retransmissions as they reached the loadgen: a burst of
 * hundreds that fire in the same timer tick can lose some on the way (seen: 83 of 512 requests'
 * 1 s retransmissions sent, never dropped by the loadgen's rule), and a gap would shift the
 * sequence by one. Requests whose first SYN-ACK the loadgen did not see are left out.
 */
export function synAcksSent(events: TraceEvent[], first: number, last: number): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const [port, ts] of synAcksDropped(events, first, last)) out.set(port, [ts[0]!]);
  for (const e of events)
    if (e.host === 'server' && e.kind === 'synack-retransmit' && e.rport >= first && e.rport <= last) out.get(e.rport)?.push(e.t);
  return out;
}

/**
 * How far outside its window (s after the request's first SYN-ACK) each SYN-ACK retransmission
 * came; the largest (0: every one inside), how many were seen, and how many were not sent.
 *
 * Each retransmission is matched to the window it is nearest, among those after the one the
 * request's previous retransmission took; so the k-th seen is not taken for the k-th window. The
 * server's tracepoint fires only when a SYN-ACK really leaves (tcp_rtx_synack): one whose send
 * failed is missing, while its timer goes on to the next. Seen in a CI run: 1,010 of 512 × 2
 * traced; paired in order, a request's 3 s retransmission read as its 1 s one, 2.007 s out.
 * A window skipped before a later one was taken counts as not sent; the windows after the last
 * one taken are not counted (the trace may have ended first). A model whose first window is
 * wrong still fails: a retransmission between two windows is matched to the nearer one and its
 * distance is the measure.
 */
export function synAckOutside(
  arrivals: Map<number, number[]>,
  windows: Array<[number, number]>,
): { seen: number; worst: number | null; notSent: number } {
  let seen = 0;
  let notSent = 0;
  let worst: number | null = null;
  const away = (t: number, [lo, hi]: [number, number]) => Math.max(0, lo - t, t - hi);
  for (const ts of arrivals.values()) {
    let next = 0;
    for (let k = 1; k < ts.length && next < windows.length; k++) {
      const t = (ts[k]! - ts[0]!) / 1000;
      let j = next;
      while (j + 1 < windows.length && away(t, windows[j + 1]!) < away(t, windows[j]!)) j++;
      notSent += j - next;
      next = j + 1;
      seen++;
      worst = Math.max(worst ?? 0, Math.round(away(t, windows[j]!) * 1000) / 1000);
    }
  }
  return { seen, worst, notSent };
}
