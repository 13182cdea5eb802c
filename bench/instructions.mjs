#!/usr/bin/env node
// User-space instructions per request, counted by callgrind: a figure that does not move with
// the machine's load or its clock (this VM has no hardware counters, and its CPU seconds spread
// by 30 % between runs). Each server runs alone under `valgrind --tool=callgrind` in a fresh
// network namespace; only its event loop's function and what it calls are counted
// (--toggle-collect), so start-up, Node and the control server are left out. The request
// script is fixed: `ab -k` (HTTP/1.0 keep-alive, ApacheBench's own headers), a warm-up, the
// counters zeroed, then N requests on C connections, the counters dumped.
//
//   sudo node bench/instructions.mjs [--requests N] [--connections C] [--only a,b]
//
// Needs valgrind, ab (apache2-utils), nginx (nginx-light) and `npm run build`.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PORT = 8080;
const die = (msg) => {
  process.stderr.write(`bench/instructions: ${msg}\n`);
  process.exit(2);
};
let args;
try {
  ({ values: args } = parseArgs({
    options: {
      requests: { type: 'string', default: '20000' },
      connections: { type: 'string', default: '16' },
      only: { type: 'string' },
      keep: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (e) {
  die(e.message.split('\n')[0]);
}
if (args.help) {
  process.stdout.write(
    'usage: sudo node bench/instructions.mjs [--requests N] [--connections C] [--only nginx,c-epoll,tcplab-single,tcplab-single-io_uring] [--keep DIR (the callgrind files, for callgrind_annotate)]\n',
  );
  process.exit(0);
}
const count = (name, lo, hi) => {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < lo || n > hi) die(`--${name} must be an integer from ${lo} to ${hi}, not ${JSON.stringify(args[name])}`);
  return n;
};
const REQUESTS = count('requests', 1000, 10_000_000);
const CONNECTIONS = count('connections', 1, 1000);
if (process.getuid?.() !== 0) die('run as root (sudo): each server gets a network namespace of its own');
const sh = (argv, timeout = 600_000) => execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout });
for (const tool of ['valgrind', 'callgrind_control', 'ab', 'nginx', 'cc'])
  try {
    sh(['sh', '-c', `command -v ${tool}`]);
  } catch {
    die(`${tool} is not installed (apt-get install valgrind apache2-utils nginx-light gcc)`);
  }
if (!existsSync(join(ROOT, 'dist', 'server', 'main.js'))) die('dist/server/main.js is missing: run `npm run build` first');

const tmp = mkdtempSync(join(tmpdir(), 'tcplab-instructions-'));
writeFileSync(
  join(tmp, 'nginx.conf'),
  `worker_processes 1;\nmaster_process off;\ndaemon off;\nerror_log stderr error;\npid ${tmp}/nginx.pid;\nevents { worker_connections 8192; use epoll; }\nhttp {\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 120s;\n  server {\n    listen 127.0.0.1:${PORT} backlog=511;\n    location / { default_type text/plain; return 200 "hello\\n"; }\n  }\n}\n`,
);
sh(['cc', '-O2', '-o', join(tmp, 'c-loop'), join(ROOT, 'bench', 'c-loop.c')]);
const tcplab = (io) => [
  process.execPath,
  join(ROOT, 'dist/server/main.js'),
  ...['--host', '127.0.0.1', '--port', String(PORT), '--control-host', '127.0.0.1', '--control-port', '0'],
  ...['--model', 'single', '--threads', '1', '--io', io],
];
// Each server, and the function its event loop runs in (the counted part).
let servers = [
  { name: 'nginx', slug: 'nginx', loop: 'ngx_process_events_and_timers', argv: ['nginx', '-p', tmp, '-c', join(tmp, 'nginx.conf')] },
  { name: 'C epoll loop', slug: 'c-epoll', loop: 'main', argv: [join(tmp, 'c-loop'), String(PORT)] },
  { name: 'tcplab single', slug: 'tcplab-single', loop: 'tcplab::Loop::run()', argv: tcplab('epoll') },
  { name: 'tcplab single io_uring', slug: 'tcplab-single-io_uring', loop: 'tcplab::UringLoop::run()', argv: tcplab('io_uring') },
];
if (args.only) {
  const want = args.only.split(',');
  servers = servers.filter((s) => want.includes(s.slug));
  if (!servers.length) die('--only matched no server; names: nginx, c-epoll, tcplab-single, tcplab-single-io_uring');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ns = `tcplab-instr-${process.pid}`;
const inNs = (argv) => ['ip', 'netns', 'exec', ns, ...argv];
function cleanup() {
  try {
    sh(['ip', 'netns', 'del', ns]);
  } catch {
    // not there
  }
}
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
])
  process.on(signal, () => {
    // The server under valgrind goes with its namespace's processes.
    try {
      for (const pid of sh(['ip', 'netns', 'pids', ns]).split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // no namespace yet
    }
    cleanup();
    rmSync(tmp, { recursive: true, force: true });
    process.exit(code);
  });

async function measure(s) {
  sh(['ip', 'netns', 'add', ns]);
  sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  const out = join(tmp, `${s.slug}.callgrind`);
  const argv = inNs(['valgrind', '--tool=callgrind', `--callgrind-out-file=${out}`, `--toggle-collect=${s.loop}`, ...s.argv]);
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], cwd: tmp });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  try {
    let up = false;
    for (let i = 0; i < 120 && !up; i++) {
      await sleep(500);
      try {
        sh(inNs(['ab', '-q', '-k', '-s', '5', '-n', '1', `http://127.0.0.1:${PORT}/`]), 10_000);
        up = true;
      } catch {
        if (child.exitCode !== null) throw new Error(`${s.name} exited: ${err.trim().split('\n').slice(-3).join(' | ')}`);
      }
    }
    if (!up) throw new Error(`${s.name} did not answer within 60 s under valgrind`);
    const ab = (n) => sh(inNs(['ab', '-q', '-k', '-n', String(n), '-c', String(CONNECTIONS), `http://127.0.0.1:${PORT}/`]));
    ab(Math.min(2000, REQUESTS));
    // The valgrind process's pid: the child of `ip netns exec`, or the same process after exec.
    const pid = Number(sh(['pgrep', '-n', '-f', `callgrind-out-file=${out}`]).trim());
    sh(['callgrind_control', '-z', String(pid)]);
    const report = ab(REQUESTS);
    const complete = Number(/Complete requests:\s+(\d+)/.exec(report)?.[1]);
    const failed = Number(/Failed requests:\s+(\d+)/.exec(report)?.[1]);
    const keepAlive = Number(/Keep-Alive requests:\s+(\d+)/.exec(report)?.[1]);
    if (complete !== REQUESTS || failed !== 0 || keepAlive !== REQUESTS)
      throw new Error(`${s.name}: ab completed ${complete}, failed ${failed}, kept alive ${keepAlive} of ${REQUESTS}`);
    sh(['callgrind_control', '-d', String(pid)]);
    const dumps = readdirSync(tmp).filter((f) => f.startsWith(`${s.slug}.callgrind.`));
    if (!dumps.length) throw new Error(`${s.name}: callgrind wrote no dump`);
    const text = readFileSync(join(tmp, dumps.sort().at(-1)), 'utf8');
    if (args.keep) writeFileSync(join(args.keep, `${s.slug}.callgrind`), text);
    const total = Number(/^(?:summary|totals):\s+(\d+)/m.exec(text)?.[1]);
    if (!(total > 0)) throw new Error(`${s.name}: callgrind counted nothing in ${s.loop}: was it inlined away?`);
    return { name: s.name, loop: s.loop, instructions: total, perRequest: total / REQUESTS };
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
    try {
      sh(['pkill', '-9', '-f', `callgrind-out-file=${out}`]);
    } catch {
      // gone
    }
    cleanup();
  }
}

const rows = [];
try {
  for (const s of servers) {
    process.stderr.write(`bench/instructions: ${s.name} …\n`);
    rows.push(await measure(s));
  }
} finally {
  cleanup();
  rmSync(tmp, { recursive: true, force: true });
}
const c = rows.find((r) => r.name === 'C epoll loop');
process.stdout.write(
  `${REQUESTS.toLocaleString('en-US')} requests (ab -k, ${CONNECTIONS} connections), user-space instructions in the event loop, by callgrind\n\n| server | counted from | instructions / request | vs C loop |\n|---|---|---:|---:|\n`,
);
for (const r of rows)
  process.stdout.write(
    `| ${r.name} | \`${r.loop}\` | ${Math.round(r.perRequest).toLocaleString('en-US')} | ${c ? `${(r.perRequest / c.perRequest).toFixed(2)}×` : '–'} |\n`,
  );
