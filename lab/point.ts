// One point, start to end: the only implementation of the phases every command runs
// (`lab up` is a one-point throughput sweep; `lab sweep` and `lab run` run many):
//   create  — fresh hosts on a lab network, each with its sysctls applied and read back
//   start   — the reactor (control API on its host's loopback); the load tool checked
//   observe — /stats, state reports, samplers on every host, the scenario drives,
//             samplers stop, state reports, /stats (the control API's own connections
//             stay outside the counted window)
//   record  — the verdicts and one point record (lab/record.ts)
//   destroy — the hosts go (unless the lab is kept: `lab up --keep`)
// The caller validated the point (labfile.ts) before anything was created.
import { listenOf } from './listen.js';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { differsFromKernelDefault, snapshot, type Snapshot } from '../sysctl/apply.js';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { sysctlSettings, type Point } from './labfile.js';
import { checkTool } from './loadgen/drivers.js';
import { counterDeltas, nonZero } from './observe/nstat.js';
import { stateReport, type StateReport } from './observe/reports.js';
import { startSampler, summarize, type Sample } from './observe/sampler.js';
import { startWatchers } from './observe/watchers.js';
import { watchListenCalls, type ListenCall } from './observe/listen-calls.js';
import { netnsInode } from './observe/tracer.js';
import { POINT_SCHEMA, type HostRecord, type PointRecord, type StatsWithCpu } from './record.js';
import type { Host, Lab, Runtime } from './runtime/runtime.js';
import { profileAllowing, URING_SYSCALLS, type SeccompProfile } from './runtime/seccomp.js';
import { coverVerdicts, notModelled, scenarioNamed, type Observations, type ScenarioContext } from './scenarios/index.js';
import { commandArgv, commandEnv, processWork, serverWork, startServer } from './server-host.js';
import type { PointConfig, ServerConfig } from '../core/fields.js';

/** The server host's own image (server.kind command with server.image, runtime docker): its CMD and environment. */
const ownImage = (s: ServerConfig) =>
  s.kind === 'command' && s.image !== undefined
    ? { image: { name: s.image, env: commandEnv(s), ...(s.command ? { cmd: commandArgv(s) } : {}) } }
    : {};

/** The lab being built or run, so an interrupt can tear it down from any phase. */
export interface LabHandle {
  runtime?: Runtime;
  runId?: string;
  creating?: Promise<unknown>;
}

export interface PointRun {
  runtime: Runtime;
  /** The run folder: raw/<id>/ and logs/<id>/ go under it. */
  dir: string;
  /** The lab's run id (namespace and container names). */
  runId: string;
  point: Point;
  repetition: number;
  /** The lab network may move to the next free /24 when the one asked for is taken (the default subnet). */
  subnetFallback: boolean;
  /** Leave the lab running after the point (its server too). */
  keep?: boolean;
  handle: LabHandle;
  progress: (line: string) => void;
  /** Called once the hosts exist (the sweep records the tools' versions from them). */
  onHosts?: (hosts: Host[]) => Promise<void>;
}

/**
 * The server host's seccomp profile on Docker when the point runs the io_uring backend: the
 * engine's default plus the io_uring syscalls (engines from 25.0 refuse them by default).
 * Elsewhere none: netns and rootless hosts have no filter, and a swarm service's API (engine
 * 20.10) takes no profile, so its nodes' default applies. Throws when the base is missing.
 */
export function seccompFor(runtime: Runtime['name'], c: PointConfig): SeccompProfile | undefined {
  return runtime === 'docker' && c.server.kind === 'tcplab' && c.server.io === 'io_uring' ? profileAllowing(URING_SYSCALLS) : undefined;
}

export const recordName = (p: Point, rep: number) => `${p.id}-r${rep}`;

export async function runPoint(o: PointRun): Promise<PointRecord> {
  const c = o.point.config;
  const impl = scenarioNamed(c.scenario.name);
  if (!impl) throw new Error(`no scenario "${c.scenario.name}"`);
  const options = impl.options.parse(c.scenario.options);
  const name = recordName(o.point, o.repetition);
  const startedAt = new Date().toISOString();
  const lg = c.loadgens[0]!;
  const seccomp = seccompFor(o.runtime.name, c);
  const specs = [
    { name: 'server', role: 'server' as const, sysctls: sysctlSettings(c.server.sysctls), requested: c.server.sysctls, caps: [] },
    ...Array.from({ length: lg.count }, (_, i) => ({
      name: `loadgen-${i + 1}`,
      role: 'loadgen' as const,
      sysctls: sysctlSettings(lg.sysctls),
      requested: lg.sysctls,
      caps: impl.loadgenCaps ?? [],
    })),
  ];

  // create: a point run again (after a failure, on --resume) starts from empty log and raw
  // folders, so no line of the last attempt (a "listening" the server printed then) is read.
  for (const sub of ['logs', 'raw']) rmSync(join(o.dir, sub, name), { recursive: true, force: true });
  Object.assign(o.handle, { runtime: o.runtime, runId: o.runId });
  // A server from the user's image listens as its container starts: the watch is attached first.
  const listenWatch = startListenWatch(o.runtime.name, c, join(o.dir, 'logs', name));
  if (c.server.image !== undefined) await listenWatch.ready;
  const creating = o.runtime.create({
    runId: o.runId,
    subnet: c.subnet,
    subnetFallback: o.subnetFallback,
    logDir: join(o.dir, 'logs', name),
    caps: Object.fromEntries(specs.filter((s) => s.caps.length).map((s) => [s.name, s.caps])),
    ...(seccomp ? { seccomp: { server: seccomp.json } } : {}),
    placement: Object.fromEntries(
      specs.map((h) => [h.name, h.role === 'server' ? c.placement.server : c.placement.loadgens] as const).filter(([, node]) => node !== undefined),
    ) as Record<string, string>,
    hosts: specs.map(({ name: n, role, sysctls }) => ({ name: n, role, sysctls, ...(n === 'server' ? ownImage(c.server) : {}) })),
  });
  o.handle.creating = creating.catch(() => {});
  let lab: Lab | undefined;
  let done = false;
  try {
    lab = await creating;
    const hosts = lab.hosts;
    const server = lab.host('server');
    const client = lab.host('loadgen-1');
    const clients = hosts.filter((h) => h.role === 'loadgen');
    const on = (h: Host) => (h.placedOn ? ` (node ${h.placedOn})` : '');
    o.progress(`hosts: ${hosts.map((h) => `${h.name} ${h.address}${on(h)}`).join(', ')}`);
    await o.onHosts?.(hosts);
    if (impl.usesLoadTool) for (const h of clients) await checkTool(h, lg.tool);
    const readBack = await snapshots(hosts);

    // start
    await listenWatch.ready;
    const srv = await startServer(server, c.server);

    // observe
    const raw = join('raw', name);
    // The server's own counts (its control API over the host's loopback) outside the window
    // of the state reports, whose counters would count that connection.
    const [statsBefore, procsBefore] = await Promise.all([srv.stats(), srv.processes()]);
    const before = await reportsOf(hosts, o.dir, 'before', raw);
    // How the server really listens (its own backlog, its sockets): what the rules are judged against.
    const listen = listenOf(
      before['server']!.listeners,
      c.server.port,
      server.address,
      Number(readBack['server']!['net.core.somaxconn']),
      c.server.backlog,
      c.server.kind === 'tcplab' && statsBefore
        ? { method: 'server /stats', backlogs: [statsBefore.backlog] }
        : { method: 'listen() syscall', backlogs: await listenWatch.backlogsOf(server) },
    );
    // The tracer and the capture (when asked for) first: the samplers' first samples and the scenario are in their window.
    const watchers = await startWatchers({
      trace: c.trace,
      capture: c.capture,
      hosts,
      client,
      port: c.server.port,
      logDir: join(o.dir, 'logs', name),
      progress: o.progress,
    });
    const samplers = hosts.map((h) => [h.name, startSampler(h, c.sampleIntervalMs)] as const);
    const ctx: ScenarioContext<typeof options> = {
      config: c,
      options,
      server,
      client,
      clients,
      port: c.server.port,
      controlPort: c.server.controlPort,
      control: srv,
      listen,
      serverSysctl: (n) => readBack['server']![n] ?? null,
      clientSysctl: (n) => readBack['loadgen-1']![n] ?? null,
      writeRaw: (file, text) => writeFileSync(join(o.dir, raw, file), text),
      progress: o.progress,
    };
    const series: Record<string, Sample[]> = {};
    let driven;
    let watched;
    try {
      await new Promise((r) => setTimeout(r, 150)); // a few samples before the scenario starts
      driven = await impl.drive(ctx);
    } finally {
      for (const [n, s] of samplers) series[n] = await s.stop();
      watched = await watchers.stop(join(o.dir, raw), raw);
    }
    const after = await reportsOf(hosts, o.dir, 'after', raw);
    const [statsAfter, procsAfter, atEnd] = await Promise.all([
      srv.stats().catch((): StatsWithCpu | null => null),
      srv.processes().catch(() => null),
      snapshots(hosts),
    ]);
    if (o.keep) srv.proc.release();
    else await srv.stop();

    // record
    const counters = Object.fromEntries(hosts.map((h) => [h.name, counterDeltas(before[h.name]!.counters, after[h.name]!.counters)]));
    const obs: Observations = { series, counters, ...watched.observations };
    const verdicts = coverVerdicts(notModelled(impl.model, c, options), impl.judge(ctx, driven, obs));
    const hostRecords: Record<string, HostRecord> = {};
    for (const h of hosts) {
      const spec = specs.find((s) => s.name === h.name)!;
      const delta = counters[h.name]!;
      const samples = series[h.name] ?? [];
      hostRecords[h.name] = {
        name: h.name,
        role: h.role,
        address: h.address,
        ...(h.placedOn ? { node: h.placedOn } : {}),
        capabilities: [...spec.caps],
        ...(seccomp && h.name === 'server' ? { seccomp: seccomp.describe } : {}),
        sysctls: {
          requested: Object.fromEntries(spec.sysctls.map((s) => [s.name, s.value])),
          readBack: readBack[h.name]!,
          atEnd: atEnd[h.name]!,
          differsFromKernelDefault: differsFromKernelDefault(readBack[h.name]!),
        },
        counters: { before: before[h.name]!.counters, after: after[h.name]!.counters, delta, nonZero: nonZero(delta) },
        states: { before: before[h.name]!.states, after: after[h.name]!.states },
        reports: { before: before[h.name]!.files, after: after[h.name]!.files },
        series: { summary: summarize(samples, h.role === 'server' ? c.server.port : undefined), samples },
      };
    }
    const served = srv.kind === 'tcplab' ? serverWork(statsBefore, statsAfter) : processWork(procsBefore, procsAfter);
    const { kind, model, threads, backlog, trigger, io, share, workUs, work, idleTimeoutMs } = c.server;
    const record: PointRecord = {
      schema: POINT_SCHEMA,
      id: name,
      point: o.point.id,
      repetition: o.repetition,
      settings: o.point.settings,
      runId: o.runId,
      runtime: o.runtime.name,
      startedAt,
      finishedAt: new Date().toISOString(),
      kept: o.keep ?? false,
      environment: { kernel: release(), cpus: cpus().length, node: process.version },
      config: c,
      server: {
        host: server.name,
        address: server.address,
        port: c.server.port,
        kind,
        options: { model, threads, backlog, trigger, io, share, workUs, work, idleTimeoutMs },
        requests: served.requests,
        cpuSec: served.cpuSec,
        stats: statsAfter,
        ...(procsAfter ? { processes: procsAfter } : {}),
        listener: hostRecords['server']!.series.summary.listener,
        listen,
      },
      hosts: hostRecords,
      scenario: { name: impl.name, observed: driven.observed, predicted: driven.predicted, ...(driven.load ? { load: driven.load } : {}), verdicts },
      ...watched.record,
    };
    done = true;
    return record;
  } finally {
    await listenWatch.stop();
    // A kept lab is one that ran to the end; a failed point never leaves anything.
    if (!o.keep || !done) {
      await o.handle.creating;
      await o.runtime.destroy(o.runId);
    }
  }
}

/**
 * The listen() calls on the server's port, watched from before the server starts, where the
 * syscall can be seen: root with bpftrace, a host on this machine's kernel (netns, docker), a
 * server other than the tcplab reactor (it reports its backlog in /stats). Elsewhere, and when
 * the tracer cannot run, no backlogs: the listen record falls back to Send-Q.
 */
function startListenWatch(runtime: Runtime['name'], c: PointConfig, logDir: string) {
  const wanted = c.server.kind !== 'tcplab' && (runtime === 'netns' || runtime === 'docker');
  const watching = wanted
    ? (mkdirSync(logDir, { recursive: true }), watchListenCalls(c.server.port, join(logDir, 'listen-calls.trace')))
    : Promise.resolve(null);
  let calls: Promise<ListenCall[]> | undefined;
  const stop = () => (calls ??= watching.then((w) => (w && 'stop' in w ? w.stop() : [])).catch(() => []));
  return {
    ready: watching.then(() => undefined),
    /** The backlogs passed to listen() on the port in the server host's network namespace (the watch stops). */
    async backlogsOf(server: Host): Promise<number[]> {
      if (!wanted) return [];
      const [ns, all] = await Promise.all([netnsInode(server).catch(() => null), stop()]);
      return all.filter((x) => x.netns === ns).map((x) => x.backlog);
    },
    stop,
  };
}

/** Each host's sysctls, read at once. */
async function snapshots(hosts: Host[]): Promise<Record<string, Snapshot>> {
  return Object.fromEntries(await Promise.all(hosts.map(async (h) => [h.name, await snapshot(h)] as const)));
}

async function reportsOf(hosts: Host[], dir: string, phase: string, sub: string): Promise<Record<string, StateReport>> {
  return Object.fromEntries(await Promise.all(hosts.map(async (h) => [h.name, await stateReport(h, dir, phase, sub)] as const)));
}
