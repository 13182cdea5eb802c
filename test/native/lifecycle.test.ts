// Options, errors, start/close cycles, fds, two servers, process exit, idle timeout.
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Server, type Io, type Model } from '../../native/index.js';
import { exchange, GET, OK_BYTES, open, parseResponses } from '../helpers/http.js';
import { itUring, whereUring } from '../helpers/uring.js';

const run = promisify(execFile);
const fdCount = () => readdirSync('/proc/self/fd').length;

describe('options are checked before any socket exists', () => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ threads: 0 }, /option `threads` must be an integer from 1 to 256, got 0/],
    [{ threads: 2.5 }, /option `threads` must be an integer from 1 to 256, got 2.5/],
    [{ model: 'reuseport', threads: 300 }, /`threads` must be an integer from 1 to 256, got 300/],
    [{ threads: 4 }, /`threads` must be 1 for model "single"/],
    [
      { model: 'forked' },
      /option `model` must be one of "single", "reuseport", "acceptor", "workers", "reactors\+workers", "reactor-procs", "iterative", "fork", "thread", "prethread", "prefork", got "forked"/,
    ],
    [{ model: 'fork', threads: 2 }, /option `threads` must be 1 for model "fork" \(use "prefork" for a pool of N\), got 2/],
    [{ trigger: 'both' }, /option `trigger` must be one of "edge", "level", got "both"/],
    [{ io: 'aio' }, /option `io` must be one of "epoll", "io_uring", got "aio"/],
    [
      { io: 'io_uring', model: 'acceptor', threads: 2 },
      /option `io` must be "epoll" for model "acceptor" \(io_uring runs the models "single" and "reuseport"\), got "io_uring"/,
    ],
    [{ port: 70000 }, /option `port` must be an integer from 0 to 65535, got 70000/],
    [{ port: -1 }, /option `port` must be an integer from 0 to 65535, got -1/],
    [{ port: '80' }, /option `port` must be an integer from 0 to 65535, got "80"/],
    [{ idleTimeoutMs: -5 }, /option `idleTimeoutMs` must be an integer from 0 to 86400000, got -5/],
    [{ host: 'localhost' }, /option `host` must be an IPv4 or IPv6 address, got "localhost"/],
    [{ backlog: 2 ** 31 }, /option `backlog` must be an integer from -2147483648 to 2147483647/],
    [{ maxHeaderBytes: 10 }, /option `maxHeaderBytes` must be an integer from 256/],
    [{ reusePort: 'yes' }, /option `reusePort` must be true or false, got "yes"/],
    [{ portt: 80 }, /unknown option `portt`; allowed: host, port, backlog/],
  ];
  for (const [opts, msg] of bad) {
    it(JSON.stringify(opts), () => {
      const before = fdCount();
      let err: (Error & { code?: string }) | undefined;
      try {
        new Server(opts as never);
      } catch (e) {
        err = e as Error & { code?: string };
      }
      expect(err?.message).toMatch(msg);
      expect(err?.code).toBe('ERR_INVALID_ARG_VALUE');
      expect(fdCount()).toBe(before);
    });
  }

  it('accepts backlog values the kernel clamps (-1, 0, huge)', async () => {
    for (const backlog of [-1, 0, 1_000_000]) {
      const s = new Server({ host: '127.0.0.1', backlog });
      await s.listen();
      expect(s.stats().backlog).toBe(backlog);
      await s.close();
    }
  });
});

describe('the body limit', () => {
  it('maxBodyBytes: a Content-Length above it gets 413, at it the body is read and the request answered', async () => {
    const s = new Server({ host: '127.0.0.1', maxBodyBytes: 10 });
    const { port } = await s.listen();
    const at = await exchange(port, ['POST / HTTP/1.1\r\nHost: l\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789'], { timeoutMs: 3000 });
    expect(parseResponses(at.data).map((x) => x.status)).toEqual([200]);
    const over = await exchange(port, ['POST / HTTP/1.1\r\nHost: l\r\nContent-Length: 11\r\n\r\n01234567890'], { timeoutMs: 3000 });
    expect(parseResponses(over.data).map((x) => x.status)).toEqual([413]);
    expect(s.stats().total.bodyTooLarge).toBe(1);
    await s.close();
    expect(() => new Server({ maxBodyBytes: -1 })).toThrow(/option `maxBodyBytes` must be an integer from 0 to 1099511627776, got -1/);
  });
});

describe('OS errors', () => {
  it('EADDRINUSE becomes an Error with code, errno and syscall, and leaks no fd', async () => {
    const a = new Server({ host: '127.0.0.1' });
    const { port } = await a.listen();
    const before = fdCount();
    const b = new Server({ host: '127.0.0.1', port });
    const err = (await b.listen().catch((e) => e)) as NodeJS.ErrnoException;
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('EADDRINUSE');
    expect(err.syscall).toBe('bind');
    expect(err.errno).toBe(-98);
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(fdCount()).toBe(before);
    await b.close();
    await a.close();
  });

  it('a second listen() rejects; on a closed server the code says so', async () => {
    const a = new Server({ host: '127.0.0.1' });
    await a.listen();
    await expect(a.listen()).rejects.toMatchObject({ code: 'ERR_SERVER_ALREADY_LISTEN', message: expect.stringMatching(/already called/) });
    await a.close();
    expect(() => a.pause()).toThrow(/closed/);
    await expect(a.listen()).rejects.toMatchObject({ code: 'ERR_SERVER_NOT_RUNNING', message: 'the server is closed' });
    // close() again settles at once.
    await a.close();
  });

  it('out of file descriptors while making its loops: an EMFILE error, not an abort', async () => {
    // A child with a 64-fd limit (prlimit), so this process keeps its own.
    const addon = new URL('../../dist/native/index.js', import.meta.url).href;
    const script = [
      `const { Server } = await import(${JSON.stringify(addon)});`,
      'const out = [];',
      "for (const model of ['reuseport', 'acceptor']) {",
      "  const s = new Server({ host: '127.0.0.1', model, threads: 64 });",
      '  const err = await s.listen().then(() => null, (e) => e);',
      '  out.push({ model, code: err?.code ?? null, syscall: err?.syscall ?? null });',
      '  await s.close();',
      '}',
      'console.log(JSON.stringify(out));',
    ].join('\n');
    const r = await run('prlimit', ['--nofile=64:64', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Array<{ model: string; code: string | null; syscall: string | null }>;
    // Each loop of these models has its own epoll fd and eventfd: 64 loops cannot fit in 64 fds.
    expect(out.map((o) => o.model)).toEqual(['reuseport', 'acceptor']);
    for (const o of out) {
      expect([o.model, o.code]).toEqual([o.model, 'EMFILE']);
      expect(['epoll_create1', 'eventfd', 'socket', 'open']).toContain(o.syscall);
    }
  });

  // strace makes the loop's first epoll_wait fail with EBADF (Node's own loop calls epoll_pwait,
  // which it leaves alone). Before, the loop returned without a word and the server served on
  // with no loop: this waited forever.
  it('an epoll_wait error stops the loop with a line, and the server (lab serve) with it: exit 1, the line in stats().failures', async () => {
    const cli = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
    const r = await run(
      'timeout',
      [
        '20',
        'strace',
        '-f',
        '-o',
        '/dev/null',
        '-e',
        'trace=epoll_wait',
        '-e',
        'inject=epoll_wait:error=EBADF:when=1',
        process.execPath,
        cli,
        'serve',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--control-port',
        '0',
      ],
      { encoding: 'utf8' },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      'tcplab: tcplab-loop0 stopped: epoll_wait: Bad file descriptor',
      'lab serve: the reactor stopped: tcplab-loop0 stopped: epoll_wait: Bad file descriptor',
    ]);
  });
});

describe('lifecycle', () => {
  it('start/close cycles on every model leave the fd count unchanged', async () => {
    const warm = new Server({ host: '127.0.0.1' });
    await warm.listen();
    await warm.close();
    const before = fdCount();
    for (let i = 0; i < 5; i++) {
      for (const [model, threads, io] of whereUring<readonly [string, number, string?]>(
        [
        ['single', 1, 'io_uring'],
        ['reuseport', 3, 'io_uring'],
        ['single', 1],
        ['reuseport', 3],
        ['acceptor', 2],
        ['workers', 2],
        ['reactors+workers', 2],
        ['reactor-procs', 2],
        ['iterative', 1],
        ['fork', 1],
        ['thread', 1],
        ['prethread', 3],
        ['prefork', 2],
        ] as const,
        (r) => r[2] === 'io_uring',
      )) {
        const s = new Server({ host: '127.0.0.1', model: model as Model, threads, ...(io ? { io: io as Io } : {}) });
        const { port } = await s.listen();
        const r = await exchange(port, [GET, 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n']);
        expect(parseResponses(r.data)).toHaveLength(2);
        // Leave a connection open across close(): close() must close it too.
        const open1 = await open(port);
        await s.close();
        open1.destroy();
      }
    }
    expect(fdCount()).toBe(before);
  });

  it('two servers live in one process, and a new one starts after close', async () => {
    const a = new Server({ host: '127.0.0.1' });
    const b = new Server({ host: '127.0.0.1', model: 'acceptor', threads: 2 });
    const [pa, pb] = [(await a.listen()).port, (await b.listen()).port];
    for (const p of [pa, pb]) expect(parseResponses((await exchange(p, [GET], { untilBytes: OK_BYTES })).data)[0]?.status).toBe(200);
    await a.close();
    expect(parseResponses((await exchange(pb, [GET], { untilBytes: OK_BYTES })).data)[0]?.status).toBe(200);
    await b.close();
    const c = new Server({ host: '127.0.0.1', port: pa });
    expect((await c.listen()).port).toBe(pa);
    await c.close();
    await c.close(); // idempotent
    expect(c.stats().state).toBe('closed');
  });

  it('a listening server keeps Node alive; after close() the process exits', async () => {
    const addon = fileURLToPath(new URL('../../dist/native/index.js', import.meta.url));
    const script = `
      const { Server } = await import(${JSON.stringify(addon)});
      const s = new Server({ host: '127.0.0.1', model: 'workers', threads: 2 });
      await s.listen();
      setTimeout(() => s.close(), 300);
    `;
    const t0 = Date.now();
    await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 10_000 });
    const ms = Date.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(300); // was kept alive until close()
    expect(ms).toBeLessThan(5000); // and exited after it
  });
});

describe('idle timeout', () => {
  for (const [model, io] of [
    ['single', 'epoll'],
    ['workers', 'epoll'],
    ['single', 'io_uring'],
  ] as const) {
    itUring(io === 'io_uring')(`closes an idle connection (${model}, ${io})`, async () => {
      const s = new Server({ host: '127.0.0.1', idleTimeoutMs: 300, model, threads: model === 'workers' ? 2 : 1, io });
      const { port } = await s.listen();
      const t0 = Date.now();
      const r = await exchange(port, [GET], { timeoutMs: 3000 });
      const ms = Date.now() - t0;
      expect(parseResponses(r.data).map((x) => x.status)).toEqual([200]);
      expect(r.ended).toBe(true);
      expect(ms).toBeGreaterThanOrEqual(280);
      expect(ms).toBeLessThan(1500);
      expect(s.stats().total.idleTimeouts).toBe(1);
      await s.close();
    });
  }

  it('activity keeps a connection open past the timeout', async () => {
    const s = new Server({ host: '127.0.0.1', idleTimeoutMs: 300 });
    const { port } = await s.listen();
    const r = await exchange(port, Array.from({ length: 8 }, () => GET), { gapMs: 100, untilBytes: 8 * OK_BYTES });
    expect(parseResponses(r.data)).toHaveLength(8);
    expect(r.ended).toBe(false);
    expect(s.stats().total.idleTimeouts).toBe(0);
    await s.close();
  });
});
