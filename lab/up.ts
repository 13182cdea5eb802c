// `lab up`: one run of the default lab. Phases: prepare (validate everything, before
// anything is created) → create (fresh hosts, sysctls applied and read back) → start
// (server, samplers) → observe (state reports, load, state reports) → record (results/<run-id>/)
// → destroy (unless --keep). Progress goes to stderr; the summary or the JSON to stdout.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { release, cpus } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ServerStats } from '../native/index.js';
import { differsFromKernelDefault, snapshot, type Snapshot, type SysctlChange } from '../sysctl/apply.js';
import type { SysctlSetting } from '../sysctl/registry.js';
import { checkTool, runLoad, type LoadRun } from './loadgen/drivers.js';
import type { LoadOptions, LoadTool } from './loadgen/result.js';
import { counterDeltas, nonZero, type Counters } from './observe/nstat.js';
import { stateReport, type StateReport } from './observe/reports.js';
import { startSampler, summarize, type Sample, type Sampler, type SeriesSummary } from './observe/sampler.js';
import { getRuntime, type RuntimeName } from './runtime/index.js';
import type { Host, Lab, Proc, Runtime } from './runtime/runtime.js';
import type { Model, Trigger } from '../native/index.js';

export const RESULT_SCHEMA = 'tcplab.run/1';

export interface UpOptions {
  runtime: RuntimeName;
  subnet: string;
  /** The subnet is the default one: another free /24 will do when it is taken. */
  subnetFallback?: boolean;
  model: Model;
  threads: number;
  backlog: number;
  trigger: Trigger;
  idleTimeoutMs: number;
  port: number;
  controlPort: number;
  loadgen: LoadTool;
  load: Omit<LoadOptions, 'url'>;
  serverSysctls: SysctlSetting[];
  clientSysctls: SysctlSetting[];
  sampleIntervalMs: number;
  resultsDir: string;
  keep: boolean;
  /** Progress lines (stderr). */
  progress: (line: string) => void;
}

export interface HostRecord {
  name: string;
  role: string;
  address: string;
  /** Capabilities added to this host beyond the runtime's default (none for `lab up`). */
  capabilities: string[];
  sysctls: { applied: Array<{ name: string; requested: string; readBack: string }>; atStart: Snapshot; atEnd: Snapshot; differsFromKernelDefault: SysctlChange[] };
  counters: { before: Counters; after: Counters; delta: Counters; nonZero: Counters };
  states: { before: Record<string, number>; after: Record<string, number> };
  reports: { before: string[]; after: string[] };
  series: { summary: SeriesSummary; samples: Sample[] };
}

export interface RunRecord {
  schema: typeof RESULT_SCHEMA;
  runId: string;
  runtime: string;
  startedAt: string;
  finishedAt: string;
  kept: boolean;
  environment: { kernel: string; cpus: number; node: string };
  server: {
    host: string;
    address: string;
    port: number;
    options: { model: Model; threads: number; backlog: number; trigger: Trigger; idleTimeoutMs: number };
    /** Counters over the load (after − before) and at the end. */
    requests: number;
    cpuSec: number | null;
    stats: (ServerStats & { cpu?: { userSec: number; systemSec: number } }) | null;
    listener: { port: number; sendQ: number; peakRecvQ: number } | null;
  };
  load: {
    host: string;
    tool: LoadTool;
    options: LoadOptions;
    argv: string[];
    cpu: LoadRun['cpu'];
    loadgenBound: boolean;
    result: LoadRun['result'];
  };
  hosts: Record<string, HostRecord>;
}

export function newRunId(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const d = `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}-${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
  return `${d}-${randomBytes(2).toString('hex')}`;
}

/** Writes JSON so that a reader sees the old file or the whole new one, never a part. */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, path);
}

/** Waits until the process's log holds a line matching `re`; fails if it exits first. */
export async function waitForLine(proc: Proc, re: RegExp, timeoutMs: number, what: string): Promise<string> {
  let exited: number | null | undefined;
  void proc.exited.then((c) => (exited = c));
  const end = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(proc.log, 'utf8');
    } catch {}
    const line = text.split('\n').find((l) => re.test(l));
    if (line) return line;
    if (exited !== undefined || Date.now() > end) {
      const last = text.trim().split('\n').filter(Boolean).pop() ?? '(no output)';
      throw new UpError(`${what} ${exited !== undefined ? `exited (code ${exited})` : `not ready after ${timeoutMs / 1000} s`}: ${last}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

export class UpError extends Error {
  override name = 'UpError';
}

export type ServerConfig = Pick<UpOptions, 'port' | 'controlPort' | 'model' | 'threads' | 'backlog' | 'trigger' | 'idleTimeoutMs'>;

/** Starts the reactor on a host (control API on its loopback) and waits until it listens. */
export async function startServer(host: Host, o: ServerConfig): Promise<Proc> {
  const proc = host.start(
    [
      ...host.node('dist/server/main.js'),
      '--host', '0.0.0.0', '--port', String(o.port), '--control-host', '127.0.0.1', '--control-port', String(o.controlPort),
      '--model', o.model, '--threads', String(o.threads), '--backlog', String(o.backlog), '--trigger', o.trigger,
      '--idle-timeout', String(o.idleTimeoutMs),
    ],
    'server',
  );
  await waitForLine(proc, /"event":"listening"/, 15_000, 'server');
  return proc;
}

/** A control-API call from inside the server host (GET /stats, POST /pause, …). */
export async function control(host: Host, controlPort: number, path: string, method = 'GET'): Promise<string> {
  const r = await host.exec([...host.node('dist/lab/observe/http-get.js'), `http://127.0.0.1:${controlPort}${path}`, method], { timeoutMs: 15_000 });
  if (r.exitCode !== 0) throw new UpError(`server: ${method} ${path} failed: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

export async function serverStats(host: Host, controlPort: number): Promise<RunRecord['server']['stats']> {
  return JSON.parse(await control(host, controlPort, '/stats')) as RunRecord['server']['stats'];
}

/** Requests served and CPU seconds used by the server between two /stats answers. */
export function serverWork(before: RunRecord['server']['stats'], after: RunRecord['server']['stats']): { requests: number; cpuSec: number | null } {
  const cpuOf = (s: RunRecord['server']['stats']) => (s?.cpu ? s.cpu.userSec + s.cpu.systemSec : null);
  const a = cpuOf(after);
  const b = cpuOf(before);
  return { requests: (after?.total.requests ?? 0) - (before?.total.requests ?? 0), cpuSec: a !== null && b !== null ? Math.round((a - b) * 1000) / 1000 : null };
}

/** The lab being built or run, so an interrupt can tear it down from any phase. */
export interface UpHandle {
  runtime?: Runtime;
  runId?: string;
  creating?: Promise<unknown>;
}

export async function up(o: UpOptions, handle: UpHandle = {}): Promise<{ record: RunRecord; dir: string }> {
  const runtime = await getRuntime(o.runtime, { progress: o.progress });
  const runId = newRunId();
  const dir = join(o.resultsDir, runId);
  const logDir = join(dir, 'logs');
  mkdirSync(logDir, { recursive: true });
  Object.assign(handle, { runtime, runId });
  const startedAt = new Date().toISOString();

  o.progress(`lab up: run ${runId} on ${runtime.name}; results in ${dir}/`);
  const creating = runtime.create({
    runId,
    subnet: o.subnet,
    subnetFallback: o.subnetFallback ?? false,
    logDir,
    hosts: [
      { name: 'server', role: 'server', sysctls: o.serverSysctls },
      { name: 'loadgen-1', role: 'loadgen', sysctls: o.clientSysctls },
    ],
  });
  handle.creating = creating.catch(() => {});
  let lab: Lab | undefined;
  let done = false;
  try {
    lab = await creating;
    const server = lab.host('server');
    const client = lab.host('loadgen-1');
    o.progress(`lab up: hosts server ${server.address}, loadgen-1 ${client.address}`);
    await checkTool(client, o.loadgen);

    const atStart: Record<string, Snapshot> = {};
    const before: Record<string, StateReport> = {};
    for (const h of lab.hosts) {
      atStart[h.name] = await snapshot(h);
      before[h.name] = await stateReport(h, dir, 'before');
    }

    const serverProc = await startServer(server, o);
    const statsBefore = await serverStats(server, o.controlPort);

    const samplers = new Map<string, Sampler>(lab.hosts.map((h) => [h.name, startSampler(h, o.sampleIntervalMs)]));
    const loadOptions: LoadOptions = { ...o.load, url: `http://${server.address}:${o.port}/` };
    const what = loadOptions.durationSec !== undefined ? `${loadOptions.durationSec} s` : `${loadOptions.requests} requests`;
    o.progress(`lab up: ${o.loadgen} from loadgen-1, ${loadOptions.connections} connections, ${what}${loadOptions.keepAlive === false ? ', new connection per request' : ''} …`);
    let load: LoadRun;
    const series: Record<string, Sample[]> = {};
    try {
      load = await runLoad(client, o.loadgen, loadOptions);
    } finally {
      for (const [name, s] of samplers) series[name] = await s.stop();
    }
    const statsAfter = await serverStats(server, o.controlPort);

    const after: Record<string, StateReport> = {};
    const atEnd: Record<string, Snapshot> = {};
    for (const h of lab.hosts) {
      after[h.name] = await stateReport(h, dir, 'after');
      atEnd[h.name] = await snapshot(h);
    }
    if (o.keep) serverProc.release();
    else await serverProc.stop('SIGTERM');

    const hosts: Record<string, HostRecord> = {};
    for (const h of lab.hosts) {
      const delta = counterDeltas(before[h.name]!.counters, after[h.name]!.counters);
      const spec = h.role === 'server' ? o.serverSysctls : o.clientSysctls;
      hosts[h.name] = {
        name: h.name,
        role: h.role,
        address: h.address,
        capabilities: [],
        sysctls: {
          applied: spec.map((s) => ({ name: s.name, requested: s.value, readBack: atStart[h.name]![s.name] ?? '' })),
          atStart: atStart[h.name]!,
          atEnd: atEnd[h.name]!,
          differsFromKernelDefault: differsFromKernelDefault(atStart[h.name]!),
        },
        counters: { before: before[h.name]!.counters, after: after[h.name]!.counters, delta, nonZero: nonZero(delta) },
        states: { before: before[h.name]!.states, after: after[h.name]!.states },
        reports: { before: before[h.name]!.files, after: after[h.name]!.files },
        series: { summary: summarize(series[h.name] ?? [], h.role === 'server' ? o.port : undefined), samples: series[h.name] ?? [] },
      };
    }
    const work = serverWork(statsBefore, statsAfter);
    const record: RunRecord = {
      schema: RESULT_SCHEMA,
      runId,
      runtime: runtime.name,
      startedAt,
      finishedAt: new Date().toISOString(),
      kept: o.keep,
      environment: { kernel: release(), cpus: cpus().length, node: process.version },
      server: {
        host: 'server',
        address: server.address,
        port: o.port,
        options: { model: o.model, threads: o.threads, backlog: o.backlog, trigger: o.trigger, idleTimeoutMs: o.idleTimeoutMs },
        requests: work.requests,
        cpuSec: work.cpuSec,
        stats: statsAfter,
        listener: hosts['server']!.series.summary.listener,
      },
      load: { host: 'loadgen-1', tool: o.loadgen, options: loadOptions, argv: load.argv, cpu: load.cpu, loadgenBound: load.loadgenBound, result: load.result },
      hosts,
    };
    writeFileSync(join(dir, 'raw', `loadgen-1-${o.loadgen}.out.txt`), load.stdout + (load.stderr ? `\n--- stderr ---\n${load.stderr}` : ''));
    writeJsonAtomic(join(dir, 'result.json'), record);
    done = true;
    return { record, dir };
  } finally {
    // --keep leaves a lab that ran to the end; a failed run never leaves anything.
    if (!o.keep || !done) {
      await handle.creating;
      await runtime.destroy(runId);
    }
  }
}
