// ss and nstat parsers: on output captured from the real tools on this machine
// (test/fixtures/observe, see capture.sh there), and live on a real listener.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { countStates, parseListeners, parseSockets, parseTimerTime } from '../../lab/observe/ss.js';
import { counterDeltas, nonZero, parseNstat, WATCHED } from '../../lab/observe/nstat.js';
import { createNetns } from '../helpers/netns.js';

const fixture = (f: string) => readFileSync(fileURLToPath(new URL(`../fixtures/observe/${f}`, import.meta.url)), 'utf8');

describe('ss timers', () => {
  it.each([
    ['1.840ms', 1.84],
    ['488ms', 0.488],
    ['58sec', 58],
    ['1min5sec', 65],
    ['2min', 120],
    ['12min', 720],
    ['5.001ms', 5.001],
    // An expired timer (a SYN-RECV request whose SYN-ACK retransmission is due): nothing, or negative.
    ['', 0],
    ['-1.200ms', -1.2],
  ])('%s is %f s', (s, v) => expect(parseTimerTime(s)).toBeCloseTo(v, 6));

  it('rejects what it does not know', () => {
    expect(() => parseTimerTime('soon')).toThrow('unrecognized ss timer value "soon"');
    expect(() => parseTimerTime('-')).toThrow();
  });
});

describe('captured output', () => {
  it('ss -ltn: the full listener shows Recv-Q = Send-Q + 1', () => {
    expect(parseListeners(fixture('ss-ltn.txt'))).toEqual([
      { local: '127.0.0.1', port: 7001, recvQ: 5, sendQ: 4 },
      { local: '127.0.0.1', port: 7002, recvQ: 0, sendQ: 128 },
    ]);
  });

  it('ss -tanoi: states, timers and retransmits', () => {
    const rows = parseSockets(fixture('ss-tanoi.txt'));
    const c = countStates(rows);
    expect(c.LISTEN).toBe(2);
    expect(c['SYN-SENT']).toBe(3); // 8 clients, 4 + 1 in the queue
    expect(c['TIME-WAIT']).toBe(3); // the server closed first: on port 7002's side
    for (const r of rows.filter((x) => x.state === 'TIME-WAIT')) {
      expect(r.local).toBe('127.0.0.1:7002');
      expect(r.timer).toEqual({ name: 'timewait', seconds: 58, count: 0 });
    }
    for (const r of rows.filter((x) => x.state === 'SYN-SENT')) {
      expect(r.timer).toEqual({ name: 'on', seconds: 0.488, count: 1 });
      expect(r.retrans).toBe(1);
    }
    // Client ends of the 5 queued connections + their server ends + the kept one, both ends.
    expect(c.ESTAB).toBe(12);
  });

  it('nstat -az: every line becomes a number', () => {
    const c = parseNstat(fixture('nstat-az.txt'));
    expect(Object.keys(c).length).toBeGreaterThan(100);
    for (const k of WATCHED) expect(c[k], k).toBeTypeOf('number');
    expect(c.TcpExtListenOverflows).toBeGreaterThan(0);
    expect(c.TcpExtTW).toBe(3);
  });

  it('deltas', () => {
    expect(counterDeltas({ a: 1, b: 5 }, { a: 4, b: 5, c: 2 })).toEqual({ a: 3, b: 0, c: 2 });
    expect(nonZero({ a: 0, b: 2 })).toEqual({ b: 2 });
    expect(() => parseNstat('TcpFoo notanumber 0.0')).toThrow('unrecognized nstat line');
  });
});

describe('live, on a real listener in a fresh namespace', () => {
  it('a paused listener with backlog 8 and 12 clients', () => {
    const ns = createNetns('observe');
    try {
      const probe = fileURLToPath(new URL('../helpers/observe-probe.mjs', import.meta.url));
      const dist = fileURLToPath(new URL('../../dist/native/index.js', import.meta.url));
      const r = JSON.parse(ns.exec(['node', probe, dist, '8', '12']));
      expect(parseListeners(r.ssLtn)).toEqual([{ local: '127.0.0.1', port: 7100, recvQ: 9, sendQ: 8 }]);
      const c = countStates(parseSockets(r.ssTanoi));
      expect(c['SYN-SENT']).toBe(3);
      expect(c.ESTAB).toBe(9 * 2);
      const d = counterDeltas(parseNstat(r.nstatBefore), parseNstat(r.nstatAfter));
      expect(d.TcpActiveOpens).toBe(12);
      expect(d.TcpPassiveOpens).toBe(9);
      // The SYNs of the 3 that did not fit were dropped, and retransmitted once.
      expect(d.TcpExtListenOverflows).toBeGreaterThanOrEqual(3);
      expect(d.TcpExtListenDrops).toBeGreaterThanOrEqual(3);
      expect(d.TcpExtTCPSynRetrans).toBeGreaterThanOrEqual(3);
    } finally {
      ns.remove();
    }
  });
});
