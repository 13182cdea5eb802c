// How the lab tells the backlog a server passed to listen(), on real listeners of this process
// (loopback) and the kernel's own ss: Send-Q alone is exact only below somaxconn; the listen()
// syscall, seen by bpftrace, is exact always. The expected Send-Q values are the kernel's rule
// (min(backlog, somaxconn), a negative backlog taken as somaxconn), read back with ss.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { listenOf } from '../../lab/pipeline/listen.js';
import { deferOf, ListenWatchPool, parseWatch, watchListenCalls } from '../../lab/observe/listen-calls.js';
import { parseListeners } from '../../lab/observe/ss.js';
import { tracerUnavailable } from '../../lab/observe/tracer.js';

const SOMAXCONN = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function listen(backlog: number, port = 0): Promise<number> {
  const s = createServer();
  servers.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen({ port, host: '127.0.0.1', backlog }, resolve);
  });
  return (s.address() as { port: number }).port;
}

const ss = async () => parseListeners((await execa('ss', ['-ltn'])).stdout);

describe('the backlog a server passed to listen()', () => {
  it('from Send-Q alone: exact below somaxconn; at somaxconn only "at least", and whether it was the lab\'s is not known unless the lab asked for less', async () => {
    const small = await listen(7);
    const big = await listen(SOMAXCONN * 4);
    const l = await ss();
    expect(listenOf(l, small, '127.0.0.1', SOMAXCONN, 7)).toMatchObject({
      method: 'ss Send-Q',
      limit: 7,
      backlog: { value: 7, exact: true },
      honoured: true,
    });
    expect(listenOf(l, small, '127.0.0.1', SOMAXCONN, 16)).toMatchObject({ limit: 7, asked: 16, honoured: false });
    // Capped: the server's backlog and a lab's as big give the same Send-Q.
    expect(listenOf(l, big, '127.0.0.1', SOMAXCONN, SOMAXCONN * 2)).toMatchObject({
      limit: SOMAXCONN,
      backlog: { value: SOMAXCONN, exact: false },
      asked: SOMAXCONN,
      honoured: null,
    });
    expect(listenOf(l, big, '127.0.0.1', SOMAXCONN, 100)).toMatchObject({ limit: SOMAXCONN, asked: 100, honoured: false });
    expect(listenOf(l, 1, '127.0.0.1', SOMAXCONN, 100)).toMatchObject({ limit: null, backlog: null, honoured: null });
  });

  it('an SO_REUSEPORT group: its sockets on the reached address counted (each has its own queue), an IPv6 listener on the port not among them', async () => {
    // Python opens two IPv4 listeners with SO_REUSEPORT on one port and one IPv6 listener beside them.
    const py = execa('python3', [
      '-c',
      [
        'import socket, sys, time',
        'def l(fam, addr, port):',
        '    s = socket.socket(fam); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)',
        '    if fam == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)',
        '    s.bind((addr, port)); s.listen(9); return s',
        'a = l(socket.AF_INET, "127.0.0.1", 0); port = a.getsockname()[1]',
        'b = l(socket.AF_INET, "127.0.0.1", port); c = l(socket.AF_INET6, "::1", port)',
        'print(port, flush=True); time.sleep(30)',
      ].join('\n'),
    ]);
    try {
      const port = await new Promise<number>((resolve) => py.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
      const l = listenOf(await ss(), port, '127.0.0.1', SOMAXCONN, 9);
      expect(l).toMatchObject({ limit: 9, group: 2, honoured: true });
      expect(l.sockets).toHaveLength(3);
    } finally {
      py.kill();
      await py.catch(() => {});
    }
  });

  it("from the listen() syscall (bpftrace): what was passed, a negative backlog and one above somaxconn included, in the caller's network namespace", async (t) => {
    const why = await tracerUnavailable();
    if (why) t.skip(why);
    // A port the kernel gives now (then free again), so the watch is on a port nothing else uses.
    const port = await listen(1);
    for (const srv of servers.splice(0)) await new Promise((r) => srv.close(r));
    const w = await watchListenCalls(port, join(mkdtempSync(join(tmpdir(), 'tcplab-listen-')), 'listen-calls.trace'));
    if (!('stop' in w)) throw new Error(w.unavailable);
    const sendQ: number[] = [];
    for (const backlog of [-1, SOMAXCONN + 1]) {
      await listen(backlog, port);
      sendQ.push((await ss()).find((l) => l.port === port)!.sendQ);
      for (const srv of servers.splice(0)) await new Promise((r) => srv.close(r));
    }
    const { listens: calls } = await w.stop();
    const netns = Number(/\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/net'))![1]);
    expect(sendQ).toEqual([SOMAXCONN, SOMAXCONN]);
    expect(calls.map((c) => [c.pid, c.backlog, c.netns])).toEqual([
      [process.pid, -1, netns],
      [process.pid, SOMAXCONN + 1, netns],
    ]);
    // TCP_DEFER_ACCEPT (Node cannot set it: Python does): set before bind(), when the socket has no
    // port yet, and after listen(); a socket that never listens sets one too. The listener's is
    // the last set on its own socket.
    // Watched as a sweep watches: one bpftrace for its points, each point the calls from its start on.
    const dir = mkdtempSync(join(tmpdir(), 'tcplab-listen-'));
    const pool = new ListenWatchPool(dir);
    try {
      const w2 = await pool.begin(port, join(dir, 'a.trace'));
      if (!('stop' in w2)) throw new Error(w2.unavailable);
      await execa('python3', [
        '-c',
        `import socket; o = socket.socket(); o.setsockopt(6, 9, 99); s = socket.socket(); s.setsockopt(6, 9, 5); s.bind(('127.0.0.1', ${port})); s.listen(3); s.setsockopt(6, 9, 7); o.setsockopt(6, 9, 98)`,
      ]);
      const seen = await w2.stop((c) => c.length > 0);
      expect(seen.listens.map((c) => c.backlog)).toEqual([3]);
      expect(seen.defers.filter((d) => d.pid === seen.listens[0]!.pid).map((d) => [d.seconds, d.netns])).toEqual([
        [99, netns],
        [5, netns],
        [7, netns],
        [98, netns],
      ]);
      expect(deferOf(seen.listens, seen.defers)).toBe(7);
      // The next point's view of the same watch: only what was called after it began; the first's slice in its own log.
      const w3 = await pool.begin(port, join(dir, 'b.trace'));
      if (!('stop' in w3)) throw new Error(w3.unavailable);
      await execa('python3', ['-c', `import socket; s = socket.socket(); s.bind(('127.0.0.1', ${port})); s.listen(4)`]);
      const next = await w3.stop((c) => c.length > 0);
      expect([next.listens.map((c) => c.backlog), next.defers]).toEqual([[4], []]);
      expect(parseWatch(readFileSync(join(dir, 'a.trace'), 'utf8')).listens.map((c) => c.backlog)).toEqual([3]);
    } finally {
      await pool.close();
    }
    await listen(SOMAXCONN + 1, port);
    const rec = listenOf(await ss(), port, '127.0.0.1', SOMAXCONN, SOMAXCONN * 2, {
      method: 'listen() syscall',
      backlogs: calls.map((c) => c.backlog),
    });
    // Send-Q alone could not tell SOMAXCONN + 1 from the lab's SOMAXCONN * 2: the syscall can.
    expect(rec).toMatchObject({ method: 'listen() syscall', limit: SOMAXCONN, backlog: { value: SOMAXCONN + 1, exact: true }, honoured: false });
  });
});
