// 2,000 concurrent keep-alive connections, each making requests, on every model
// and both trigger modes.
import { describe, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Server, type Model, type ServerOptions, type ServerStats, type Trigger } from '../../native/index.js';
import { open, request } from '../helpers/http.js';
import { itUring } from '../helpers/uring.js';

const CONNECTIONS = 2000;
const REQUESTS_EACH = 5;

async function openMany(port: number, n: number): Promise<Socket[]> {
  const out: Socket[] = [];
  // Batches keep the SYN rate below what the accept queue holds.
  for (let i = 0; i < n; i += 250) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(250, n - i) }, () => open(port)))));
  }
  return out;
}

async function waitFor(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting for condition');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const MAIN = fileURLToPath(new URL('../../dist/server/main.js', import.meta.url));

interface Running {
  port: number;
  stats(): Promise<ServerStats>;
  close(): Promise<void>;
}

/**
 * The server in this process; process-per-connection (fork) as the server process the lab
 * runs (dist/server/main.js): each fork copies its parent's page tables, and a test worker's
 * are many times a server's (2,000 forks of it took 20–37 s, of the server process 10 s).
 */
async function start(model: Model, threads: number, extra: ServerOptions): Promise<Running> {
  if (model !== 'fork') {
    const server = new Server({ host: '127.0.0.1', port: 0, model, threads, backlog: 4096, ...extra });
    const { port } = await server.listen();
    return { port, stats: async () => server.stats(), close: () => server.close() };
  }
  const argv = [MAIN, '--host', '127.0.0.1', '--port', '0', '--control-port', '0', '--model', model, '--threads', String(threads), '--backlog', '4096'];
  if (extra.trigger) argv.push('--trigger', extra.trigger);
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const info = JSON.parse(line) as { port: number; controlPort: number };
  return {
    port: info.port,
    stats: async () => (await (await fetch(`http://127.0.0.1:${info.controlPort}/stats`)).json()) as ServerStats,
    close: async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

const combos: Array<[Model, number, Trigger]> = [];
for (const trigger of ['edge', 'level'] as const) {
  combos.push(
    ['single', 1, trigger],
    ['reuseport', 2, trigger],
    ['acceptor', 2, trigger],
    ['workers', 2, trigger],
    ['reactors+workers', 2, trigger],
    ['reactor-procs', 2, trigger],
  );
}
// Of the blocking designs only thread- and process-per-connection can hold 2,000 keep-alive
// clients at once (2,000 threads, 2,000 processes); iterative, prethread and prefork serve
// one or N and leave the rest queued.
combos.push(['thread', 1, 'edge'], ['fork', 1, 'edge']);
// io_uring: completions have no trigger (the option is epoll's).
const uring: Array<[Model, number]> = [
  ['single', 1],
  ['reuseport', 2],
];

describe('2,000 concurrent connections', () => {
  const runs: Array<[string, Model, number, ServerOptions]> = [
    ...combos.map(([model, threads, trigger]): [string, Model, number, ServerOptions] => [
      `${model} × ${threads} threads, ${trigger}-triggered`,
      model,
      threads,
      { trigger },
    ]),
    ...uring.map(([model, threads]): [string, Model, number, ServerOptions] => [`${model} × ${threads} threads, io_uring`, model, threads, { io: 'io_uring' }]),
  ];
  for (const [name, model, threads, extra] of runs) {
    itUring(extra.io === 'io_uring')(name, async () => {
      const server = await start(model, threads, extra);
      const port = server.port;
      try {
        const socks = await openMany(port, CONNECTIONS);
        let ok = 0;
        const odd: string[] = [];
        await Promise.all(
          socks.map(async (s) => {
            for (let i = 0; i < REQUESTS_EACH; i++) {
              const b = await request(s);
              if (b.toString().endsWith('hello\n')) ok++;
              else odd.push(`request ${i + 1}: ${JSON.stringify(b.toString())}`);
            }
          }),
        );
        expect(ok, odd.slice(0, 3).join('; ')).toBe(CONNECTIONS * REQUESTS_EACH);
        const st = await server.stats();
        expect(st.total.requests).toBe(CONNECTIONS * REQUESTS_EACH);
        expect(st.total.accepted).toBe(CONNECTIONS);
        expect(st.total.active).toBe(CONNECTIONS);
        if (model === 'thread' || model === 'fork') expect(st.total.connThreadsLive).toBe(CONNECTIONS);
        if (model !== 'single') {
          // Work was spread: every serving thread answered some requests.
          const serving = st.perThread.filter((t) => !/^(accept|reactor)/.test(t.role));
          expect(serving.length).toBe(threads);
          for (const t of serving) expect(t.requests, t.role).toBeGreaterThan(0);
        }
        for (const s of socks) s.destroy();
        await waitFor(async () => (await server.stats()).total.active === 0);
        expect((await server.stats()).total.closed).toBe(CONNECTIONS);
      } finally {
        await server.close();
      }
    });
  }
});
