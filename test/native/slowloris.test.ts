// Slow clients: a head or a body sent a byte at a time meets its deadline (408, then a
// close); the idle timer does not restart while a request is incomplete; a connection
// over the cap is closed at once. Real sockets on loopback, bounded in time.
import { describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { Server } from '../../native/index.js';
import { open, parseResponses } from '../helpers/http.js';
import { DESIGNS } from '../helpers/server.js';
import { describeUring } from '../helpers/uring.js';

interface Trickle {
  /** ms from the first byte to the server's close; null if it never closed. */
  closedAfterMs: number | null;
  data: Buffer;
  sent: number;
}

/** Sends `prefix` at once, then `text` one byte every `gapMs`, until the server closes or `maxMs` passes. */
function trickle(port: number, prefix: string, text: string, gapMs: number, maxMs: number): Promise<Trickle> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    let sent = 0;
    let t0 = 0;
    let timer: NodeJS.Timeout | undefined;
    const done = (closed: boolean) => {
      clearInterval(timer);
      clearTimeout(stop);
      s.destroy();
      resolve({ closedAfterMs: closed ? Date.now() - t0 : null, data: Buffer.concat(got), sent });
    };
    const stop = setTimeout(() => done(false), maxMs);
    s.on('data', (b) => got.push(b));
    s.on('end', () => done(true));
    s.on('error', () => done(true));
    s.on('connect', () => {
      t0 = Date.now();
      if (prefix) s.write(prefix);
      timer = setInterval(() => {
        if (sent < text.length && s.writable) s.write(text[sent++]!);
      }, gapMs);
    });
  });
}

const HEAD = 'GET / HTTP/1.1\r\nHost: lab\r\nX-Slow: ' + 'x'.repeat(200) + '\r\n\r\n';

// Every design's cases at once: they wait on the deadlines, not the CPU.
for (const [name, design] of DESIGNS) describeUring(design.io === 'io_uring').concurrent(`slowloris (${name})`, () => {
    it('a head sent a byte every 50 ms: 408 once the header deadline (400 ms) has passed, then a close', async () => {
      const s = new Server({ host: '127.0.0.1', ...design, headerTimeoutMs: 400, idleTimeoutMs: 60_000 });
      const { port } = await s.listen();
      const r = await trickle(port, '', HEAD, 50, 5000);
      expect(r.closedAfterMs).not.toBeNull();
      expect(r.closedAfterMs!).toBeGreaterThanOrEqual(400);
      expect(r.closedAfterMs!).toBeLessThan(1500);
      expect(parseResponses(r.data).map((x) => x.status)).toEqual([408]);
      expect(s.stats().total).toMatchObject({ headerTimeouts: 1, bodyTimeouts: 0, requests: 0 });
      await s.close();
    });

    it('a body sent a byte every 50 ms: 408 once the body deadline (400 ms) has passed', async () => {
      const s = new Server({ host: '127.0.0.1', ...design, bodyTimeoutMs: 400, idleTimeoutMs: 60_000 });
      const { port } = await s.listen();
      const r = await trickle(port, 'POST / HTTP/1.1\r\nHost: lab\r\nContent-Length: 200\r\n\r\n', 'b'.repeat(200), 50, 5000);
      expect(r.closedAfterMs).not.toBeNull();
      expect(r.closedAfterMs!).toBeLessThan(1500);
      expect(parseResponses(r.data).map((x) => x.status)).toEqual([408]);
      expect(s.stats().total).toMatchObject({ headerTimeouts: 0, bodyTimeouts: 1 });
      await s.close();
    });

    it('with no header deadline, the idle timer (400 ms) still ends a request that trickles in: it does not restart on every byte', async () => {
      const s = new Server({ host: '127.0.0.1', ...design, headerTimeoutMs: 0, idleTimeoutMs: 400 });
      const { port } = await s.listen();
      const r = await trickle(port, '', HEAD, 50, 5000);
      expect(r.closedAfterMs).not.toBeNull();
      expect(r.closedAfterMs!).toBeLessThan(1500);
      expect(r.sent).toBeLessThan(HEAD.length);
      expect(s.stats().total.idleTimeouts).toBe(1);
      await s.close();
    });

    it('a client that keeps its requests whole is not cut off by the deadlines', async () => {
      const s = new Server({ host: '127.0.0.1', ...design, headerTimeoutMs: 200, idleTimeoutMs: 400 });
      const { port } = await s.listen();
      const sock = await open(port);
      let got = '';
      sock.on('data', (b) => (got += b.toString('latin1')));
      for (let i = 0; i < 8; i++) {
        sock.write('GET / HTTP/1.1\r\nHost: lab\r\n\r\n');
        await new Promise((r) => setTimeout(r, 150));
      }
      expect(got.match(/HTTP\/1\.1 200 OK/g)?.length).toBe(8);
      expect(sock.destroyed).toBe(false);
      sock.destroy();
      await s.close();
    });
});

describe('slowloris', () => {
  it('maxConnections 5: connections over the cap are closed at once; after some close, new ones are taken', async () => {
    const s = new Server({ host: '127.0.0.1', maxConnections: 5 });
    const { port } = await s.listen();
    const socks = await Promise.all(Array.from({ length: 8 }, () => open(port)));
    const ended = socks.map((x) => new Promise<boolean>((r) => (x.once('end', () => r(true)), x.once('close', () => r(true)), setTimeout(() => r(false), 1000))));
    const closed = (await Promise.all(ended)).filter(Boolean).length;
    expect(closed).toBe(3);
    expect(s.stats().total).toMatchObject({ overCap: 3, active: 5 });
    for (const x of socks) x.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const again = await open(port);
    again.write('GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n');
    const answer = await new Promise<string>((r) => {
      let t = '';
      again.on('data', (b) => (t += b));
      again.on('end', () => r(t));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK/);
    await s.close();
  });

  it('the options are range-checked', () => {
    expect(() => new Server({ headerTimeoutMs: -1 })).toThrow(/option `headerTimeoutMs` must be an integer from 0 to 86400000, got -1/);
    expect(() => new Server({ maxConnections: 1.5 })).toThrow(/option `maxConnections` must be an integer from 0 to 10000000/);
  });
});

describe('Expect: 100-continue', () => {
  it('the server answers 100 Continue after the head, then 200 once the body is in', async () => {
    const s = new Server({ host: '127.0.0.1' });
    const { port } = await s.listen();
    const sock = await open(port);
    let got = '';
    const seen = (text: string) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no ${JSON.stringify(text)} in ${JSON.stringify(got)}`)), 3000);
        const check = () => got.includes(text) && (clearTimeout(t), resolve());
        sock.on('data', (b) => {
          got += b.toString('latin1');
          check();
        });
        check();
      });
    sock.write('POST / HTTP/1.1\r\nHost: lab\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
    await seen('HTTP/1.1 100 Continue\r\n\r\n');
    expect(got).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    sock.write('hello');
    await seen('hello\n');
    expect(got).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    sock.destroy();
    // Without a body there is nothing to continue: no 100.
    const plain = await open(port);
    let p = '';
    plain.on('data', (b) => (p += b.toString('latin1')));
    plain.write('GET / HTTP/1.1\r\nHost: lab\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
    await new Promise((r) => plain.on('end', r));
    expect(p).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    await s.close();
  });
});
