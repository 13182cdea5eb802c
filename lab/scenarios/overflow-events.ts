// What the kernel's events (trace: true) and the loadgen's capture (capture: true) say about the
// overflow scenario's held clients: when each one's final ACK was dropped and why, and when it
// was reset or served. Used by the verdicts (from the whole trace) and the report (the record).
import { RESERVED_PORTS } from '../../core/fields.js';
import type { ConnTimeline } from '../observe/capture.js';
import type { TraceEvent } from '../observe/tracer.js';
import { eventsOfClient } from '../report/timelines.js';

export const LISTEN_OVERFLOW = 'TCP_LISTEN_OVERFLOW';

export interface HeldStory {
  port: number;
  /** The server dropped its ACK (the request's segment) for the listen overflow: first time, ms since the epoch. */
  ackDroppedAt?: number;
  dropReason?: string;
  /** The server sent it an RST (first), and why. */
  resetSentAt?: number;
  resetReason?: string;
  /** The client's kernel took an RST. */
  resetReceivedAt?: number;
  /** The capture: the server's SYN-ACKs, the server's first data (served). */
  synAcks: number[];
  servedAt?: number;
}

/** Each held client's story, from the events and the capture's timelines. */
export function heldStories(events: TraceEvent[], timelines: ConnTimeline[], held: number, serverPort: number): HeldStory[] {
  return Array.from({ length: held }, (_, i) => {
    const port = RESERVED_PORTS.overflow.first + i;
    const mine = eventsOfClient(events, port, serverPort);
    const drop = mine.find((e) => e.host === 'server' && e.kind === 'drop' && e.reason === LISTEN_OVERFLOW);
    const rst = mine.find((e) => e.host === 'server' && e.kind === 'reset-sent');
    const got = mine.find((e) => e.host !== 'server' && e.kind === 'reset-received');
    const tl = timelines.find((c) => c.client.endsWith(`:${port}`));
    return {
      port,
      ...(drop ? { ackDroppedAt: drop.t, dropReason: drop.reason } : {}),
      ...(rst ? { resetSentAt: rst.t, resetReason: rst.reason } : {}),
      ...(got ? { resetReceivedAt: got.t } : {}),
      synAcks: tl?.synAck ?? [],
      ...(tl?.response !== undefined ? { servedAt: tl.response } : {}),
    };
  });
}

/** The server's drops for the listen overflow, all of them (held clients' ACKs; SYNs are not among them on this kernel). */
export const overflowDrops = (events: TraceEvent[]) => events.filter((e) => e.host === 'server' && e.kind === 'drop' && e.reason === LISTEN_OVERFLOW);

/**
 * The SYNs the late clients sent (first ones and retransmissions), from the capture: every
 * connection after the held ones and the fill, in the order their first SYN went out. Null
 * without a capture.
 */
export function lateSynsSeen(timelines: ConnTimeline[] | undefined, fill: number): number | null {
  if (!timelines?.length) return null;
  return lateTimelines(timelines, fill).reduce((n, c) => n + c.syn.length, 0);
}

/** The late clients' connections in a capture: those after the held (their reserved ports) and the fill. */
export function lateTimelines(timelines: ConnTimeline[], fill: number): ConnTimeline[] {
  return timelines.filter((c) => Number(c.client.slice(c.client.lastIndexOf(':') + 1)) < RESERVED_PORTS.overflow.first).slice(fill);
}
