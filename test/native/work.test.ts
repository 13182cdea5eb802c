// Simulated work per request (workUs, work): done by the thread that answers, before it
// answers. On a single loop, concurrent requests' work is serial; a worker pool does it in
// parallel (which is why the pool exists); CPU work costs the process that CPU time.
import { describe, expect, it } from 'vitest';
import { Server, type ServerOptions } from '../../native/index.js';
import { exchange, parseResponses } from '../helpers/http.js';

const CLOSE = 'GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n';

/** 8 requests at once, each on its own connection; ms until all are answered. */
async function eightAtOnce(o: ServerOptions): Promise<{ ms: number; cpuMs: number; workUs: number }> {
  const s = new Server({ host: '127.0.0.1', port: 0, ...o });
  const { port } = await s.listen();
  try {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await Promise.all(Array.from({ length: 8 }, () => exchange(port, [CLOSE], { timeoutMs: 5000 })));
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    expect(r.map((x) => parseResponses(x.data).map((y) => y.status))).toEqual(r.map(() => [200]));
    return { ms, cpuMs: (c.user + c.system) / 1000, workUs: s.stats().workUs };
  } finally {
    await s.close();
  }
}

describe('work per request', () => {
  it('single loop, 5 ms of sleep each: 8 concurrent requests take at least 8 × 5 ms (the loop does nothing else meanwhile)', async () => {
    const r = await eightAtOnce({ workUs: 5000, work: 'sleep' });
    expect(r.workUs).toBe(5000);
    expect(r.ms).toBeGreaterThanOrEqual(40);
  });

  it('workers × 4, the same work: done 4 at a time, so well under 8 × 5 ms', async () => {
    const r = await eightAtOnce({ model: 'workers', threads: 4, workUs: 5000, work: 'sleep' });
    expect(r.ms).toBeGreaterThanOrEqual(10);
    expect(r.ms).toBeLessThan(35);
  });

  it('prethread × 4: likewise, each waiter works on the connection it took', async () => {
    const r = await eightAtOnce({ model: 'prethread', threads: 4, workUs: 5000, work: 'sleep' });
    expect(r.ms).toBeGreaterThanOrEqual(10);
    expect(r.ms).toBeLessThan(35);
  });

  it('cpu work costs CPU time: 8 requests × 5 ms of spin is at least 40 ms of this process CPU', async () => {
    const r = await eightAtOnce({ workUs: 5000, work: 'cpu' });
    expect(r.cpuMs).toBeGreaterThanOrEqual(40);
  });

  it('the options are checked', () => {
    expect(() => new Server({ workUs: 1_000_001 })).toThrow('option `workUs` must be an integer from 0 to 1000000, got 1000001');
    expect(() => new Server({ work: 'spin' as never })).toThrow('option `work` must be one of "cpu", "sleep", got "spin"');
  });
});
