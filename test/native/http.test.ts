// HTTP/1.1 framing over real sockets: keep-alive, pipelining, partial writes,
// bodies, close semantics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createNetns, type TestNetns } from '../helpers/netns.js';
import { DESIGNS, useServer } from '../helpers/server.js';
import { describeUring, itUring } from '../helpers/uring.js';
import { DATE_LINE, exchange, GET, HEAD, OK_BYTES, okAnswer, open, parseResponses, request } from '../helpers/http.js';

const run = promisify(execFile);

for (const [name, options] of DESIGNS) describeUring(options.io === 'io_uring')(name, () => {
  const fixture = useServer(options);
  let port: number;
  beforeAll(() => {
    port = fixture.port();
  });

  describe('answers', () => {
    it('is the classic mock, byte for byte, with a Date of now (RFC 9110 §6.6.1, IMF-fixdate)', async () => {
      const before = Math.floor(Date.now() / 1000);
      const r = await exchange(port, [GET], { untilBytes: 1 });
      const after = Math.floor(Date.now() / 1000);
      const text = r.data.toString();
      expect(text).toMatch(DATE_LINE);
      const date = /Date: ([^\r]+)\r\n/.exec(text)![1]!;
      expect(text).toBe(okAnswer(date));
      // The server's coarse clock (a tick of a few ms) against this process's, on the same machine.
      const at = Date.parse(date) / 1000;
      expect(at).toBeGreaterThanOrEqual(before - 1);
      expect(at).toBeLessThanOrEqual(after);
      expect(new Date(at * 1000).toUTCString()).toBe(date);
    });

    // The Date is refreshed by each design's own loop (once a batch, not once an answer): a
    // connection that waits past a second gets the new second.
    it('the Date moves on: two answers on one connection 1.1 s apart carry seconds 1 or 2 apart', async () => {
      const sock = await open(port);
      const dateOf = (b: Buffer) => Date.parse(/Date: ([^\r]+)\r\n/.exec(b.toString())![1]!) / 1000;
      const first = dateOf(await request(sock));
      await new Promise((r) => setTimeout(r, 1100));
      const second = dateOf(await request(sock));
      sock.destroy();
      expect(second - first).toBeGreaterThanOrEqual(1);
      expect(second - first).toBeLessThanOrEqual(2);
    });

    it('every error answer has a Content-Length that matches its body', async () => {
      for (const [req, status] of [
        ['nonsense\r\n\r\n', 400],
        ['FOO / HTTP/1.1\r\n\r\n', 501],
        ['GET / HTTP/2.0\r\n\r\n', 505],
        ['GET / HTTP/1.1\r\nX: ' + 'a'.repeat(9000) + '\r\n\r\n', 431],
      ] as const) {
        const r = await exchange(port, [req]);
        const [res] = parseResponses(r.data);
        expect(res?.status).toBe(status);
        expect(Buffer.byteLength(res!.body)).toBe(Number(res!.headers['content-length']));
        expect(res!.headers['connection']).toBe('close');
        expect(`Date: ${res!.headers['date']}\r\n`).toMatch(DATE_LINE);
      }
    });
  });

  describe('keep-alive', () => {
    it('serves many requests on one connection', async () => {
      const sock = await open(port);
      for (let i = 0; i < 200; i++) {
        const b = await request(sock);
        expect(b.toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*hello\n$/);
      }
      sock.destroy();
    });

    it('answers 1000 pipelined requests sent in one write, in order', async () => {
      // Alternate GET and HEAD so that order is visible in the bytes.
      const kinds = Array.from({ length: 1000 }, (_, i) => i % 3 === 2);
      const batch = kinds.map((h) => (h ? HEAD : GET)).join('');
      // Each answer's size: the keep-alive answer with its Date line; a HEAD's without the 6-byte body.
      const expectBytes = kinds.reduce((n, h) => n + (h ? OK_BYTES - 6 : OK_BYTES), 0);
      const r = await exchange(port, [batch], { untilBytes: expectBytes, timeoutMs: 5000 });
      const res = parseResponses(r.data, kinds);
      expect(res).toHaveLength(1000);
      res.forEach((x, i) => {
        expect(x.status).toBe(200);
        expect(x.body).toBe(kinds[i] ? '' : 'hello\n');
      });
      expect(r.data.length).toBe(expectBytes);
    });

    it('answers two 3 KiB requests sent in one write at once, not at the next event', async () => {
      // They span two of io_uring's 4 KiB receive buffers: the first answer's send is queued
      // before the second request is read, so the second answer waits behind a send in flight.
      // The wait it then has is what the loop must not sleep through (a version of the
      // io_uring loop did, until the idle timeout).
      const req = `GET / HTTP/1.1\r\nHost: lab\r\nX-Pad: ${'p'.repeat(3000)}\r\n\r\n`;
      const t0 = performance.now();
      const r = await exchange(port, [req + req], { untilBytes: 2 * OK_BYTES, timeoutMs: 3000 });
      expect(parseResponses(r.data).map((x) => x.status)).toEqual([200, 200]);
      // Far above a loopback round trip; far below the 3 s the broken loop took (the timeout).
      expect(performance.now() - t0).toBeLessThan(1000);
    });

    it('frames a request that arrives one byte at a time', async () => {
      const bytes = [...'GET /one/byte?at=a-time HTTP/1.1\r\nHost: lab\r\nX-Long: ' + 'x'.repeat(100) + '\r\n\r\n'];
      const r = await exchange(port, bytes, { gapMs: 1, untilBytes: OK_BYTES, timeoutMs: 10000 });
      expect(parseResponses(r.data).map((x) => x.status)).toEqual([200]);
    });

    it('consumes a Content-Length body, also when it arrives in pieces', async () => {
      const body = 'z'.repeat(50_000);
      const req = `POST /upload HTTP/1.1\r\nHost: lab\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      const pieces = [req.slice(0, 100), req.slice(100, 30_000), req.slice(30_000), GET];
      const r = await exchange(port, pieces, { gapMs: 5, untilBytes: 2 * OK_BYTES });
      expect(parseResponses(r.data).map((x) => x.status)).toEqual([200, 200]);
    });

    it('ignores empty lines before a request line', async () => {
      const r = await exchange(port, ['\r\n\r\n' + GET], { untilBytes: OK_BYTES });
      expect(parseResponses(r.data).map((x) => x.status)).toEqual([200]);
    });
  });

  describe('closing', () => {
    it('Connection: close — the server sends FIN right after the answer', async () => {
      const r = await exchange(port, ['GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n'], { timeoutMs: 3000 });
      const [res] = parseResponses(r.data);
      expect(res?.status).toBe(200);
      expect(res?.headers['connection']).toBe('close');
      expect(r.ended).toBe(true);
      expect(r.reset).toBe(false);
      expect(r.endAfterMs).toBeLessThan(500);
    });

    it('HTTP/1.0 without keep-alive: answer, then FIN', async () => {
      const r = await exchange(port, ['GET / HTTP/1.0\r\n\r\n']);
      expect(parseResponses(r.data).map((x) => [x.status, x.headers['connection']])).toEqual([[200, 'close']]);
      expect(r.ended).toBe(true);
    });

    it('HTTP/1.0 with keep-alive: the connection stays open', async () => {
      const sock = await open(port);
      const req = 'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n';
      for (let i = 0; i < 3; i++) {
        const [res] = parseResponses(await request(sock, req));
        expect(res?.headers['connection']).toBe('keep-alive');
      }
      expect(sock.readyState).toBe('open');
      sock.destroy();
    });

    it('requests after a Connection: close in the same write are not answered', async () => {
      const r = await exchange(port, [GET + 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n' + GET + GET]);
      expect(parseResponses(r.data).map((x) => x.status)).toEqual([200, 200]);
      expect(r.ended).toBe(true);
    });

    it('sees the FIN that arrives with the data (edge-triggered short read)', async () => {
      // Accepting is paused while the clients send and close, so data and FIN are both
      // queued before the server sees the socket. The short read must not be taken as
      // "drained" then, or the EOF behind it is never seen: no new edge comes.
      const server = fixture.server();
      server.pause();
      const cases = Array.from({ length: 20 }, (_, i) => (i % 2 ? GET : 'GET / HTTP/1.1\r\nHost: trunc'));
      const socks = await Promise.all(cases.map(() => open(port)));
      const results = socks.map((sock, i) => {
        const got: Buffer[] = [];
        sock.on('data', (b: Buffer) => got.push(b));
        sock.end(cases[i]);
        return new Promise<[boolean, number]>((resolve) => {
          const t = setTimeout(() => resolve([false, parseResponses(Buffer.concat(got)).length]), 1500);
          sock.on('close', () => {
            clearTimeout(t);
            resolve([true, parseResponses(Buffer.concat(got)).length]);
          });
        });
      });
      await new Promise((r) => setTimeout(r, 100));
      server.resume();
      expect(await Promise.all(results)).toEqual(cases.map((c) => [true, c === GET ? 1 : 0]));
      for (const s of socks) s.destroy();
    });

    it('counts what it did', async () => {
      const before = fixture.server().stats().total;
      await exchange(port, [GET + 'BAD\r\n\r\n']);
      const after = fixture.server().stats().total;
      expect(after.requests - before.requests).toBe(1);
      expect(after.badRequests - before.badRequests).toBe(1);
      expect(after.accepted - before.accepted).toBe(1);
      expect(after.bytesIn - before.bytesIn).toBe(GET.length + 7);
    });
  });
});

// Half-close with answers still to send: the client sends its requests and its FIN at once, and
// reads only later, slowly. In a namespace whose TCP buffers are 4 KiB (tcp_wmem, tcp_rmem), the
// server's last send meets a full buffer just as it reads the FIN. Before, it closed there and
// the answers still unsent were lost: 47 of 50, 141 of 200 reached the client, with no error.
describe('half-close with answers pending', () => {
  const namespaces: TestNetns[] = [];
  afterAll(() => namespaces.forEach((n) => n.remove()));
  const cli = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
  const client = [
    'import socket, sys, time',
    'n = int(sys.argv[1])',
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096); s.connect(('127.0.0.1', 7080))",
    "s.sendall(b'GET / HTTP/1.1\\r\\nHost: lab\\r\\n\\r\\n' * n); s.shutdown(socket.SHUT_WR)",
    'time.sleep(0.3); got = b""',
    'while True:',
    '    b = s.recv(4096)',
    '    if not b: break',
    '    got += b; time.sleep(0.001)',
    "print(got.count(b'HTTP/1.1 200 OK'))",
  ].join('\n');
  for (const [model, io] of [
    ['single', 'epoll'],
    ['workers', 'epoll'],
    ['single', 'io_uring'],
  ] as const)
    itUring(io === 'io_uring')(`${model} (${io}): every answer to 200 pipelined requests reaches a client that sent its FIN with them, then the server's FIN`, async () => {
      const ns = createNetns('halfclose');
      namespaces.push(ns);
      ns.sysctl('net.ipv4.tcp_wmem', '4096 4096 4096');
      ns.sysctl('net.ipv4.tcp_rmem', '4096 4096 4096');
      const server = spawn('ip', ['netns', 'exec', ns.name, process.execPath, cli, 'serve', '--host', '127.0.0.1', '--port', '7080', '--control-port', '0', '--model', model, ...(model === 'workers' ? ['--threads', '2'] : []), '--io', io], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      try {
        let said = '';
        while (!said.includes('"listening"')) said += String(await once(server.stdout!, 'data'));
        const r = await run('ip', ['netns', 'exec', ns.name, 'python3', '-c', client, '200'], { encoding: 'utf8' });
        expect(Number(r.stdout.trim())).toBe(200);
      } finally {
        server.kill('SIGTERM');
        await once(server, 'exit');
      }
    });
});
