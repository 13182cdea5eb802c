// The listener's two stages (lab/model/listener.ts) held to two real arrivals points, each with
// a capture beside the kernel's counters (test/fixtures/arrivals, with how they were made): the
// timer wheel's batches against the SYN retransmissions the capture saw, and the final ACK's
// stage replayed on the capture's own SYN times against ListenOverflows and the held clients.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { synackTimeline, synTimeline } from '../../lab/model/kernel.js';
import { listenerFate, wheelFires } from '../../lab/model/listener.js';
import { reactorBucket } from '../../lab/scenarios/arrivals.js';

interface Fixture {
  point: {
    rate: number;
    acceptRate: number;
    limit: number;
    watchEndMs: number;
    hz: number;
    synRetries: number;
    linearTimeouts: number;
    syncookies: number;
    synackRetries: number;
  };
  counters: { server: Record<string, number>; client: Record<string, number> };
  connections: Array<{ sent: number; syns: number[]; connect: number | null; firstByte: number | null; dataSent: number }>;
}
const load = (name: string) => JSON.parse(readFileSync(fileURLToPath(new URL(`../fixtures/arrivals/${name}`, import.meta.url)), 'utf8')) as Fixture;

/** The wheel's phase (0.25 ms steps in its 8-jiffy granularity) that puts the most retransmissions within 1 ms of where it fires them, and how far each is from that. */
function bestPhase(f: Fixture) {
  const at = synTimeline(f.point.synRetries, f.point.linearTimeouts).retransmitsAt;
  const pairs = f.connections.flatMap((c) =>
    c.syns.slice(1).map((t, k) => ({ armed: c.syns[k]!, at: t, jiffies: Math.round((at[k]! - (k ? at[k - 1]! : 0)) * f.point.hz) })),
  );
  let best = { phase: 0, near: -1, errors: [] as number[] };
  for (let phase = 0; phase < (8 * 1000) / f.point.hz; phase += 0.25) {
    const errors = pairs.map((p) => p.at - wheelFires({ hz: f.point.hz, phaseMs: phase }, p.armed, p.jiffies));
    const near = errors.filter((e) => Math.abs(e) <= 1).length;
    if (near > best.near) best = { phase, near, errors };
  }
  return best;
}

/** The capture's SYN retransmissions, each batch (those within 0.5 ms of the one before) at its first one's time: the batch leaves together, its ACKs come back after it. */
function batched(f: Fixture) {
  const all = f.connections.flatMap((c) => c.syns.slice(1)).sort((a, b) => a - b);
  const start = new Map<number, number>();
  all.forEach((t, i) => start.set(t, i && t - all[i - 1]! < 0.5 ? start.get(all[i - 1]!)! : t));
  return (i: number, k: number) => {
    const t = f.connections[i]!.syns[k];
    return t === undefined ? undefined : start.get(t);
  };
}

function replay(f: Fixture, handshake: boolean) {
  const syn = synTimeline(f.point.synRetries, f.point.linearTimeouts);
  const synack = synackTimeline(f.point.synackRetries).retransmitsAt;
  return listenerFate({
    times: f.connections.map((c) => c.syns[0] ?? c.sent),
    limit: f.point.limit,
    acceptRate: f.point.acceptRate,
    bucket: reactorBucket(f.point.acceptRate),
    retransmitsAt: syn.retransmitsAt,
    timeoutAt: syn.timeoutAt,
    endMs: f.point.watchEndMs,
    synAt: batched(f),
    ...(handshake
      ? {
          handshake: {
            wheel: { hz: f.point.hz, phaseMs: bestPhase(f).phase },
            syncookies: f.point.syncookies,
            synackIntervals: synack.map((t, k) => t - (k ? synack[k - 1]! : 0)),
            requestAfterMs: 0.3,
          },
        }
      : {}),
  });
}

describe.each([
  ['ack-stage-300.json', 767],
  ['ack-stage-200.json', 304],
])('%s', (name, retransmissions) => {
  const f = load(name);
  it("every SYN retransmission the capture saw fires where the wheel puts it, on one CPU's wheel or the other's a jiffy behind", () => {
    const { near, errors } = bestPhase(f);
    expect(errors).toHaveLength(retransmissions);
    // Within 1 ms (the capture's clock against the client's, matched on the first SYNs' median).
    expect(near).toBeGreaterThan(retransmissions / 2);
    const jiffy = 1000 / f.point.hz;
    expect(errors.filter((e) => Math.abs(e) > 1 && Math.abs(e - jiffy) > 1)).toEqual([]);
  });

  // When written: 300/s, 2,044 drops for the kernel's 1,943 and 296 held for 283; 200/s, 587 for
  // 653 and 94 for 115. The SYN stage alone: 1,151 and 372.
  it("the final ACK's stage on the capture's SYN times: ListenOverflows within 15 % and the held clients within 25 %; the SYN stage alone explains less than 60 % of the drops", () => {
    const overflows = f.counters.server['TcpExtListenOverflows']!;
    const held = f.connections.filter((c) => c.dataSent > 1).length;
    const fate = replay(f, true);
    expect(Math.abs(fate.drops - overflows) / overflows).toBeLessThan(0.15);
    expect(Math.abs(fate.held - held) / held).toBeLessThan(0.25);
    expect(replay(f, false).drops / overflows).toBeLessThan(0.6);
  });
});
