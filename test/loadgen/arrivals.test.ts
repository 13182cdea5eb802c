// The open-loop arrivals client (lab/in-host/arrivals.ts) against the real kernel, in a
// throw-away namespace, and the connect-time comb (lab/model/kernel.ts connectTeeth):
// 40 connections at a fixed 40/s toward a listener with backlog 2 that accepts nothing for its
// first 2.5 s (a Python server), captured by tcpdump. The kernel answers the first 3 SYNs
// (limit + 1) and drops the rest; each dropped client gets in on the first of its SYN
// retransmissions (1, 2, 3 … s after its SYN) that comes after the server began to accept.
// So every connect lands on a tooth of the comb, and which tooth follows from when each
// client started and when the server began to accept. The client's own connect times agree
// with the capture's SYN and SYN-ACK timestamps.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { arrivalTimes, epochMs, type ArrivalsResult } from '../../lab/in-host/arrivals.js';
import { connectTeeth, retransmitWindows, synTimeline, toothOf } from '../../lab/model/kernel.js';
import { kernelHz } from '../../lab/scenarios/common.js';
import { clientSlackSec } from '../../lab/scenarios/arrivals.js';
import { createNetns, type TestNetns } from '../helpers/netns.js';

/** A TcpExt counter of a namespace (/proc/net/netstat). */
function tcpExt(ns: TestNetns, name: string): number {
  const lines = ns.exec(['cat', '/proc/net/netstat']).split('\n');
  const i = lines.findIndex((l) => l.startsWith('TcpExt:') && l.includes(` ${name}`));
  return Number(lines[i + 1]!.split(' ')[lines[i]!.split(' ').indexOf(name)]);
}

const ARRIVALS = fileURLToPath(new URL('../../dist/lab/in-host/arrivals.js', import.meta.url));
const namespaces: TestNetns[] = [];
afterAll(() => namespaces.forEach((n) => n.remove()));

describe('the schedules', () => {
  it('fixed, bursts and Poisson (seeded): the intended arrival times', () => {
    expect(arrivalTimes({ kind: 'fixed', rate: 4, count: 5 })).toEqual([0, 250, 500, 750, 1000]);
    expect(arrivalTimes({ kind: 'bursts', burst: 2, periodMs: 100, count: 5 })).toEqual([0, 0, 100, 100, 200]);
    const p = arrivalTimes({ kind: 'poisson', rate: 1000, count: 20_000, seed: 7 });
    expect(arrivalTimes({ kind: 'poisson', rate: 1000, count: 20_000, seed: 7 })).toEqual(p);
    // The mean gap of a Poisson process at 1000/s is 1 ms; 20,000 gaps put it within 3%.
    expect(p.at(-1)! / (p.length - 1)).toBeGreaterThan(0.97);
    expect(p.at(-1)! / (p.length - 1)).toBeLessThan(1.03);
  });
});

describe('open-loop arrivals on the running kernel', () => {
  it('40/s at a queue of limit 2 that accepts after 2.5 s: every connect on a tooth of the comb, the tooth each client was due, and the same times as the capture', async () => {
    const ns = createNetns('arrivals');
    namespaces.push(ns);
    const port = 7070;
    // tcpdump first: every SYN and SYN-ACK on the port, with its time (µs).
    const dump = spawn(
      'ip',
      ['netns', 'exec', ns.name, 'tcpdump', '-i', 'lo', '-n', '-tt', '-l', '--immediate-mode', `tcp port ${port} and tcp[tcpflags] & tcp-syn != 0`],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let dumped = '';
    dump.stdout!.on('data', (d: Buffer) => (dumped += d.toString()));
    await once(dump.stderr!, 'data'); // "listening on lo"
    const server = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns.name,
        'python3',
        '-c',
        [
          'import socket, sys, time',
          's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
          `s.bind(('127.0.0.1', ${port})); s.listen(2)`,
          "print('up', flush=True); time.sleep(2.5); print('accepting %.6f' % time.monotonic(), flush=True)",
          'first = True',
          'while True:',
          '    c, _ = s.accept(); c.recv(4096)',
          "    if first: print('first %.6f' % time.monotonic(), flush=True); first = False",
          "    c.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok'); c.close()",
        ].join('\n'),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let said = '';
    server.stdout!.on('data', (d: Buffer) => (said += d.toString()));
    try {
      while (!said.includes('up')) await once(server.stdout!, 'data');
      const overflowsBefore = tcpExt(ns, 'ListenOverflows');
      const client = spawn(
        'ip',
        [
          'netns',
          'exec',
          ns.name,
          process.execPath,
          ARRIVALS,
          JSON.stringify({ host: '127.0.0.1', port, schedule: { kind: 'fixed', rate: 40, count: 40 }, watchMs: 4000 }),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      client.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await once(client, 'exit');
      await new Promise((r) => setTimeout(r, 200)); // tcpdump's last lines
      const r = JSON.parse(out) as ArrivalsResult;
      // The queue has room from some moment between these two: just before the server's first
      // accept() and just after it returned (a busy machine may hold the server up in between).
      const acceptFrom = Number(/accepting (\S+)/.exec(said)![1]) * 1000;
      const firstAccepted = Number(/first (\S+)/.exec(said)![1]) * 1000;
      expect(r.byOutcome).toMatchObject({ answered: 40 });

      // The comb: tooth 0 at once, then the SYN retransmissions (defaults: 1, 2, 3, 4, 5, 7 … s),
      // each late by the timer wheel's lateness so far and 50 ms for the client's own timing
      // (Node's event loop on a 2-core machine that may be busy).
      const { hz } = kernelHz();
      const teeth = connectTeeth(6, 4, hz, clientSlackSec(r));
      const retransmits = [0, ...synTimeline(6, 4).retransmitsAt];
      // Each retransmission is late by the timer wheel's lateness so far, at most.
      const windows = retransmitWindows(synTimeline(6, 4).retransmitsAt, hz, { early: 0.001, late: 0.001 });
      const teethOf: number[] = [];
      for (const a of r.arrivals) {
        const sinceSyn = (a.connectMs! - a.lateMs) / 1000;
        const tooth = toothOf(sinceSyn, teeth);
        expect(a.port).toBeGreaterThan(0);
        expect(tooth, `a connect ${sinceSyn} s after its SYN falls between the teeth`).toBeGreaterThanOrEqual(0);
        teethOf.push(tooth);
        // The tooth it was due: at once for the first 3 (the queue's limit + 1), else the first
        // retransmission that reaches the server once it accepts. One whose window (the timer
        // wheel's lateness so far) takes in the moment the queue got room could go either way
        // and is not held to it. On the monotonic clock, the server's and the kernel timers'.
        const synAt = r.mono0 + a.at + a.lateMs;
        const due = retransmits.findIndex((t, k) => k > 0 && synAt + t * 1000 >= acceptFrom);
        const near = windows.some(([lo, hi]) => synAt + lo * 1000 <= firstAccepted && synAt + hi * 1000 >= acceptFrom);
        if (r.arrivals.indexOf(a) < 3) expect(tooth).toBe(0);
        else if (!near) expect([a.at, tooth]).toEqual([a.at, due]);
      }
      expect(teethOf.filter((t) => t === 0)).toHaveLength(3);
      // How many are due on tooth 1 depends on when the client started against the server's
      // 2.5 s: each client's tooth is held to its own due one above. (A count of 0 was written
      // here once; CI56 had 15, each on the tooth it was due, the client started late on a busy
      // machine.)
      // The comb against the kernel's count: a client on tooth k had k SYNs dropped on the full
      // queue, each one counted in ListenOverflows. The kernel counts a final ACK that met a full
      // queue there too (SYNs let in together, as retransmissions fired on one timer tick, whose
      // ACKs then find room for fewer than all; CI44 saw 2 on a busy machine): at least the comb.
      // Each client's own SYNs, exactly, are the capture's (below).
      expect(tcpExt(ns, 'ListenOverflows') - overflowsBefore).toBeGreaterThanOrEqual(teethOf.reduce((n, k) => n + k, 0));

      // The capture: per client port, its SYNs and the SYN-ACK that let it in.
      const syns = new Map<number, number[]>();
      const synAcks = new Map<number, number[]>();
      for (const line of dumped.split('\n')) {
        const m = /^(\d+\.\d+) IP 127\.0\.0\.1\.(\d+) > 127\.0\.0\.1\.(\d+): Flags \[(S|S\.)\]/.exec(line);
        if (!m) continue;
        const [t, from, to, flags] = [Number(m[1]) * 1000, Number(m[2]), Number(m[3]), m[4]];
        if (flags === 'S' && to === port) syns.set(from, [...(syns.get(from) ?? []), t]);
        if (flags === 'S.' && from === port) synAcks.set(to, [...(synAcks.get(to) ?? []), t]);
      }
      const gaps: number[] = [];
      const stamps: number[] = [];
      for (const [i, a] of r.arrivals.entries()) {
        const s = syns.get(a.port)!;
        // A client on tooth k sent k retransmissions: k + 1 SYNs in all.
        expect([a.port, s.length]).toEqual([a.port, teethOf[i]! + 1]);
        // The packets' stamps are the wall clock's; the client's times the monotonic clock's,
        // which here runs 0.5 % slower (the client measured the ratio over its run).
        const fromPackets = (synAcks.get(a.port)!.at(-1)! - s[0]!) / r.realPerMono;
        gaps.push(a.connectMs! - a.lateMs - fromPackets);
        // The client stamps its start just after connect() returned, the SYN sent in it.
        stamps.push(epochMs(r, a.at + a.lateMs) - s[0]!);
      }
      // The client's connect time, from its SYN, against the packets': each within the client's
      // own timing (the connect event's turn on its event loop, which the comb's teeth allow it:
      // 50 ms, or the longest its loop was held up in the run), and most within a fraction of a ms. Past that, the two clocks: the wall clock
      // ran 0.5 % off the monotonic one at times here, and the run's mean ratio corrects only a
      // steady rate: 0.5 % of the times compared is allowed on top (of 1–4 s durations; of up
      // to 5 s since the client's start for its stamps, read to 1 ms on the epoch).
      const median = (v: number[]) => [...v].sort((x, y) => x - y)[v.length >> 1]!;
      const slew = 0.005;
      expect(Math.max(...gaps.map(Math.abs), ...stamps.map(Math.abs))).toBeLessThan(clientSlackSec(r) * 1000);
      expect(Math.abs(median(gaps))).toBeLessThan(0.5 + slew * 4000);
      expect(Math.abs(median(stamps))).toBeLessThan(1 + slew * 5000);
    } finally {
      server.kill();
      dump.kill();
    }
  }, 30_000);
});
