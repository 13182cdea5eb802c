// One point, start to end: the only implementation of the phases every command runs
// (`lab up` is a one-point throughput sweep; `lab sweep` and `lab run` run many):
//   create  — fresh hosts on a lab network, each with its sysctls applied and read back
//   start   — the reactor (control API on its host's loopback); the load tool checked
//   observe — /stats, state reports, samplers on every host, the scenario drives,
//             samplers stop, state reports, /stats (the control API's own connections
//             stay outside the counted window)
//   record  — the verdicts and one point record (lab/pipeline/record.ts)
//   destroy — the hosts go (unless the lab is kept: `lab up --keep`)
// runPoint is those phases in order, each a function of its own with a typed result:
// planPoint → createHosts → readyHosts → start → observe → buildRecord (hostRecord per host).
// The caller validated the point (labfile.ts) before anything was created.
import { listenOf } from './listen.js';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { differsFromKernelDefault, snapshot, type Snapshot } from '../../sysctl/apply.js';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { sysctlSettings, type Point } from '../plan/labfile.js';
import { checkTool } from '../loadgen/drivers.js';
import { counterDeltas, nonZero } from '../observe/nstat.js';
import { stateReport, type StateReport } from '../observe/reports.js';
import { startSampler, summarize, type Sample } from '../observe/sampler.js';
import { startWatchers } from '../observe/watchers.js';
import { deferOf, watchListenCalls, type DeferCall, type ListenCall, type ListenWatchPool } from '../observe/listen-calls.js';
import { netnsInode } from '../observe/tracer.js';
import { POINT_SCHEMA, type HostRecord, type PointRecord, type StatsWithCpu } from './record.js';
import type { Host, Lab, Runtime } from '../runtime/runtime.js';
import { profileAllowing, URING_SYSCALLS, type SeccompProfile } from '../runtime/seccomp.js';
import { coverVerdicts, listenerGaps, notModelled, scenarioNamed, type Observations, type ScenarioContext } from '../scenarios/index.js';
import { commandArgv, commandEnv, processWork, serverWork, startServer } from './server-host.js';
import type { PointConfig, ServerConfig } from '../../core/fields.js';

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
  /** The sweep's listen() watches, one per port for all its points (without: one for this point). */
  listenWatches?: ListenWatchPool;
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
  const plan = planPoint(o);
  // A point run again (after a failure, on --resume) starts from empty log and raw folders, so
  // no line of the last attempt (a "listening" the server printed then) is read.
  for (const sub of ['logs', 'raw']) rmSync(join(o.dir, sub, plan.name), { recursive: true, force: true });
  Object.assign(o.handle, { runtime: o.runtime, runId: o.runId });
  // A server from the user's image listens as its container starts: the watch is attached first.
  const listenWatch = startListenWatch(o.runtime, plan.c, join(o.dir, 'logs', plan.name), o.listenWatches);
  if (plan.c.server.image !== undefined) await listenWatch.ready;
  const creating = createHosts(o, plan);
  o.handle.creating = creating.catch(() => {});
  let done = false;
  try {
    const hosts = await readyHosts(o, plan, await creating);
    await listenWatch.ready;
    const started = await start(o, plan, hosts, listenWatch);
    const observed = await observe(o, plan, hosts, started);
    const record = buildRecord(o, plan, hosts, started, observed);
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

/** What a point is before anything runs: its scenario and options, its record's name, its hosts. */
function planPoint(o: PointRun) {
  const c = o.point.config;
  const impl = scenarioNamed(c.scenario.name);
  if (!impl) throw new Error(`no scenario "${c.scenario.name}"`);
  const lg = c.loadgens[0]!;
  const loadgenCaps = impl.loadgenCaps ?? [];
  const specs = [
    { name: 'server', role: 'server' as const, sysctls: sysctlSettings(c.server.sysctls), caps: [] as typeof loadgenCaps },
    ...Array.from({ length: lg.count }, (_, i) => ({
      name: `loadgen-${i + 1}`,
      role: 'loadgen' as const,
      sysctls: sysctlSettings(lg.sysctls),
      caps: loadgenCaps,
    })),
  ];
  return {
    c,
    impl,
    options: impl.options.parse(c.scenario.options),
    name: recordName(o.point, o.repetition),
    startedAt: new Date().toISOString(),
    seccomp: seccompFor(o.runtime.name, c),
    specs,
  };
}
type PointPlan = ReturnType<typeof planPoint>;

/** create: fresh hosts on a lab network, each with its sysctls applied. */
function createHosts(o: PointRun, { c, name, specs, seccomp }: PointPlan): Promise<Lab> {
  return o.runtime.create({
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
}

/** The lab's hosts by part, shown; the load tool checked on each loadgen; every host's sysctls read back. */
async function readyHosts(o: PointRun, { c, impl }: PointPlan, lab: Lab) {
  const hosts = lab.hosts;
  const on = (h: Host) => (h.placedOn ? ` (node ${h.placedOn})` : '');
  o.progress(`hosts: ${hosts.map((h) => `${h.name} ${h.address}${on(h)}`).join(', ')}`);
  await o.onHosts?.(hosts);
  const clients = hosts.filter((h) => h.role === 'loadgen');
  if (impl.usesLoadTool) for (const h of clients) await checkTool(h, c.loadgens[0]!.tool);
  return { all: hosts, server: lab.host('server'), client: lab.host('loadgen-1'), clients, readBack: await snapshots(hosts) };
}
type PointHosts = Awaited<ReturnType<typeof readyHosts>>;

/**
 * start: the server, then what is read before the scenario: the server's own counts (its
 * control API over the host's loopback, outside the window of the state reports, whose counters
 * would count that connection), the state reports, and how the server really listens (its own
 * backlog, its sockets): what the rules are judged against.
 */
async function start(o: PointRun, { c, name }: PointPlan, h: PointHosts, listenWatch: ReturnType<typeof startListenWatch>) {
  const srv = await startServer(h.server, c.server);
  const raw = join('raw', name);
  const [statsBefore, procsBefore] = await Promise.all([srv.stats(), srv.processes()]);
  const before = await reportsOf(h.all, o.dir, 'before', raw);
  const listen = listenOf(
    before['server']!.listeners,
    c.server.port,
    h.server.address,
    Number(h.readBack['server']!['net.core.somaxconn']),
    c.server.backlog,
    c.server.kind === 'tcplab' && statsBefore
      ? { method: 'server /stats', backlogs: [statsBefore.backlog] }
      : { method: 'listen() syscall', ...(await listenWatch.backlogsOf(h.server)) },
  );
  return { srv, raw, statsBefore, procsBefore, before, listen };
}
type Started = Awaited<ReturnType<typeof start>>;

/**
 * observe: the tracer and the capture (when asked for) first, so the samplers' first samples and
 * the scenario are in their window; the samplers; the scenario; then everything stops, and the
 * state reports, /stats and the sysctls are read again. The server stops (unless the lab is kept).
 */
async function observe(o: PointRun, { c, impl, options, name }: PointPlan, h: PointHosts, s: Started) {
  const watchers = await startWatchers({
    trace: c.trace,
    capture: c.capture,
    hosts: h.all,
    client: h.client,
    port: c.server.port,
    logDir: join(o.dir, 'logs', name),
    progress: o.progress,
  });
  const samplers = h.all.map((host) => [host.name, startSampler(host, c.sampleIntervalMs)] as const);
  const ctx: ScenarioContext<typeof options> = {
    config: c,
    options,
    server: h.server,
    client: h.client,
    clients: h.clients,
    port: c.server.port,
    controlPort: c.server.controlPort,
    control: s.srv,
    listen: s.listen,
    serverSysctl: (n) => h.readBack['server']![n] ?? null,
    clientSysctl: (n) => h.readBack['loadgen-1']![n] ?? null,
    writeRaw: (file, text) => writeFileSync(join(o.dir, s.raw, file), text),
    progress: o.progress,
  };
  const series: Record<string, Sample[]> = {};
  let driven;
  let watched;
  try {
    await new Promise((r) => setTimeout(r, 150)); // a few samples before the scenario starts
    driven = await impl.drive(ctx);
  } finally {
    for (const [n, sampler] of samplers) series[n] = await sampler.stop();
    watched = await watchers.stop(join(o.dir, s.raw), s.raw);
  }
  const after = await reportsOf(h.all, o.dir, 'after', s.raw);
  const [statsAfter, procsAfter, atEnd] = await Promise.all([
    s.srv.stats().catch((): StatsWithCpu | null => null),
    s.srv.processes().catch(() => null),
    snapshots(h.all),
  ]);
  if (o.keep) s.srv.proc.release();
  else await s.srv.stop();
  const counters = Object.fromEntries(h.all.map((x) => [x.name, counterDeltas(s.before[x.name]!.counters, after[x.name]!.counters)]));
  const obs: Observations = { series, counters, ...watched.observations };
  const gaps = [...notModelled(impl.model, c, options), ...listenerGaps(impl.listenerCovers, ctx.listen, c, options)];
  const verdicts = coverVerdicts(gaps, impl.judge(ctx, driven, obs));
  return { driven, watched, series, counters, after, statsAfter, procsAfter, atEnd, verdicts };
}
type Observed = Awaited<ReturnType<typeof observe>>;

/** record: one point record (lab/pipeline/record.ts) from what the phases found. */
function buildRecord(o: PointRun, p: PointPlan, h: PointHosts, s: Started, r: Observed): PointRecord {
  const { c } = p;
  const hosts = Object.fromEntries(h.all.map((host) => [host.name, hostRecord(p, h, s, r, host)]));
  const served = s.srv.kind === 'tcplab' ? serverWork(s.statsBefore, r.statsAfter) : processWork(s.procsBefore, r.procsAfter);
  const { kind, model, threads, backlog, trigger, io, share, workUs, work, idleTimeoutMs } = c.server;
  return {
    schema: POINT_SCHEMA,
    id: p.name,
    point: o.point.id,
    repetition: o.repetition,
    settings: o.point.settings,
    runId: o.runId,
    runtime: o.runtime.name,
    startedAt: p.startedAt,
    finishedAt: new Date().toISOString(),
    kept: o.keep ?? false,
    environment: { kernel: release(), cpus: cpus().length, node: process.version },
    config: c,
    server: {
      host: h.server.name,
      address: h.server.address,
      port: c.server.port,
      kind,
      options: { model, threads, backlog, trigger, io, share, workUs, work, idleTimeoutMs },
      requests: served.requests,
      cpuSec: served.cpuSec,
      stats: r.statsAfter,
      ...(r.procsAfter ? { processes: r.procsAfter } : {}),
      listener: hosts['server']!.series.summary.listener,
      listen: s.listen,
    },
    hosts,
    scenario: {
      name: p.impl.name,
      observed: r.driven.observed,
      predicted: r.driven.predicted,
      ...(r.driven.load ? { load: r.driven.load } : {}),
      verdicts: r.verdicts,
    },
    ...r.watched.record,
  };
}

/** One host's part of the record: its sysctls asked for, read back and at the end, counters, socket states, series. */
function hostRecord({ c, specs, seccomp }: PointPlan, h: PointHosts, s: Started, r: Observed, host: Host): HostRecord {
  const spec = specs.find((x) => x.name === host.name)!;
  const delta = r.counters[host.name]!;
  const samples = r.series[host.name] ?? [];
  const [before, after] = [s.before[host.name]!, r.after[host.name]!];
  return {
    name: host.name,
    role: host.role,
    address: host.address,
    ...(host.placedOn ? { node: host.placedOn } : {}),
    capabilities: [...spec.caps],
    ...(seccomp && host.name === 'server' ? { seccomp: seccomp.describe } : {}),
    sysctls: {
      requested: Object.fromEntries(spec.sysctls.map((x) => [x.name, x.value])),
      readBack: h.readBack[host.name]!,
      atEnd: r.atEnd[host.name]!,
      differsFromKernelDefault: differsFromKernelDefault(h.readBack[host.name]!),
    },
    counters: { before: before.counters, after: after.counters, delta, nonZero: nonZero(delta) },
    states: { before: before.states, after: after.states },
    reports: { before: before.files, after: after.files },
    series: { summary: summarize(samples, host.role === 'server' ? c.server.port : undefined), samples },
  };
}

/**
 * The listen() calls on the server's port, watched from before the server starts, where the
 * syscall can be seen: root with bpftrace, a host on this machine's kernel (netns, docker), a
 * server other than the tcplab reactor (it reports its backlog in /stats). Elsewhere, and when
 * the tracer cannot run, no backlogs: the listen record falls back to Send-Q.
 */
function startListenWatch(runtime: Runtime, c: PointConfig, logDir: string, pool?: ListenWatchPool) {
  const wanted = c.server.kind !== 'tcplab' && runtime.sameKernel;
  const file = join(logDir, 'listen-calls.trace');
  const watching = wanted
    ? (mkdirSync(logDir, { recursive: true }), pool ? pool.begin(c.server.port, file) : watchListenCalls(c.server.port, file))
    : Promise.resolve(null);
  type Seen = { listens: ListenCall[]; defers: DeferCall[] };
  const none: Seen = { listens: [], defers: [] };
  let calls: Promise<Seen> | undefined;
  const stop = (until?: (c: ListenCall[]) => boolean) =>
    (calls ??= watching.then((w) => (w && 'stop' in w ? w.stop(until) : none)).catch(() => none));
  return {
    ready: watching.then(() => undefined),
    /**
     * The backlogs passed to listen() on the port in the server host's network namespace, and
     * the TCP_DEFER_ACCEPT set on the socket that listened (the watch stops once a listen() is in its output:
     * the server listens already, so the call was made).
     */
    async backlogsOf(server: Host): Promise<{ backlogs: number[]; why?: string; deferAcceptSec?: number }> {
      if (c.server.kind === 'tcplab') return { backlogs: [] };
      if (!runtime.sameKernel)
        return { backlogs: [], why: `the ${runtime.name} runtime's hosts are not on this machine's kernel, where bpftrace runs` };
      const w = await watching;
      if (w && 'unavailable' in w) return { backlogs: [], why: w.unavailable };
      const ns = await netnsInode(server).catch(() => null);
      const seen = await stop((c) => c.some((x) => x.netns === ns));
      const listens = seen.listens.filter((x) => x.netns === ns);
      const backlogs = listens.map((x) => x.backlog);
      const defer = deferOf(listens, seen.defers);
      const deferred = defer ? { deferAcceptSec: defer } : {};
      return backlogs.length ? { backlogs, ...deferred } : { backlogs, why: 'no listen() call on the port was seen in the server host', ...deferred };
    },
    stop: () => stop(),
  };
}

/** Each host's sysctls, read at once. */
async function snapshots(hosts: Host[]): Promise<Record<string, Snapshot>> {
  return Object.fromEntries(await Promise.all(hosts.map(async (h) => [h.name, await snapshot(h)] as const)));
}

async function reportsOf(hosts: Host[], dir: string, phase: string, sub: string): Promise<Record<string, StateReport>> {
  return Object.fromEntries(await Promise.all(hosts.map(async (h) => [h.name, await stateReport(h, dir, phase, sub)] as const)));
}
