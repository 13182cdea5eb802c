// The io_uring backend (io: "io_uring"): that it really runs on a ring (an io_uring fd while
// it listens, none after close), that stats say so, and what a refusal looks like: under a
// seccomp filter that refuses io_uring_setup (test/fixtures/deny-uring, as Docker's default
// profile from engine 25.0 does), listen() rejects naming the cause, the server process
// exits 2 with one line, and no fd is left. The HTTP, malformed-input, slowloris,
// concurrency, lifecycle and queue suites run the backend too (test/helpers/server.ts DESIGNS).
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { Server } from '../../native/index.js';
import { exchange, GET, OK_BYTES, parseResponses } from '../helpers/http.js';
import { URING_REFUSED } from '../helpers/uring.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/deny-uring/deny-uring.c', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/native/index.js', import.meta.url));
const MAIN = fileURLToPath(new URL('../../dist/server/main.js', import.meta.url));

const uringFds = () =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[io_uring]';
    } catch {
      return false; // closed meanwhile (readdir's own fd)
    }
  }).length;

describe.skipIf(URING_REFUSED !== null)('io_uring backend', () => {
  it('runs on rings: one per loop while listening, none after close; stats say io_uring', async () => {
    const before = uringFds();
    const s = new Server({ host: '127.0.0.1', model: 'reuseport', threads: 3, io: 'io_uring' });
    const { port } = await s.listen();
    const r = await exchange(port, [GET, GET, GET], { untilBytes: 3 * OK_BYTES });
    expect(parseResponses(r.data).map((x) => x.status)).toEqual([200, 200, 200]);
    // The rings are made by the loops' threads: wait for them to be up.
    for (let i = 0; i < 50 && uringFds() - before < 3; i++) await new Promise((res) => setTimeout(res, 20));
    expect(uringFds() - before).toBe(3);
    expect(s.stats()).toMatchObject({ io: 'io_uring', model: 'reuseport', threads: 3 });
    await s.close();
    expect(uringFds()).toBe(before);
    const e = new Server({ host: '127.0.0.1' });
    await e.listen();
    expect(e.stats().io).toBe('epoll');
    expect(uringFds()).toBe(before); // epoll makes none
    await e.close();
  });

  // The window is the kernel's minimum wait (IORING_FEAT_MIN_TIMEOUT): an enter that has a
  // completion returns when the window is up (or at 32 completions), not at once. A request
  // alone on the server therefore waits out the window; without one it does not.
  // 10 ms (the most the option takes) is far above the scheduler's and the loopback's own
  // delays (well under 1 ms here).
  it('a batch window: a lone request waits it out; without one it does not', async () => {
    const WINDOW_MS = 10;
    const timed = async (port: number, n: number) => {
      const t0 = performance.now();
      const rs = await Promise.all(Array.from({ length: n }, () => exchange(port, [GET], { untilBytes: OK_BYTES })));
      return { ms: performance.now() - t0, ok: rs.every((r) => parseResponses(r.data)[0]?.status === 200) };
    };
    const plain = new Server({ host: '127.0.0.1', io: 'io_uring' });
    const batched = new Server({ host: '127.0.0.1', io: 'io_uring', uringBatchUs: WINDOW_MS * 1000 });
    try {
      const p = (await plain.listen()).port;
      const b = (await batched.listen()).port;
      await timed(b, 1); // the loop's first enter
      const lonePlain = await timed(p, 1);
      const lone = await timed(b, 1);
      expect(lonePlain).toMatchObject({ ok: true });
      expect(lonePlain.ms).toBeLessThan(WINDOW_MS / 2);
      expect(lone).toMatchObject({ ok: true });
      // Its recv completes at the enter that arms it, which then waits out the window.
      expect(lone.ms).toBeGreaterThanOrEqual(WINDOW_MS);
      expect(lone.ms).toBeLessThan(10 * WINDOW_MS);
    } finally {
      await plain.close();
      await batched.close();
    }
  });

  it('a batch window with io "epoll" is refused, naming the option', () => {
    expect(() => new Server({ host: '127.0.0.1', uringBatchUs: 50 })).toThrow(
      'option `uringBatchUs` must be 0 with io "epoll" (it is the io_uring loop\'s batch window), got 50',
    );
  });
});

describe('io_uring refused by a seccomp filter', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tcplab-deny-uring-'));
  const deny = join(dir, 'deny-uring');
  beforeAll(async () => {
    await execa('cc', ['-O2', '-o', deny, FIXTURE]);
  });

  it('listen() rejects with syscall io_uring_setup, EPERM and the cause; epoll still runs there; no fd left', async () => {
    const script = [
      `const { Server } = await import(${JSON.stringify(DIST)});`,
      "const fds = () => (require('node:fs').readdirSync('/proc/self/fd').length);",
      'const before = fds();',
      "const s = new Server({ host: '127.0.0.1', io: 'io_uring' });",
      'const err = await s.listen().then(() => null, (e) => e);',
      'await s.close();',
      "const ok = new Server({ host: '127.0.0.1' }); const { port } = await ok.listen(); await ok.close();",
      'console.log(JSON.stringify({ message: err?.message, code: err?.code, syscall: err?.syscall, leaked: fds() - before, epollPort: port > 0 }));',
    ].join('\n');
    const r = await execa(deny, [process.execPath, '--input-type=commonjs', '-e', `(async () => {${script}})()`], {
      reject: false,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      message:
        'io_uring_setup EPERM: a seccomp filter refuses io_uring (Docker engines from 25.0 block it in their default profile); use io "epoll"',
      code: 'EPERM',
      syscall: 'io_uring_setup',
      leaked: 0,
      epollPort: true,
    });
  });

  it('the server process: one line, exit 2', async () => {
    const r = await execa(deny, [process.execPath, MAIN, '--io', 'io_uring', '--port', '0', '--control-port', '0'], { reject: false });
    expect([r.exitCode, r.stdout, r.stderr.trim().split('\n')]).toEqual([
      2,
      '',
      ['tcplab-server: io_uring_setup EPERM: a seccomp filter refuses io_uring (Docker engines from 25.0 block it in their default profile); use io "epoll"'],
    ]);
  });
});
