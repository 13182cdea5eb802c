// The server as the orchestrator drives it from outside its host: start the server process
// (dist/server/main.js) and wait until it listens, call its control API from inside the
// host (its loopback), read its stats.
import { readFileSync } from 'node:fs';
import { PointError } from './errors.js';
import type { ServerConfig } from './fields.js';
import type { StatsWithCpu } from './record.js';
import type { Host, Proc } from './runtime/runtime.js';

/** Waits until the process's log holds a line matching `re`; fails if it exits first. */
export async function waitForLine(proc: Proc, re: RegExp, timeoutMs: number, what: string): Promise<string> {
  let exited: number | null | undefined;
  void proc.exited.then((c) => (exited = c));
  const end = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(proc.log, 'utf8');
    } catch {
      // Not written yet.
    }
    const line = text.split('\n').find((l) => re.test(l));
    if (line) return line;
    if (exited !== undefined || Date.now() > end) {
      const last = text.trim().split('\n').filter(Boolean).pop() ?? '(no output)';
      throw new PointError(`${what} ${exited !== undefined ? `exited (code ${exited})` : `not ready after ${timeoutMs / 1000} s`}: ${last}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Starts the reactor on a host (control API on its loopback) and waits until it listens. */
export async function startServer(host: Host, o: ServerConfig): Promise<Proc> {
  const proc = host.start(
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
  await waitForLine(proc, /"event":"listening"/, 15_000, 'server');
  return proc;
}

/** A control-API call from inside the server host (GET /stats, POST /pause, …). */
export async function control(host: Host, controlPort: number, path: string, method = 'GET'): Promise<string> {
  const r = await host.exec([...host.node('dist/lab/in-host/http-get.js'), `http://127.0.0.1:${controlPort}${path}`, method], { timeoutMs: 15_000 });
  if (r.exitCode !== 0) throw new PointError(`server: ${method} ${path} failed: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

export async function serverStats(host: Host, controlPort: number): Promise<StatsWithCpu> {
  return JSON.parse(await control(host, controlPort, '/stats')) as StatsWithCpu;
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
