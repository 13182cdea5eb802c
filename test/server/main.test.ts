// The server process (dist/server/main.js and `lab serve`): flags, env, control
// API, signals, exit codes.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { exchange, GET, OK_BYTES, open, parseResponses } from '../helpers/http.js';
import { URING_REFUSED } from '../helpers/uring.js';

const MAIN = fileURLToPath(new URL('../../dist/server/main.js', import.meta.url));
const LAB = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
const LOCAL = ['--host', '127.0.0.1', '--port', '0', '--control-host', '127.0.0.1', '--control-port', '0'];

interface Started {
  child: ChildProcess;
  info: { port: number; controlPort: number; model: string; threads: number; backlog: number; pid: number };
  stderr: () => string;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

async function start(argv: string[], env: Record<string, string> = {}): Promise<Started> {
  const child = spawn(process.execPath, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (b) => (err += b));
  const rl = createInterface({ input: child.stdout! });
  const [line] = (await Promise.race([once(rl, 'line'), once(child, 'exit').then(() => [undefined])])) as [string | undefined];
  if (!line) throw new Error(`server did not start: ${err}`);
  return { child, info: JSON.parse(line), stderr: () => err };
}

async function waitFor(cond: () => Promise<boolean>, ms = 3000): Promise<void> {
  for (const end = Date.now() + ms; !(await cond());) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function control(port: number, path: string, init?: RequestInit) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('server process', () => {
  it('serves HTTP and the control API, and stops cleanly on SIGTERM', async () => {
    const { child, info } = await start([MAIN, ...LOCAL, '--model', 'acceptor', '--threads', '2', '--backlog', '64']);
    expect(info).toMatchObject({ model: 'acceptor', threads: 2, backlog: 64 });
    const r = await exchange(info.port, [GET], { untilBytes: OK_BYTES });
    expect(parseResponses(r.data)[0]?.status).toBe(200);

    expect(await control(info.controlPort, '/healthz')).toEqual({ status: 200, body: { ok: true } });
    const stats = await control(info.controlPort, '/stats');
    expect(stats.body).toMatchObject({ model: 'acceptor', threads: 2, state: 'listening', total: { requests: 1 } });

    expect((await control(info.controlPort, '/pause', { method: 'POST' })).body).toEqual({ paused: true });
    expect((await control(info.controlPort, '/stats')).body.paused).toBe(true);
    expect((await control(info.controlPort, '/resume', { method: 'POST' })).body).toEqual({ paused: false });

    const rate = await control(info.controlPort, '/accept-rate', { method: 'POST', body: JSON.stringify({ perSecond: 25 }) });
    expect(rate).toEqual({ status: 200, body: { acceptRate: 25 } });
    expect((await control(info.controlPort, '/accept-rate?perSecond=0', { method: 'POST' })).body).toEqual({ acceptRate: 0 });
    expect((await control(info.controlPort, '/stats')).body.acceptRate).toBe(0);

    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });

  it('rejects bad control requests with a message', async () => {
    const { child, info } = await start([MAIN, ...LOCAL]);
    const bad = await control(info.controlPort, '/accept-rate', { method: 'POST', body: '{"perSecond": -3}' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/perSecond must be an integer from 0 to 1000000000/);
    expect((await control(info.controlPort, '/accept-rate', { method: 'POST', body: 'nope' })).status).toBe(400);
    expect((await control(info.controlPort, '/accept-rate', { method: 'POST' })).body.error).toMatch(/perSecond is required/);
    expect((await control(info.controlPort, '/pause')).status).toBe(405);
    expect((await control(info.controlPort, '/nope')).status).toBe(404);
    child.kill('SIGINT');
    expect((await once(child, 'exit'))[0]).toBe(0);
  });

  // Request targets and shapes that node:http or new URL() cannot take: each gets an answer (or a
  // close), and the control API (and the reactor with it) keeps serving.
  it.each([
    ['a target new URL() cannot parse', 'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['an IPv6 authority left open', 'GET http://[::1 HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['a protocol-relative target with a bad host', 'GET //%%%%/stats HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['/__proto__', 'GET /__proto__ HTTP/1.1\r\nHost: x\r\n\r\n', 404],
    ['/constructor', 'GET /constructor HTTP/1.1\r\nHost: x\r\n\r\n', 404],
    ['a bad percent escape in the query', 'GET /stats?%zz HTTP/1.1\r\nHost: x\r\n\r\n', 200],
    ['perSecond=1e3', 'POST /accept-rate?perSecond=1e3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n', 400],
    ['a 5,000-byte body', 'POST /accept-rate HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n' + 'x'.repeat(5000), 400],
    ['perSecond a list', 'POST /accept-rate HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n{"perSecond": [1]}  ', 400],
    ['DELETE', 'DELETE /stats HTTP/1.1\r\nHost: x\r\n\r\n', 405],
    ['Content-Length: abc', 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400],
    ['chunked and Content-Length', 'GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n', 400],
    ['a 100 KB target', 'GET /' + 'a'.repeat(100_000) + ' HTTP/1.1\r\nHost: x\r\n\r\n', 431],
    ['binary garbage', '\x00\x01\x02\x03 garbage\r\n\r\n', 400],
    ['HTTP/9.9', 'GET / HTTP/9.9\r\n\r\n', 400],
    ['a header line without a colon', 'GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n', 400],
  ])('control API: %s → %i, and it keeps serving', async (_name, raw, status) => {
    const { child, info } = await start([MAIN, ...LOCAL]);
    // Up to the end of the answer's head: a keep-alive answer leaves the connection open.
    const r = await exchange(info.controlPort, [raw], { timeoutMs: 3000, until: (d) => d.includes('\r\n\r\n') });
    expect(r.data.toString('latin1')).toMatch(new RegExp(`^HTTP/1\\.[01] ${status} `));
    expect(await control(info.controlPort, '/healthz')).toEqual({ status: 200, body: { ok: true } });
    expect(child.exitCode).toBe(null);
    const http = await exchange(info.port, [GET], { untilBytes: OK_BYTES });
    expect(parseResponses(http.data)[0]?.status).toBe(200);
    child.kill('SIGTERM');
    expect((await once(child, 'exit'))[0]).toBe(0);
  });

  it('the deadline and limit flags, each by its effect: --idle-timeout, --header-timeout, --body-timeout, --max-body-bytes, --max-connections', async () => {
    const { child, info } = await start([
      MAIN,
      ...LOCAL,
      ...['--idle-timeout', '800', '--header-timeout', '200', '--body-timeout', '300', '--max-body-bytes', '5', '--max-connections', '2'],
    ]);
    const post = (len: number, body: string) => `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${len}\r\n\r\n${body}`;
    // --max-connections 2: a third connection while two are open is closed at once, unanswered.
    const two = await Promise.all([open(info.port), open(info.port)]);
    await waitFor(async () => (await control(info.controlPort, '/stats')).body.total!['active' as never] === 2);
    const third = await exchange(info.port, [GET], { timeoutMs: 3000 });
    expect([third.data.length, third.ended || third.reset]).toEqual([0, true]);
    for (const x of two) x.destroy();
    await waitFor(async () => (await control(info.controlPort, '/stats')).body.total!['active' as never] === 0);
    // --idle-timeout 800: a connection that sends nothing is closed after 0.8 s (not before 0.6 s).
    const t0 = Date.now();
    const idle = await exchange(info.port, [], { timeoutMs: 3000 });
    expect(idle.ended || idle.reset).toBe(true);
    expect(Date.now() - t0).toBeGreaterThan(600);
    // --header-timeout 200: a head whose second piece comes 0.3 s after its first gets 408 then
    // (deadlines are checked when bytes arrive), before the idle timer's 0.8 s.
    const slow = await exchange(info.port, ['GET / HT', 'TP/1.1\r\n', 'Host: x\r\n'], { gapMs: 300, timeoutMs: 3000 });
    expect(parseResponses(slow.data).map((x) => x.status)).toEqual([408]);
    // --body-timeout 300: a 4-byte body trickling in a byte every 400 ms gets 408 once a byte
    // arrives past the deadline (deadlines are checked when bytes arrive; a request that stalls
    // altogether is ended by the idle timer, which does not restart meanwhile).
    const body = await exchange(info.port, [post(4, 'a'), 'b', 'c', 'd'], { gapMs: 400, timeoutMs: 3000 });
    expect(parseResponses(body.data).map((x) => x.status)).toEqual([408]);
    // --max-body-bytes 5: a body of 5 is served, one of 6 gets 413 before it is read.
    const five = await exchange(info.port, [post(5, 'abcde')], { untilBytes: OK_BYTES, timeoutMs: 3000 });
    expect(parseResponses(five.data).map((x) => x.status)).toEqual([200]);
    const six = await exchange(info.port, [post(6, 'abcdef')], { timeoutMs: 3000 });
    expect(parseResponses(six.data).map((x) => x.status)).toEqual([413]);
    const total = (await control(info.controlPort, '/stats')).body.total as Record<string, number>;
    expect(total).toMatchObject({ overCap: 1, idleTimeouts: 1, headerTimeouts: 1, bodyTimeouts: 1, bodyTooLarge: 1 });
    child.kill('SIGTERM');
    expect((await once(child, 'exit'))[0]).toBe(0);
  });

  it('the design flags, each by its effect: --backlog (Send-Q), --model and --threads (threads serving), --io, --share, --work-us', async () => {
    const { child, info } = await start([
      MAIN,
      ...LOCAL,
      '--backlog',
      '37',
      '--model',
      'prethread',
      '--threads',
      '3',
      '--share',
      'reuseport',
      '--work-us',
      '20000',
    ]);
    // prethread ×3 sharing by SO_REUSEPORT: three listeners on the port, each with the backlog.
    const listeners = spawnSync('ss', ['-Hltn', `sport = :${info.port}`], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n');
    expect(listeners.map((l) => l.split(/\s+/)[2])).toEqual(['37', '37', '37']);
    // --work-us 20000: each answer takes at least 20 ms of the thread's time.
    const t0 = process.hrtime.bigint();
    const r = await exchange(info.port, [GET], { untilBytes: OK_BYTES, timeoutMs: 3000 });
    expect(parseResponses(r.data).map((x) => x.status)).toEqual([200]);
    expect(Number(process.hrtime.bigint() - t0) / 1e6).toBeGreaterThanOrEqual(20);
    const st = (await control(info.controlPort, '/stats')).body as { perThread: unknown[] };
    expect(st.perThread).toHaveLength(3);
    child.kill('SIGTERM');
    expect((await once(child, 'exit'))[0]).toBe(0);
  });

  it.skipIf(URING_REFUSED !== null)(
    '--io io_uring reaches the loops: /stats says io_uring (skipped where io_uring is refused: see the line above the run)',
    async () => {
      const { child, info } = await start([MAIN, ...LOCAL, '--io', 'io_uring']);
      expect((await control(info.controlPort, '/stats')).body).toMatchObject({ io: 'io_uring' });
      const r = await exchange(info.port, [GET], { untilBytes: OK_BYTES, timeoutMs: 3000 });
      expect(parseResponses(r.data).map((x) => x.status)).toEqual([200]);
      child.kill('SIGTERM');
      expect((await once(child, 'exit'))[0]).toBe(0);
    },
  );

  it('the control API listens on loopback unless told otherwise', async () => {
    const { child, info } = await start([MAIN, '--host', '127.0.0.1', '--port', '0', '--control-port', '0']);
    expect(info).toMatchObject({ controlHost: '127.0.0.1' });
    child.kill('SIGTERM');
    expect((await once(child, 'exit'))[0]).toBe(0);
  });

  it('takes its settings from TCPLAB_* environment variables', async () => {
    const { child, info } = await start([MAIN, '--host', '127.0.0.1', '--control-host', '127.0.0.1'], {
      TCPLAB_PORT: '0',
      TCPLAB_CONTROL_PORT: '0',
      TCPLAB_MODEL: 'reuseport',
      TCPLAB_THREADS: '2',
      TCPLAB_BACKLOG: '33',
    });
    expect(info).toMatchObject({ model: 'reuseport', threads: 2, backlog: 33 });
    child.kill('SIGTERM');
    expect((await once(child, 'exit'))[0]).toBe(0);
  });

  it('is also `lab serve`', async () => {
    const { child, info } = await start([LAB, 'serve', ...LOCAL, '--trigger', 'level']);
    const r = await exchange(info.port, [GET], { untilBytes: OK_BYTES });
    expect(parseResponses(r.data)[0]?.status).toBe(200);
    child.kill('SIGTERM');
    expect((await once(child, 'exit'))[0]).toBe(0);
  });

  const bad: Array<[string[], RegExp]> = [
    [['--threads', '0'], /--threads: got 0: an integer from 1 to 256/m],
    [
      ['--model', 'forked'],
      /--model: got "forked": one of single, reuseport, acceptor, workers, reactors\+workers, reactor-procs, iterative, fork, thread, prethread, prefork$/m,
    ],
    [['--port', '99999'], /--port: got 99999: an integer from 0 to 65535/m],
    [['--idle-timeout', '-1'], /--idle-timeout: got -1: an integer from 0 to 86400000/m],
    [['--backlog', 'lots'], /--backlog: got "lots": an integer from -2147483648 to 2147483647/m],
    [['--trigger', 'edgy'], /--trigger: got "edgy": one of edge, level/m],
    [['--model', 'single', '--threads', '2'], /`threads` must be 1 for model "single"/],
    [['--host', 'nowhere'], /--host: got "nowhere": an IPv4 or IPv6 address like 127.0.0.1/],
    [['--control-host', '1.2.3'], /--control-host: got "1.2.3": an IPv4 or IPv6 address like 127.0.0.1/],
    [['--port', '1', '--port', '2'], /--port: given twice \("1" and "2"\); give it once/],
    [['--frobnicate'], /unknown option '--frobnicate'/],
  ];
  for (const [flags, msg] of bad) {
    for (const entry of [MAIN, LAB]) {
      it(`${entry === MAIN ? 'main.js' : 'lab serve'} ${flags.join(' ')} → one line, exit 2`, () => {
        const argv = entry === MAIN ? [entry, ...flags] : [entry, 'serve', ...flags];
        const r = spawnSync(process.execPath, argv, { encoding: 'utf8', timeout: 10_000 });
        expect(r.status).toBe(2);
        expect(r.stderr).toMatch(msg);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stdout).toBe('');
      });
    }
  }

  it('a port clash → one line naming the address, exit 2, nothing left running', async () => {
    const first = await start([MAIN, ...LOCAL]);
    const r = spawnSync(process.execPath, [MAIN, '--host', '127.0.0.1', '--port', String(first.info.port), '--control-port', '0'], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(`tcplab-server: bind EADDRINUSE: Address already in use 127.0.0.1:${first.info.port}`);
    // The control port clashing: the reactor it had started is closed again.
    const r2 = spawnSync(
      process.execPath,
      [MAIN, '--host', '127.0.0.1', '--port', '0', '--control-host', '127.0.0.1', '--control-port', String(first.info.controlPort)],
      {
        encoding: 'utf8',
        timeout: 10_000,
      },
    );
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/control API: listen EADDRINUSE/);
    expect(r2.stderr.trim().split('\n')).toHaveLength(1);
    first.child.kill('SIGTERM');
    expect((await once(first.child, 'exit'))[0]).toBe(0);
  });

  it('lab --help is instant and exits 0', () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [LAB, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/serve/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});
