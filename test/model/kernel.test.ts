// The kernel model: its functions against the numbers the kernel showed (lab/model/observed.ts),
// and its timing rules measured again here, on the running kernel, in throw-away namespaces.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  acceptQueueLimit,
  deferAcceptTimeouts,
  deferredSynackAt,
  heldClientReset,
  orphanFinWait2Sec,
  portsRunOut,
  retransmitWindows,
  reuseConnections,
  synackTimeline,
  synQueueCap,
  synTimeline,
  timeWaitCap,
  TIME_WAIT_SEC,
} from '../../lab/model/kernel.js';
import { ACCEPT_QUEUE, HELD_RESET, ORPHAN_FIN_WAIT2, SYN_QUEUE, SYN_TIMELINE, SYNACK_EXPIRY, TIME_WAIT } from '../../lab/model/observed.js';
import { createNetns, type TestNetns } from '../helpers/netns.js';
import { kernelHz } from '../../lab/scenarios/common.js';

describe('the model against what the kernel showed', () => {
  it('every row was measured: it names the kernel and the date, and how', () => {
    for (const o of [...ACCEPT_QUEUE, ...SYN_QUEUE, ...SYN_TIMELINE, ...SYNACK_EXPIRY, ...HELD_RESET, ...TIME_WAIT, ...ORPHAN_FIN_WAIT2])
      expect(o.how, JSON.stringify(o.input)).toMatch(/^kernel 6\.\d+(\.\d+)?, \d{4}-\d{2}-\d{2}: \S/);
  });

  it.each(ACCEPT_QUEUE.map((o) => [o.input.backlog, o.input.somaxconn, o.observed] as const))(
    'listen(%i) under somaxconn %i: limit %i',
    (backlog, somaxconn, limit) => expect(acceptQueueLimit(backlog, somaxconn)).toBe(limit),
  );

  it.each(SYN_QUEUE.map((o) => [o.input, o.observed] as const))('SYN queue %j: %i in SYN-RECV', (i, n) =>
    expect(synQueueCap(i.limit, i.maxSynBacklog, i.syncookies)).toBe(n),
  );

  it.each(SYN_TIMELINE.map((o) => [o.input, o.observed] as const))('SYN retransmissions %j: %j', (i, seen) => {
    const m = synTimeline(i.synRetries, i.linearTimeouts);
    expect(m.timeoutAt).toBe(seen.timeoutAt);
    if (seen.retransmitsAt) expect(m.retransmitsAt.slice(0, seen.retransmitsAt.length)).toEqual(seen.retransmitsAt);
    expect(m.retransmitsAt).toHaveLength(seen.retransmissions);
  });

  it.each(SYNACK_EXPIRY.map((o) => [o.input.synackRetries, o.observed] as const))('SYN-ACK retries %i: the request expires %j', (r, seen) => {
    const t = synackTimeline(r).expiresAt;
    expect(t).toBeGreaterThan(seen.presentAt);
    expect(t).toBeLessThan(seen.goneBy);
  });

  it('the default SYN-ACK timeline: 1, 3, 7, 15, 31 s, expiry at 63 s', () =>
    expect(synackTimeline(5)).toEqual({ retransmitsAt: [1, 3, 7, 15, 31], expiresAt: 63 }));

  it.each(HELD_RESET.map((o) => [o.input.synackRetries, o.observed] as const))(
    'held clients with SYN-ACK retries %i were reset at %j s: inside the predicted window',
    (r, seen) => {
      // The handshakes began up to a second before the data (the queue was filled in between).
      const w = heldClientReset(r, 0.5);
      for (const s of seen) {
        expect(s).toBeGreaterThanOrEqual(w.from - 0.5);
        expect(s).toBeLessThanOrEqual(w.to);
      }
    },
  );

  it.each(TIME_WAIT.map((o) => [o.input, o.observed] as const))('TIME_WAIT %j: %j', (i, seen) => {
    // The runs had 2–4 connections in flight.
    const { reuses, capped } = portsRunOut({
      ports: i.ports,
      inFlight: 4,
      reuse: i.reuse,
      timestampsClient: i.timestamps,
      timestampsServer: 1,
      maxTwBuckets: i.maxTwBuckets,
    });
    expect(seen.eaddrnotavail).toBe(!capped);
    if (capped) {
      expect(timeWaitCap(typeof seen.connections === 'number' ? seen.connections : seen.connections.above, i.maxTwBuckets).timeWait).toBe(
        seen.timeWait,
      );
    } else if (reuses) {
      const w = reuseConnections(i.ports, i.durationMs, i.reuseDelayMs);
      expect(seen.connections).toBeGreaterThanOrEqual(w.from);
      expect(seen.connections).toBeLessThanOrEqual(w.to);
      // Whole rounds: each reuses every port once (the model allows a round either way).
      expect(Number(seen.connections) % i.ports).toBe(0);
    } else expect(seen.connections).toBe(i.ports);
  });

  it('TIME_WAIT is 60 s', () => expect(TIME_WAIT_SEC).toBe(60));

  // The kernel keeps TCP_DEFER_ACCEPT as a count of SYN-ACK timeouts and getsockopt gives back
  // their seconds: the model's count, as seconds, must be what the running kernel gives back.
  it("TCP_DEFER_ACCEPT as the kernel keeps it: each setting read back with getsockopt is the time of the deferral's last timeout", () => {
    const asked = [1, 2, 3, 4, 7, 8, 30, 31, 32, 100, 400];
    const r = spawnSync('python3', [
      '-c',
      `import socket\nfor v in ${JSON.stringify(asked)}:\n    s = socket.socket(); s.setsockopt(6, 9, v); print(s.getsockopt(6, 9)); s.close()`,
    ]);
    const kernel = r.stdout.toString().trim().split('\n').map(Number);
    expect(kernel).toHaveLength(asked.length);
    expect(asked.map((v) => deferredSynackAt(deferAcceptTimeouts(v)))).toEqual(kernel);
    expect(deferAcceptTimeouts(0)).toBe(0);
  });

  it.each(ORPHAN_FIN_WAIT2.map((o) => [o.input.finTimeoutSec, o.observed] as const))(
    'orphaned FIN-WAIT-2 with tcp_fin_timeout %i s: gone after %f s, inside the window',
    (fin, seen) => {
      const life = orphanFinWait2Sec(fin)!;
      expect(seen).toBeGreaterThanOrEqual(life - 0.5);
      expect(seen).toBeLessThanOrEqual(life + 2);
    },
  );
});

// Node in a namespace: a short script, its stdout.
function nodeIn(ns: TestNetns, script: string): ReturnType<typeof spawn> {
  return spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
}
const namespaces: TestNetns[] = [];
afterAll(() => namespaces.forEach((n) => n.remove()));
const netstat = (ns: TestNetns, name: string) => {
  const lines = ns.exec(['cat', '/proc/net/netstat']).split('\n');
  const i = lines.findIndex((l) => l.startsWith('TcpExt:') && l.includes(` ${name}`));
  const keys = lines[i]!.split(' ');
  return Number(lines[i + 1]!.split(' ')[keys.indexOf(name)]);
};

describe.concurrent('the timing rules on the running kernel', () => {
  it.each([
    [1, 0],
    [2, 1],
    // The retries bound the time: 2 retransmissions, not 1 + 4.
    [1, 4],
  ])(
    'tcp_syn_retries %i, tcp_syn_linear_timeouts %i: the SYN retransmissions and ETIMEDOUT come when the model says',
    async (retries, linear) => {
      const ns = createNetns('syn');
      namespaces.push(ns);
      ns.sysctl('net.ipv4.tcp_syn_retries', retries);
      ns.sysctl('net.ipv4.tcp_syn_linear_timeouts', linear);
      // Every SYN to port 7 is dropped: no SYN-ACK, no RST.
      ns.exec(
        ['nft', '-f', '-'],
        'table inet t {\n chain out {\n  type filter hook output priority 0;\n  tcp dport 7 tcp flags & (syn|ack) == syn drop\n }\n}\n',
      );
      const child = nodeIn(
        ns,
        `const t=Date.now();require('net').connect(7,'127.0.0.1').on('error',e=>{console.log(JSON.stringify({code:e.code,s:(Date.now()-t)/1000}))})`,
      );
      let out = '';
      child.stdout!.on('data', (b) => (out += b));
      await once(child, 'exit');
      const r = JSON.parse(out) as { code: string; s: number };
      const m = synTimeline(retries, linear);
      expect(r.code).toBe('ETIMEDOUT');
      expect(r.s).toBeGreaterThan(m.timeoutAt - 0.3);
      expect(r.s).toBeLessThan(m.timeoutAt + 0.8);
      expect(netstat(ns, 'TCPSynRetrans')).toBe(m.retransmitsAt.length);
    },
    20_000,
  );

  /**
   * The times (s after the first) of COUNT packets matching FILTER on the namespace's loopback,
   * stamped by the kernel as tcpdump captures them, while CLIENT (a Node script) runs there.
   */
  async function packetTimes(ns: TestNetns, filter: string, count: number, client: string): Promise<number[]> {
    const dump = spawn('ip', ['netns', 'exec', ns.name, 'tcpdump', '-i', 'lo', '-n', '-tt', '-l', '-c', String(count), filter], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    dump.stdout!.on('data', (b) => (out += b));
    dump.stderr!.on('data', (b) => (err += b));
    for (let i = 0; i < 100 && !/listening on lo/.test(err); i++) await new Promise((r) => setTimeout(r, 50));
    const proc = nodeIn(ns, client);
    try {
      await once(dump, 'exit');
    } finally {
      proc.kill();
    }
    const ts = out
      .split('\n')
      .filter(Boolean)
      .map((l) => Number(l.split(' ')[0]));
    expect(ts, err).toHaveLength(count);
    return ts.map((t) => Math.round((t - ts[0]!) * 1000) / 1000);
  }

  /** Each retransmission inside the model's window: never early, late by at most the timer wheel's lateness so far. */
  function expectInWindows(what: string, seen: number[], model: number[]): void {
    const windows = retransmitWindows(model, kernelHz().hz, { early: 0.001, late: 0.001 });
    seen.forEach((t, k) => {
      expect(t, `retransmission ${k + 1} at ${t} s: window ${windows[k]!.join('–')} s`).toBeGreaterThanOrEqual(windows[k]![0]);
      expect(t, `retransmission ${k + 1} at ${t} s: window ${windows[k]!.join('–')} s`).toBeLessThanOrEqual(windows[k]![1]);
    });
    process.stderr.write(
      `${seen.length} ${what} retransmissions at ${seen.join(', ')} s (model ${model.join(', ')}; windows up to ${windows.map((w) => w[1].toFixed(2)).join(', ')})\n`,
    );
  }

  // The packets' own times (tcpdump on the namespace's loopback, before the input hook drops
  // them): the model's window must hold each of 8 retransmissions, however late they run. Both
  // tests only wait on the kernel's timers, each in a namespace of its own: they run at once.
  it.concurrent(
    "8 SYN retransmissions (tcp_syn_retries 4, tcp_syn_linear_timeouts 4), from the packets: each inside the model's window, never early, late by at most the timer wheel's lateness so far",
    async () => {
      const ns = createNetns('syn8');
      namespaces.push(ns);
      ns.sysctl('net.ipv4.tcp_syn_retries', 4);
      ns.sysctl('net.ipv4.tcp_syn_linear_timeouts', 4);
      ns.exec(['nft', '-f', '-'], 'table inet t {\n chain in {\n  type filter hook input priority 0;\n  tcp dport 7 drop\n }\n}\n');
      const seen = await packetTimes(
        ns,
        'tcp dst port 7 and tcp[tcpflags] & tcp-syn != 0',
        9,
        `require('net').connect(7,'127.0.0.1').on('error',()=>{});setTimeout(()=>process.exit(0),25000)`,
      );
      const m = synTimeline(4, 4);
      expect(m.retransmitsAt).toEqual([1, 2, 3, 4, 5, 7, 11, 19]);
      expectInWindows('SYN', seen.slice(1), m.retransmitsAt);
    },
    30_000,
  );

  it.concurrent(
    "4 SYN-ACK retransmissions (tcp_synack_retries 4, the client's final ACK dropped), from the packets: each inside the model's window, never early, late by at most the timer wheel's lateness so far",
    async () => {
      const ns = createNetns('synack4');
      namespaces.push(ns);
      ns.sysctl('net.ipv4.tcp_synack_retries', 4);
      const server = nodeIn(ns, `require('net').createServer().listen(8,'127.0.0.1',()=>console.log('up'))`);
      await once(server.stdout!, 'data');
      // The client's final ACK (and all it sends after its SYN) is dropped: the request stays in the SYN queue.
      ns.exec(
        ['nft', '-f', '-'],
        'table inet t {\n chain out {\n  type filter hook output priority 0;\n  tcp dport 8 tcp flags & syn == 0 drop\n }\n}\n',
      );
      try {
        const seen = await packetTimes(
          ns,
          'tcp src port 8 and tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)',
          5,
          `require('net').connect(8,'127.0.0.1').on('error',()=>{});setTimeout(()=>process.exit(0),20000)`,
        );
        const m = synackTimeline(4);
        expect(m.retransmitsAt).toEqual([1, 3, 7, 15]);
        expectInWindows('SYN-ACK', seen.slice(1), m.retransmitsAt);
      } finally {
        server.kill();
      }
    },
    30_000,
  );

  it.each([1, 2])(
    'tcp_synack_retries %i: a request whose final ACK never comes leaves the SYN queue when the model says',
    async (retries) => {
      const ns = createNetns('synack');
      namespaces.push(ns);
      ns.sysctl('net.ipv4.tcp_synack_retries', retries);
      const server = nodeIn(ns, `require('net').createServer().listen(8,'127.0.0.1',()=>console.log('up'))`);
      await once(server.stdout!, 'data');
      try {
        // The client's final ACK (and all it sends after its SYN) is dropped: it thinks it is connected.
        ns.exec(
          ['nft', '-f', '-'],
          'table inet t {\n chain out {\n  type filter hook output priority 0;\n  tcp dport 8 tcp flags & syn == 0 drop\n }\n}\n',
        );
        const client = nodeIn(ns, `require('net').connect(8,'127.0.0.1').on('connect',()=>console.log('connected'));setTimeout(()=>{},15000)`);
        await once(client.stdout!, 'data');
        const t0 = Date.now();
        const expiry = synackTimeline(retries).expiresAt;
        const synRecv = () => ns.exec(['ss', '-Htn', 'state', 'syn-recv']).split('\n').filter(Boolean).length;
        await new Promise((r) => setTimeout(r, (expiry - 0.5) * 1000 - (Date.now() - t0)));
        expect(synRecv()).toBe(1);
        await new Promise((r) => setTimeout(r, (expiry + 0.5) * 1000 - (Date.now() - t0)));
        expect(synRecv()).toBe(0);
        expect(netstat(ns, 'TCPSynRetrans')).toBe(synackTimeline(retries).retransmitsAt.length);
        client.kill();
      } finally {
        server.kill();
      }
    },
    20_000,
  );
});
