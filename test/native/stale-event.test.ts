// A connection's file held open by another process when the reactor closes it: close() then
// leaves the socket in the reactor's epoll set (an epoll interest belongs to the open file, and
// the file lives on), so the socket's next bytes report an event that carries the closed
// connection's pointer. That happens to a reactor in any process that forks (the window
// between fork and exec: its child holds every fd), as when the addon runs inside a Node
// program that spawns. The test makes the window as long as it likes: a Python process takes a
// copy of the server's socket with pidfd_getfd(2) (root), the client asks with
// `Connection: close` and sends more once the answer came. The reactor must stay right:
// its count of open connections, and no spinning on a socket it no longer reads.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const MAIN = fileURLToPath(new URL('../../dist/server/main.js', import.meta.url));
const TICK = 100; // USER_HZ: /proc/PID/stat's clock ticks a second on Linux

/** The process's CPU seconds so far (user + system, all its threads). */
const cpuSec = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
};

/** The server's fd of the connection from the client's local port (ss -p names it). */
async function serverFd(pid: number, serverPort: number, clientPort: number): Promise<number> {
  const r = await execa('ss', ['-Htnp', 'state', 'established', `( sport = :${serverPort} and dport = :${clientPort} )`]);
  const m = new RegExp(`pid=${pid},fd=(\\d+)`).exec(r.stdout);
  if (!m) throw new Error(`no fd of pid ${pid} for port ${clientPort} in: ${r.stdout}`);
  return Number(m[1]);
}

const HOLDER = [
  'import ctypes, os, sys, time',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'pidfd = libc.syscall(434, int(sys.argv[1]), 0)', // pidfd_open
  'fd = libc.syscall(438, pidfd, int(sys.argv[2]), 0)', // pidfd_getfd
  "print('held' if fd >= 0 else 'errno %d' % ctypes.get_errno(), flush=True)",
  'sys.stdin.read()', // until the test closes its stdin
].join('\n');

/** What the socket got until TEXT came; rejects after 5 s with what it had. */
const until = (s: net.Socket, text: string) =>
  new Promise<string>((resolve, reject) => {
    let got = '';
    const t = setTimeout(() => reject(new Error(`no ${JSON.stringify(text)} in 5 s; got ${JSON.stringify(got)}`)), 5000);
    s.on('data', (d) => {
      got += d.toString();
      if (got.includes(text)) {
        clearTimeout(t);
        resolve(got);
      }
    });
  });

describe('a stale epoll event after the reactor closed a connection another process still holds', () => {
  it.each([
    ['level-triggered', ['--trigger', 'level']],
    ['edge-triggered', ['--trigger', 'edge']],
  ])('%s: the connection count stays right and the loop does not spin', async (_mode, flags) => {
    const server = spawn(process.execPath, [MAIN, '--host', '127.0.0.1', '--port', '0', '--control-port', '0', ...flags], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let holder: ReturnType<typeof spawn> | undefined;
    try {
      const [line] = (await once(createInterface({ input: server.stdout! }), 'line')) as [string];
      const info = JSON.parse(line) as { port: number; controlPort: number; pid: number };
      const stats = async () => ((await (await fetch(`http://127.0.0.1:${info.controlPort}/stats`, { signal: AbortSignal.timeout(5000) })).json()) as { total: { active: number } }).total.active;

      const a = net.connect(info.port, '127.0.0.1');
      await once(a, 'connect');
      await new Promise((r) => setTimeout(r, 100)); // accepted
      holder = spawn('python3', ['-c', HOLDER, String(info.pid), String(await serverFd(info.pid, info.port, a.localPort!))], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const [held] = (await once(createInterface({ input: holder.stdout! }), 'line')) as [string];
      expect(held).toBe('held');

      // The reactor answers and closes its fd; the file lives on in the holder.
      const answered = until(a, '\r\n\r\nhello\n');
      a.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await answered;
      await new Promise((r) => setTimeout(r, 100));
      // Still up (before the fix, level-triggered, it died here of SIGSEGV: the stale event's
      // Conn was closed a second time and put back on the free list twice).
      expect([server.exitCode, server.signalCode]).toEqual([null, null]);
      expect(await stats()).toBe(0);
      // A new connection takes the closed one's place (the reactor reuses its objects).
      const b = net.connect(info.port, '127.0.0.1');
      await once(b, 'connect');
      await new Promise((r) => setTimeout(r, 100));
      expect(await stats()).toBe(1);
      // Bytes on the socket the reactor closed: an event on it now carries the old pointer.
      a.write('more bytes nobody reads');
      await new Promise((r) => setTimeout(r, 200));
      const cpu0 = cpuSec(info.pid);
      await new Promise((r) => setTimeout(r, 1000));
      const spun = cpuSec(info.pid) - cpu0;
      expect([server.exitCode, server.signalCode]).toEqual([null, null]);
      expect(await stats()).toBe(1);
      // Idle but for a stats request: a loop spinning on the stale event burns the whole second.
      expect(spun).toBeLessThan(0.2);
      // And the new connection is served.
      const got = until(b, '\r\n\r\nhello\n');
      b.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(await got).toMatch(/^HTTP\/1\.1 200 OK/);
      a.destroy();
      b.destroy();
    } finally {
      holder?.stdin?.end();
      holder?.kill();
      if (server.exitCode === null && server.signalCode === null) {
        const exited = once(server, 'exit');
        server.kill('SIGTERM');
        // A loop that spins may not stop on SIGTERM: then SIGKILL, so the failure above is the one seen.
        const killer = setTimeout(() => server.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killer);
      }
    }
  }, 30_000);
});
