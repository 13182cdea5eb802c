// Soak: 10,000 concurrent keep-alive connections held for 20 s, then every one served. The
// server and the client run as processes of their own, each with room for its fds (Node
// raises its soft fd limit to the hard one; the test says so when that is too low); the test
// reports the server's RSS and the rate at which the held connections were answered.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const MAIN = fileURLToPath(new URL('../../dist/server/main.js', import.meta.url));
const CLIENT = fileURLToPath(new URL('../helpers/soak-client.mjs', import.meta.url));
const N = 10_000;
const HOLD_MS = 20_000;

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

describe('soak', () => {
  it(`${N} keep-alive connections held ${HOLD_MS / 1000} s, then all served`, async () => {
    const hard = /Max open files\s+\S+\s+(\S+)/.exec(readFileSync('/proc/self/limits', 'utf8'))![1]!;
    if (hard !== 'unlimited' && Number(hard) < N + 200) throw new Error(`the fd limit here is ${hard}: the soak needs ${N + 200} per process (ulimit -Hn)`);
    const args = [MAIN, '--host', '127.0.0.1', '--port', '0', '--control-port', '0', '--backlog', '4096', '--idle-timeout', String(HOLD_MS + 60_000)];
    const server = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const [line] = (await once(createInterface({ input: server.stdout! }), 'line')) as [string];
      const info = JSON.parse(line) as { port: number; controlPort: number; pid: number };
      const rssBefore = rssMb(info.pid);
      const client = execa(process.execPath, [CLIENT, String(info.port), String(N), String(HOLD_MS)], { reject: false });
      // Mid-hold: every connection is open on the server, and what that costs it.
      await new Promise((r) => setTimeout(r, HOLD_MS / 2));
      const mid = (await (await fetch(`http://127.0.0.1:${info.controlPort}/stats`)).json()) as { total: { active: number; accepted: number } };
      const rssHeld = rssMb(info.pid);
      const r = await client;
      expect(r.exitCode, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { connected: number; stillOpen: number; closedEarly: number; answered: number; serveMs: number; rps: number };
      process.stderr.write(`soak: ${N} connections, server RSS ${rssBefore.toFixed(1)} MB idle, ${rssHeld.toFixed(1)} MB holding them; all answered in ${out.serveMs} ms (${out.rps} req/s)\n`);
      expect(mid.total.active).toBe(N);
      expect(out).toMatchObject({ connected: N, stillOpen: N, closedEarly: 0, answered: N });
      // A held connection costs the reactor its two buffers (16 KB in, 16 KB out) and little else.
      expect(rssHeld - rssBefore).toBeLessThan((N * 40) / 1024);
    } finally {
      server.kill('SIGTERM');
      await once(server, 'exit');
    }
  }, 180_000);
});
