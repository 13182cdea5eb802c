// The synflood (events) rule's measurement, on the tracer's events of a real point
// (test/fixtures/trace/synflood-lost-synacks.jsonl, with how it was made): 83 requests' 1 s
// SYN-ACK retransmissions were sent by the server and never reached the loadgen. Taken from
// the loadgen's drops, those requests miss their 1 s retransmission: matched by window, their
// 3 s one is in its own window, not 2.012 s outside the first. Taken as the server's kernel
// sent them, every one is inside its window.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { retransmitWindows, synackTimeline } from '../../lab/model/kernel.js';
import type { TraceEvent } from '../../lab/observe/tracer.js';
import { synAckOutside, synAcksDropped, synAcksSent } from '../../lab/report/timelines.js';

const events = readFileSync(fileURLToPath(new URL('../fixtures/trace/synflood-lost-synacks.jsonl', import.meta.url)), 'utf8')
  .split('\n')
  .filter((l) => l.startsWith('{'))
  .map((l) => JSON.parse(l) as TraceEvent);
// tcp_synack_retries 5 (the point's), HZ 250 (this machine's), the rule's own measurement error.
const windows = retransmitWindows(synackTimeline(5).retransmitsAt, 250, { early: 0.005, late: 0.005 });

describe("the synflood (events) rule's SYN-ACK times", () => {
  it("the loadgen's drops alone: 83 requests' first retransmission missing; each later one is matched to its own window, not read as the first", () => {
    const dropped = synAcksDropped(events, 20000, 29999);
    expect([...dropped.values()].filter((ts) => ts.length > 1 && ts[1]! - ts[0]! > 2000)).toHaveLength(83);
    const d = synAckOutside(dropped, windows);
    expect(d.notSent).toBe(83);
    expect(d.worst).toBeLessThanOrEqual(0.02);
  });

  it("a retransmission between two windows is measured against the nearer one: the kernel's 1 s one read 1 s late is 0.98 s out", () => {
    // One request: its first SYN-ACK at 0, a retransmission at 2 s (no window holds it; the
    // windows are 1 s and 3 s, plus the wheel's lateness), then 3 s.
    const d = synAckOutside(new Map([[1, [0, 2000, 3000]]]), windows);
    expect(d.notSent).toBe(0);
    expect(d.worst).toBeGreaterThan(0.9);
  });

  it('the retransmissions as the server sent them: 2 for each of the 103 requests, every one in its window', () => {
    const sent = synAcksSent(events, 20000, 29999);
    expect(sent.size).toBe(103);
    expect([...sent.values()].every((ts) => ts.length === 3)).toBe(true);
    expect(synAckOutside(sent, windows)).toEqual({ seen: 206, worst: 0, notSent: 0 });
  });
});
