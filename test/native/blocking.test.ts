// The blocking designs (native/src/blocking.h) as the textbook describes them, on real
// sockets: who gets served, who waits in the accept queue (read from the kernel over
// sock_diag), how many threads run, how waiters sharing one port wake, and that pause,
// the idle timeout and close() work with threads blocked in accept() and read().
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Socket } from 'node:net';
import { Server, sockDiag, type ServerOptions } from '../../native/index.js';
import { exchange, GET, open, parseResponses, request } from '../helpers/http.js';

const CLOSE = 'GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n';

const threadsNow = () => Number(/^Threads:\s*(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
const queued = (port: number) => sockDiag(false).listeners.filter((l) => l.port === port);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for condition');
    await sleep(10);
  }
}
/** Whether a request on this connection is answered within ms. */
function answered(sock: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      sock.removeAllListeners('data');
      resolve(false);
    }, ms);
    sock.once('data', () => {
      clearTimeout(t);
      resolve(true);
    });
    sock.write(GET);
  });
}
async function withServer<T>(o: ServerOptions, fn: (s: Server, port: number) => Promise<T>): Promise<T> {
  const s = new Server({ host: '127.0.0.1', port: 0, backlog: 128, ...o });
  const { port } = await s.listen();
  try {
    return await fn(s, port);
  } finally {
    await s.close();
  }
}

describe('who is served, who waits', () => {
  it('iterative, 5 keep-alive clients: one is served, the other 4 wait in the accept queue until it leaves', async () => {
    await withServer({ model: 'iterative' }, async (s, port) => {
      const socks: Socket[] = [];
      for (let i = 0; i < 5; i++) socks.push(await open(port));
      expect(await answered(socks[0]!, 1000)).toBe(true);
      expect(await answered(socks[1]!, 300)).toBe(false);
      expect(queued(port).map((l) => l.recvQ)).toEqual([4]);
      expect(s.stats().total.accepted).toBe(1);
      socks[0]!.destroy();
      // The next one in the queue is accepted and its pending request answered.
      await waitFor(() => s.stats().total.accepted === 2);
      await waitFor(() => s.stats().total.requests === 2);
      expect(queued(port).map((l) => l.recvQ)).toEqual([3]);
      for (const x of socks) x.destroy();
    });
  });

  it('prethread ×3, 5 keep-alive clients: 3 are served, 2 wait in the accept queue, and a new client waits too', async () => {
    await withServer({ model: 'prethread', threads: 3 }, async (s, port) => {
      const socks: Socket[] = [];
      for (let i = 0; i < 5; i++) socks.push(await open(port));
      await waitFor(() => s.stats().total.accepted === 3);
      const served = await Promise.all(socks.map((x) => answered(x, 500)));
      expect(served.filter(Boolean)).toHaveLength(3);
      expect(queued(port).map((l) => l.recvQ)).toEqual([2]);
      const late = await open(port);
      expect(await answered(late, 300)).toBe(false);
      expect(queued(port).map((l) => l.recvQ)).toEqual([3]);
      // Each waiter holds one connection.
      expect(s.stats().perThread.map((t) => t.active)).toEqual([1, 1, 1]);
      for (const x of [...socks, late]) x.destroy();
    });
  });

  it('prefork ×3, 5 keep-alive clients: 3 child processes serve 3, 2 wait in the accept queue; close() kills and reaps the children', async () => {
    const s = new Server({ host: '127.0.0.1', port: 0, backlog: 128, model: 'prefork', threads: 3 });
    const { port } = await s.listen();
    await waitFor(() => s.stats().perThread.every((t) => t.tid > 0));
    const pids = s.stats().perThread.map((t) => t.tid);
    const socks: Socket[] = [];
    try {
      // Each waiter is a process of its own (its pid as the tid), a child of this one.
      expect(new Set(pids).size).toBe(3);
      for (const pid of pids) {
        expect(pid).not.toBe(process.pid);
        expect(Number(/^PPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1])).toBe(process.pid);
      }
      for (let i = 0; i < 5; i++) socks.push(await open(port));
      await waitFor(() => s.stats().total.accepted === 3);
      const served = await Promise.all(socks.map((x) => answered(x, 500)));
      expect(served.filter(Boolean)).toHaveLength(3);
      expect(queued(port).map((l) => l.recvQ)).toEqual([2]);
      // Their counters reach this process through the shared mapping.
      expect(s.stats().perThread.map((t) => t.active)).toEqual([1, 1, 1]);
    } finally {
      for (const x of socks) x.destroy();
      await s.close();
    }
    for (const pid of pids) expect(existsSync(`/proc/${pid}`), `child ${pid} reaped`).toBe(false);
    // The counters stay readable after close() (the two queued clients were taken as the first ones left).
    expect(s.stats().total.accepted).toBeGreaterThanOrEqual(3);
  });

  it('fork per connection: 30 open connections are 30 child processes, each with only its connection open; each leaves, reaped, when its client closes; close() kills and reaps the rest', async () => {
    const kids = () =>
      readFileSync(`/proc/self/task/${s.stats().perThread[0]!.tid}/children`, 'utf8')
        .split(' ')
        .filter((x) => x.trim())
        .map(Number);
    const s = new Server({ host: '127.0.0.1', port: 0, backlog: 128, model: 'fork' });
    const { port } = await s.listen();
    const socks = await Promise.all(Array.from({ length: 30 }, () => open(port)));
    let pids: number[] = [];
    try {
      for (const x of socks) await request(x);
      const st = s.stats().total;
      expect(st.connThreadsSpawned).toBe(30);
      expect(st.connThreadsLive).toBe(30);
      expect(st.active).toBe(30);
      pids = kids();
      expect(pids).toHaveLength(30);
      // A child holds its one connection (and 0-2): not the listener, not this process's sockets.
      const fds = readdirSync(`/proc/${pids[0]}/fd`).filter((fd) => Number(fd) > 2);
      expect(fds).toHaveLength(1);
      expect(readlinkSync(`/proc/${pids[0]}/fd/${fds[0]}`)).toMatch(/^socket:/);
      // Ten clients leave: their processes exit and are reaped (no zombie), within the 100 ms tick.
      for (const x of socks.slice(0, 10)) x.destroy();
      await waitFor(() => s.stats().total.connThreadsLive === 20);
      await waitFor(() => kids().length === 20, 2000);
      for (const pid of pids.filter((p) => !kids().includes(p))) expect(existsSync(`/proc/${pid}`), `child ${pid} reaped`).toBe(false);
      expect(s.stats().total.closed).toBe(10);
    } finally {
      await s.close();
      for (const x of socks) x.destroy();
    }
    for (const pid of pids) expect(existsSync(`/proc/${pid}`), `child ${pid} reaped`).toBe(false);
    expect(s.stats().total.connThreadsLive).toBe(0);
    expect(s.stats().total.requests).toBe(30);
  });

  it('reactor-procs ×3: three child processes, each with its own SO_REUSEPORT listener and loop, serve 60 connections between them; pause() stops all three accepting', async () => {
    const s = new Server({ host: '127.0.0.1', port: 0, backlog: 128, model: 'reactor-procs', threads: 3 });
    const { port } = await s.listen();
    try {
      await waitFor(() => s.stats().perThread.every((t) => t.tid > 0));
      const pids = s.stats().perThread.map((t) => t.tid);
      for (const pid of pids) expect(Number(/^PPid:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1])).toBe(process.pid);
      expect(queued(port)).toHaveLength(3);
      for (let i = 0; i < 60; i++) expect(parseResponses((await exchange(port, [CLOSE])).data)[0]?.status).toBe(200);
      const per = s.stats().perThread.map((t) => t.requests);
      expect(per.reduce((a, b) => a + b, 0)).toBe(60);
      for (const n of per) expect(n).toBeGreaterThan(0); // the hash spreads them
      // pause(): the controls live in memory the children share, and their eventfds wake them.
      s.pause();
      await sleep(50);
      const held = await Promise.all(Array.from({ length: 12 }, () => open(port)));
      await sleep(100);
      expect(queued(port).reduce((a, l) => a + l.recvQ, 0)).toBe(12);
      expect(s.stats().total.accepted).toBe(60);
      s.resume();
      await waitFor(() => s.stats().total.accepted === 72);
      for (const x of held) x.destroy();
    } finally {
      await s.close();
    }
    for (const t of s.stats().perThread) expect(existsSync(`/proc/${t.tid}`), `child ${t.tid} reaped`).toBe(false);
  });

  it('thread per connection: 50 open connections hold 50 threads; closing them ends the threads', async () => {
    await withServer({ model: 'thread' }, async (s, port) => {
      const before = threadsNow();
      const socks = await Promise.all(Array.from({ length: 50 }, () => open(port)));
      for (const x of socks) await request(x);
      const st = s.stats().total;
      expect(st.connThreadsLive).toBe(50);
      expect(st.connThreadsSpawned).toBe(50);
      expect(threadsNow() - before).toBe(50);
      for (const x of socks) x.destroy();
      await waitFor(() => s.stats().total.connThreadsLive === 0);
      await waitFor(() => threadsNow() === before);
      expect(s.stats().total.closed).toBe(50);
      expect(s.stats().total.requests).toBe(50);
    });
  });
});

describe('waiters sharing one port (prethread ×4, 200 connections one after another)', () => {
  const N = 4;
  const CONNS = 200;
  const switches = (tid: number) => Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(readFileSync(`/proc/self/task/${tid}/status`, 'utf8'))![1]);
  type Share = 'accept' | 'epoll' | 'exclusive' | 'reuseport';
  /**
   * Per share: connections per waiter, futile accepts, wake-ups and the waiters' context
   * switches per connection. Measured once per share, by whichever test asks first: each
   * test runs alone too (the herd test measures the four itself when run by itself).
   */
  interface Seen {
    perWaiter: number[];
    futile: number;
    wakeups: number;
    switchesPerConn: number;
    queues: number;
  }
  const measured = new Map<Share, Promise<Seen>>();
  const measure = (share: Share): Promise<Seen> => {
    let m = measured.get(share);
    if (!m) {
      m = withServer({ model: 'prethread', threads: N, share }, async (s, port) => {
        await waitFor(() => s.stats().perThread.every((t) => t.tid > 0));
        await sleep(50); // every waiter asleep in its wait
        const tids = s.stats().perThread.map((t) => t.tid);
        const before = tids.map(switches);
        // One at a time, so that every waiter is idle when each connection arrives.
        for (let i = 0; i < CONNS; i++) {
          const r = await exchange(port, [CLOSE], { timeoutMs: 5000 });
          expect(parseResponses(r.data)).toHaveLength(1);
        }
        await waitFor(() => s.stats().total.closed === CONNS);
        const st = s.stats();
        const sw = tids.map((t, i) => switches(t) - before[i]!).reduce((x, y) => x + y, 0);
        return {
          perWaiter: st.perThread.map((t) => t.accepted),
          futile: st.total.futileWakeups,
          wakeups: st.total.wakeups,
          switchesPerConn: sw / CONNS,
          queues: queued(port).length,
        };
      });
      measured.set(share, m);
    }
    return m;
  };

  it.each(['accept', 'epoll', 'exclusive', 'reuseport'] as const)('share %s', async (share) => {
    const m = await measure(share);
    expect(m.perWaiter.reduce((a, b) => a + b, 0)).toBe(CONNS);
    expect(m.wakeups).toBe(CONNS + m.futile);
    // A blocked accept() is woken for one connection only; reuseport's waiters each have their own queue.
    if (share === 'accept' || share === 'reuseport') expect(m.futile).toBe(0);
    if (share === 'reuseport') {
      // The kernel spreads connections by hash: every waiter gets some.
      for (const a of m.perWaiter) expect(a).toBeGreaterThan(10);
      expect(m.queues).toBe(N);
    } else {
      expect(m.queues).toBe(1);
    }
  });

  it('the herd: shared level-triggered epoll wakes every idle waiter for each connection, EPOLLEXCLUSIVE and accept() one', async () => {
    // Waking a waiter whose epoll finds nothing ready sends it back to sleep inside the
    // kernel, so userspace sees few futile accepts; the waiters' context switches show the
    // herd: about N − 1 more per connection than one wake-up.
    // One share at a time: each measurement wants the machine to itself.
    const seen = { accept: await measure('accept'), epoll: await measure('epoll'), exclusive: await measure('exclusive'), reuseport: await measure('reuseport') };
    const base = seen.accept.switchesPerConn;
    expect(seen.epoll.switchesPerConn - base, JSON.stringify(seen)).toBeGreaterThan((N - 1) / 2);
    expect(seen.exclusive.switchesPerConn - base, JSON.stringify(seen)).toBeLessThan(1);
    expect(seen.reuseport.switchesPerConn - base, JSON.stringify(seen)).toBeLessThan(1);
    // With EPOLLEXCLUSIVE the kernel tries the waiters in the order they registered and wakes
    // the first idle one: with connections one at a time, one waiter takes most.
    expect(Math.max(...seen.exclusive.perWaiter), JSON.stringify(seen)).toBeGreaterThan(CONNS / 2);
  });
});

describe('control with threads blocked in accept() and read()', () => {
  it.each([
    ['iterative', { model: 'iterative' }],
    ['thread', { model: 'thread' }],
    ['prethread ×2, accept', { model: 'prethread', threads: 2 }],
    ['prethread ×2, epoll', { model: 'prethread', threads: 2, share: 'epoll' }],
  ] as Array<[string, ServerOptions]>)('%s: pause() leaves new connections in the queue, resume() serves them', async (_n, o) => {
    await withServer(o, async (s, port) => {
      s.pause();
      const socks = await Promise.all(Array.from({ length: 3 }, () => open(port)));
      await sleep(200);
      expect(s.stats().total.accepted).toBe(0);
      expect(queued(port).map((l) => l.recvQ)).toEqual([3]);
      s.resume();
      await waitFor(() => s.stats().total.accepted >= 1);
      expect(await answered(socks[0]!, 2000)).toBe(true);
      for (const x of socks) x.destroy();
    });
  });

  it('the idle timeout closes a keep-alive connection that holds a thread', async () => {
    await withServer({ model: 'prethread', threads: 2, idleTimeoutMs: 300 }, async (s, port) => {
      const sock = await open(port);
      await request(sock);
      const t0 = Date.now();
      await new Promise((r) => sock.once('close', r));
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
      expect(Date.now() - t0).toBeLessThan(2000);
      await waitFor(() => s.stats().total.idleTimeouts === 1);
    });
  });

  it.each(['iterative', 'thread', 'prethread', 'prefork'] as const)(
    '%s: after a whole request the idle timeout (800 ms) applies, not the header deadline (200 ms)',
    async (model) => {
      await withServer({ model, threads: model.startsWith('pre') ? 2 : 1, headerTimeoutMs: 200, idleTimeoutMs: 800 }, async (s, port) => {
        const sock = await open(port);
        await request(sock);
        const t0 = Date.now();
        await new Promise((r) => sock.once('close', r));
        expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
        expect(s.stats().total.headerTimeouts).toBe(0);
      });
    },
  );

  it('close() with 100 idle keep-alive connections on thread-per-connection returns at once and ends every thread', async () => {
    const before = threadsNow();
    const s = new Server({ host: '127.0.0.1', port: 0, model: 'thread', backlog: 256 });
    const { port } = await s.listen();
    const socks = await Promise.all(Array.from({ length: 100 }, () => open(port)));
    for (const x of socks) await request(x);
    const t0 = Date.now();
    await s.close();
    expect(Date.now() - t0).toBeLessThan(2000);
    await waitFor(() => threadsNow() <= before);
    for (const x of socks) x.destroy();
  });

  it('threads must be 1 for iterative and thread', () => {
    expect(() => new Server({ model: 'iterative', threads: 2 })).toThrow(
      'option `threads` must be 1 for model "iterative" (use "prethread" for a pool of N), got 2',
    );
    expect(() => new Server({ model: 'thread', threads: 3 })).toThrow('option `threads` must be 1 for model "thread"');
    expect(() => new Server({ model: 'prefork', threads: 2, share: 'epoll' })).toThrow(
      'option `share` must be "accept" or "reuseport" for model "prefork" (forked children would share one epoll instance), got "epoll"',
    );
    expect(() => new Server({ model: 'prethread', threads: 2, share: 'herd' as never })).toThrow(
      'option `share` must be one of "accept", "epoll", "exclusive", "reuseport", got "herd"',
    );
  });
});
