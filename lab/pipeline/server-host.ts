// The server as the orchestrator drives it from outside its host: start the server process
// (dist/server/main.js) and wait until it listens, call its control API from inside the
// host (its loopback), read its stats.
import { PointError } from '../../core/errors.js';
import type { ServerConfig, ServerKind } from '../../core/fields.js';
import type { PortProcs } from '../in-host/port-procs.js';
import type { StatsWithCpu } from './record.js';
import type { Host, Proc } from '../runtime/runtime.js';
import { waitForLine, waitUntil } from '../runtime/proc-wait.js';

/** What the lab does with the server of a point, whatever its kind. */
export interface ServerControl {
  kind: ServerKind;
  proc: Proc;
  /** The reactor's /stats (tcplab); null for another kind. */
  stats(): Promise<StatsWithCpu | null>;
  /** The server's processes as /proc shows them (another kind: found by the listening socket); null for tcplab (its /stats says more). */
  processes(): Promise<PortProcs | null>;
  /** Stop accepting: the reactor's /pause; another kind's processes get SIGSTOP. */
  pause(): Promise<void>;
  /** Accept again: /resume, or SIGCONT. */
  resume(): Promise<void>;
  /** The reactor's accept rate (tcplab only: a scenario that needs it refuses other kinds up front). */
  setAcceptRate(perSecond: number): Promise<void>;
  /** Ends the server: SIGTERM (a paused foreign server gets SIGCONT first, or it would never see it), SIGKILL 3 s later. */
  stop(): Promise<void>;
}

/** Starts the point's server (its kind) on a host and waits until it listens. */
export async function startServer(host: Host, o: ServerConfig): Promise<ServerControl> {
  if (o.kind === 'tcplab') {
    const proc = startReactor(host, o);
    await waitForLine(proc, /"event":"listening"/, 15_000, 'server');
    return {
      kind: o.kind,
      proc,
      stats: () => serverStats(host, o.controlPort),
      processes: async () => null,
      pause: async () => void (await control(host, o.controlPort, '/pause', 'POST')),
      resume: async () => void (await control(host, o.controlPort, '/resume', 'POST')),
      setAcceptRate: async (n) => void (await control(host, o.controlPort, `/accept-rate?perSecond=${n}`, 'POST')),
      stop: () => proc.stop('SIGTERM'),
    };
  }
  const proc = o.kind === 'nginx' ? await startNginx(host, o) : startCommand(host, o);
  await waitForListener(
    host,
    proc,
    o.port,
    o.kind === 'nginx' ? 'nginx' : o.image && host.ownServer ? `server image ${o.image}` : `server command ${o.command![0]}`,
  );
  const signal = async (what: 'STOP' | 'CONT') => {
    const r = await portProcsIn(host, o.port, what);
    if (r.exitCode !== 0) throw new PointError(`server: port-procs ${what} failed: ${r.stderr.trim() || r.stdout.trim()}`);
  };
  return {
    kind: o.kind,
    proc,
    stats: async () => null,
    processes: async () => {
      const p = await listenerProcesses(host, o.port);
      if (!p) throw new PointError(`server: no process of server.kind ${o.kind} listens on port ${o.port} any more`);
      return p;
    },
    pause: () => signal('STOP'),
    resume: () => signal('CONT'),
    setAcceptRate: () => Promise.reject(new PointError(`server.kind ${o.kind} has no accept rate (the tcplab reactor's control API has)`)),
    stop: async () => {
      await signal('CONT').catch(() => {});
      await proc.stop('SIGTERM');
    },
  };
}

function startReactor(host: Host, o: ServerConfig): Proc {
  return host.start(
    [
      ...host.node('dist/server/main.js'),
      ...['--host', '0.0.0.0', '--port', String(o.port), '--control-host', '127.0.0.1', '--control-port', String(o.controlPort)],
      ...[
        '--model',
        o.model,
        '--threads',
        String(o.threads),
        '--backlog',
        String(o.backlog),
        '--trigger',
        o.trigger,
        '--io',
        o.io,
        '--share',
        o.share,
        '--work-us',
        String(o.workUs),
        '--work',
        o.work,
      ],
      ...['--idle-timeout', String(o.idleTimeoutMs), '--max-body-bytes', String(o.maxBodyBytes)],
      ...['--header-timeout', String(o.headerTimeoutMs), '--body-timeout', String(o.bodyTimeoutMs), '--max-connections', String(o.maxConnections)],
    ],
    'server',
  );
}

export const NGINX = '/usr/sbin/nginx';

/**
 * nginx's configuration for a point: `threads` worker processes, one listener with the point's
 * backlog, and `share` as the way the workers share it: accept_mutex on (accept: one worker at a
 * time takes new connections), off (exclusive: each worker's epoll has the listener with
 * EPOLLEXCLUSIVE, nginx's default), or a SO_REUSEPORT listener per worker (reuseport). It answers
 * every request `200 hello\n` as the reactor does, keeps connections as long (idleTimeoutMs), and
 * writes nothing but errors (to stderr, the log).
 */
export function nginxConf(o: ServerConfig, scratch: string, asRoot = false): string {
  const keepSec = Math.max(1, Math.round(o.idleTimeoutMs / 1000));
  return [
    'daemon off;',
    'master_process on;',
    // A master that runs as root makes its workers `nobody`, which the rootless runtime's user
    // namespace does not map (chown fails): the workers stay the master's user there and on netns.
    ...(asRoot ? ['user root;'] : []),
    `worker_processes ${o.threads};`,
    `pid ${scratch}/nginx.pid;`,
    'error_log stderr warn;',
    'worker_rlimit_nofile 20000;',
    'events {',
    '  worker_connections 16384;',
    `  accept_mutex ${o.share === 'accept' ? 'on' : 'off'};`,
    '}',
    'http {',
    '  access_log off;',
    '  default_type text/plain;',
    `  keepalive_timeout ${o.idleTimeoutMs === 0 ? 0 : keepSec}s;`,
    '  keepalive_requests 1000000000;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${scratch}/nginx-${t};`),
    '  server {',
    `    listen 0.0.0.0:${o.port} backlog=${o.backlog}${o.share === 'reuseport' ? ' reuseport' : ''};`,
    "    location / { return 200 'hello\n'; }",
    '  }',
    '}',
    '',
  ].join('\n');
}

async function startNginx(host: Host, o: ServerConfig): Promise<Proc> {
  const v = await host.exec([NGINX, '-v'], { timeoutMs: 10_000 });
  if (v.exitCode !== 0)
    throw new PointError(
      `server.kind nginx: ${NGINX} is missing in the server host (apt-get install -y nginx-light; the server image has it from \`lab images\`)`,
    );
  const uid = await host.exec(['id', '-u'], { timeoutMs: 10_000 });
  const conf = host.putFile('nginx.conf', nginxConf(o, host.scratchDir, uid.stdout.trim() === '0'));
  return host.start([NGINX, '-c', conf, '-e', 'stderr'], 'server');
}

/** The user's command, its {port}, {backlog} and {threads} filled in (and in its environment as PORT, BACKLOG, THREADS). */
export function commandArgv(o: ServerConfig): string[] {
  const vars: Record<string, string> = { port: String(o.port), backlog: String(o.backlog), threads: String(o.threads) };
  return o.command!.map((a) => a.replace(/\{(port|backlog|threads)\}/g, (_m, k: string) => vars[k]!));
}

/** The user's server's environment: PORT, BACKLOG and THREADS. */
export const commandEnv = (o: ServerConfig) => [`PORT=${o.port}`, `BACKLOG=${o.backlog}`, `THREADS=${o.threads}`];

function startCommand(host: Host, o: ServerConfig): Proc {
  // A host from the user's image runs its server already (its entrypoint).
  if (host.ownServer) return host.ownServer;
  // The environment goes through env(1): the same on every runtime, and no shell.
  return host.start(['env', ...commandEnv(o), ...commandArgv(o)], 'server');
}

const portProcsIn = (host: Host, port: number, what: 'stat' | 'STOP' | 'CONT') =>
  host.exec([...host.node('dist/lab/in-host/port-procs.js'), String(port), what], { timeoutMs: 15_000 });

/** The processes in a host that hold a listener on port (and their descendants), from /proc there; null when none does. */
export async function listenerProcesses(host: Host, port: number): Promise<PortProcs | null> {
  const r = await portProcsIn(host, port, 'stat');
  if (r.exitCode !== 0) return null;
  const p = JSON.parse(r.stdout) as PortProcs;
  return p.pids.length > 0 ? p : null;
}

/**
 * Waits until a process in the host listens on port; fails if the server exits first. Polled
 * with ss (20 ms a look here; port-procs, a node program, took 0.2 s).
 */
async function waitForListener(host: Host, proc: Proc, port: number, what: string): Promise<void> {
  const listening = async () => {
    const r = await host.exec(['ss', '-Hltn', 'sport', '=', `:${port}`], { timeoutMs: 10_000 });
    return r.exitCode === 0 && r.stdout.trim() !== '' ? true : undefined;
  };
  await waitUntil(proc, listening, 15_000, what, `is not listening on port ${port} after 15 s`, 100);
}

/**
 * A control-API call from inside the server host (GET /stats, POST /pause, …): one HTTP/1.0
 * request over bash's /dev/tcp, the answer read until the server closes. The script is fixed
 * text; the port, method and path are its arguments. A node client took 0.23 s a call here (its
 * start-up) against bash's 0.02 s, and every point makes two calls or more.
 */
const CONTROL_CALL = 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 3; printf "%s %s HTTP/1.0\\r\\n\\r\\n" "$2" "$3" >&3; cat <&3';

export async function control(host: Host, controlPort: number, path: string, method = 'GET'): Promise<string> {
  const r = await host.exec(['bash', '-c', CONTROL_CALL, 'control', String(controlPort), method, path], { timeoutMs: 15_000 });
  const answer = r.exitCode === 0 ? httpAnswer(r.stdout) : null;
  if (!answer || answer.status < 200 || answer.status > 299) {
    // bash says "connect: Connection refused" (and the redirection's line): one line, with errno's name.
    const said = r.stderr.trim().split('\n')[0] ?? '';
    const why = answer
      ? `HTTP ${answer.status} ${answer.body.trim()}`
      : r.timedOut
        ? 'no answer within 15 s'
        : /Connection refused/.test(said)
          ? `connection refused on 127.0.0.1:${controlPort} (ECONNREFUSED)`
          : said || `exit ${r.exitCode}`;
    throw new PointError(`server: ${method} ${path} failed: ${why}`);
  }
  return answer.body;
}

/** An HTTP/1.x answer read to its end: its status and body; null when it is not one. */
export function httpAnswer(text: string): { status: number; body: string } | null {
  const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(text);
  const end = text.indexOf('\r\n\r\n');
  if (!m || end < 0) return null;
  return { status: Number(m[1]), body: text.slice(end + 4) };
}

export async function serverStats(host: Host, controlPort: number): Promise<StatsWithCpu> {
  return JSON.parse(await control(host, controlPort, '/stats')) as StatsWithCpu;
}

/** Another kind's CPU seconds between two looks at its processes; the requests it served are not known (null). */
export function processWork(before: PortProcs | null, after: PortProcs | null): { requests: null; cpuSec: number | null } {
  const cpuOf = (p: PortProcs | null) => (p ? p.cpu.userSec + p.cpu.systemSec : null);
  const a = cpuOf(after);
  const b = cpuOf(before);
  return { requests: null, cpuSec: a !== null && b !== null ? Math.round((a - b) * 1000) / 1000 : null };
}

/** Requests served and CPU seconds used by the server between two /stats answers. */
export function serverWork(before: StatsWithCpu | null, after: StatsWithCpu | null): { requests: number; cpuSec: number | null } {
  const cpuOf = (s: StatsWithCpu | null) => (s?.cpu ? s.cpu.userSec + s.cpu.systemSec : null);
  const a = cpuOf(after);
  const b = cpuOf(before);
  return {
    requests: (after?.total.requests ?? 0) - (before?.total.requests ?? 0),
    cpuSec: a !== null && b !== null ? Math.round((a - b) * 1000) / 1000 : null,
  };
}
