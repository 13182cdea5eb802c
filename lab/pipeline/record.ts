// The point record: what one run of one point leaves on disk (points/<id>.json), and what
// `lab up --json` prints. One versioned shape for every command; README "Point records".
import type { ListenRecord } from './listen.js';
import type { ServerStats } from '../../native/index.js';
import { InputError } from '../../core/errors.js';
import { readJson } from '../../core/files.js';
import type { Snapshot, SysctlChange } from '../../sysctl/apply.js';
import type { PointConfig } from '../../core/fields.js';
import type { LoadgenCpu } from '../loadgen/drivers.js';
import type { LoadOptions, LoadResult, LoadTool } from '../loadgen/result.js';
import type { Counters } from '../observe/nstat.js';
import type { Sample, SeriesSummary } from '../observe/sampler.js';
import type { PortProcs } from '../in-host/port-procs.js';
import type { CaptureRecord, TraceRecord } from '../observe/watchers.js';

export const POINT_SCHEMA = 'tcplab.point/2';

/** A point record from disk, or one line naming the file and what is wrong with it. */
export function loadPoint(file: string): PointRecord {
  const rec = readJson(file) as Partial<PointRecord> | null;
  if (!rec || typeof rec !== 'object' || rec.schema !== POINT_SCHEMA || !rec.scenario || !rec.hosts || !rec.server) {
    throw new InputError(`${file}: not a ${POINT_SCHEMA} point record (schema ${JSON.stringify(rec?.schema ?? null)})`);
  }
  return rec as PointRecord;
}

export type Verdict = 'PASS' | 'FAIL' | 'INCONCLUSIVE';

export interface RuleVerdict {
  /** What the rule is about: the kernel (the default), or the server's own behaviour (its FAIL is no fault of the kernel's). */
  about?: 'kernel' | 'server';
  rule: string;
  predicted: number | string | null;
  observed: number | string | null;
  verdict: Verdict;
  reason: string;
}

/** A load generator's run, as a scenario that drives one records it. */
export interface LoadRecord {
  host: string;
  tool: LoadTool;
  options: LoadOptions;
  argv: string[];
  cpu: LoadgenCpu | null;
  loadgenBound: boolean;
  /** Why it was loadgen-bound, when the tool's own figures said so (httperf behind its schedule), not its CPU. */
  boundWhy?: string;
  result: LoadResult;
  /** Several load generators (loadgens.0.count > 1): each one's run; `result` is their merge, `cpu` null, `loadgenBound` any of theirs. */
  instances?: LoadInstance[];
  /** Why the merged result has no latency (a tool without histograms), when it has none. */
  latencyWhy?: string;
  /** Several load generators on one machine: whether each ran pinned to CPUs of its own, and if not, why. */
  pinning?: { pinned: boolean; why: string };
}

/** One of several load generators' runs. */
export interface LoadInstance {
  host: string;
  argv: string[];
  cpu: LoadgenCpu | null;
  loadgenBound: boolean;
  boundWhy?: string;
  result: LoadResult;
  /** The CPUs it was pinned to (taskset), when the load generators were pinned. */
  cpus?: number[];
}

/** A thread's context switches, from /proc/self/task/<tid>/status (absent for a shared entry). */
export interface ThreadSwitches {
  voluntaryCtxSwitches?: number;
  involuntaryCtxSwitches?: number;
}
/** The control API's /stats: the reactor's stats, per-thread context switches, the process's status and CPU time. */
export type StatsWithCpu = Omit<ServerStats, 'perThread'> & {
  perThread: Array<ServerStats['perThread'][number] & ThreadSwitches>;
  /** Its threads, RSS, PSS (smaps_rollup) and context switches (every thread's, ended ones included). */
  process?: { threads: number; rssKb: number; pssKb?: number; voluntaryCtxSwitches: number; involuntaryCtxSwitches: number };
  /** fork, prefork, reactor-procs: the child processes running now, their RSS, PSS and context switches summed. */
  children?: { processes: number; rssKb: number; pssKb?: number; voluntaryCtxSwitches: number; involuntaryCtxSwitches: number };
  cpu?: { userSec: number; systemSec: number };
};

export interface HostRecord {
  name: string;
  role: string;
  address: string;
  /** The swarm node it ran on (runtime swarm). */
  node?: string;
  /** Capabilities added to this host beyond the runtime's default. */
  capabilities: string[];
  /** docker: the seccomp profile it ran under when not the engine's default (the io_uring backend's). */
  seccomp?: string;
  sysctls: {
    /** As the point asked for them (name → value). */
    requested: Record<string, string>;
    /** Every registry sysctl as read back when the host was made, and at the end. */
    readBack: Snapshot;
    atEnd: Snapshot;
    differsFromKernelDefault: SysctlChange[];
  };
  /** From the state reports before and after the scenario. */
  counters: { before: Counters; after: Counters; delta: Counters; nonZero: Counters };
  states: { before: Record<string, number>; after: Record<string, number> };
  /** Raw state reports, relative to the run folder. */
  reports: { before: string[]; after: string[] };
  series: { summary: SeriesSummary; samples: Sample[] };
}

export interface ServerRecord {
  host: string;
  address: string;
  port: number;
  /** Which server ran: the lab's reactor, nginx, or the lab file's command. */
  kind: PointConfig['server']['kind'];
  options: Pick<PointConfig['server'], 'model' | 'threads' | 'backlog' | 'trigger' | 'io' | 'share' | 'workUs' | 'work' | 'idleTimeoutMs'>;
  /**
   * Requests served and CPU seconds used between the /stats answers before and after the
   * scenario; for another kind, the CPU of the processes holding its listener, and requests
   * null (it has no counters the lab can read).
   */
  requests: number | null;
  cpuSec: number | null;
  /** /stats at the end (tcplab). */
  stats: StatsWithCpu | null;
  /** Another kind: its processes at the end, as /proc shows them. */
  processes?: PortProcs;
  listener: SeriesSummary['listener'];
  /** How the server listened, read once it was up (records before it lack it). */
  listen?: ListenRecord;
}

/**
 * What the server's processes came to at the end of the point: threads, processes, RSS (each
 * process's, summed: pages they share are counted in each) and context switches since it
 * started (voluntary + involuntary). tcplab: its process and its child processes (fork,
 * prefork, reactor-procs); another kind: the processes holding its listener.
 */
export function serverFootprint(p: PointRecord): { threads: number; processes: number; rssKb: number; ctxSwitches: number } | null {
  const s = p.server.stats;
  if (s?.process) {
    const c = s.children;
    return {
      threads: s.process.threads + (c ? c.processes : 0),
      processes: 1 + (c?.processes ?? 0),
      rssKb: s.process.rssKb + (c?.rssKb ?? 0),
      ctxSwitches: s.process.voluntaryCtxSwitches + s.process.involuntaryCtxSwitches + (c ? c.voluntaryCtxSwitches + c.involuntaryCtxSwitches : 0),
    };
  }
  const f = p.server.processes;
  return f ? { threads: f.threads, processes: f.pids.length, rssKb: f.rssKb, ctxSwitches: f.voluntaryCtxSwitches + f.involuntaryCtxSwitches } : null;
}

/** Requests the server answered: its own count (tcplab), else what the load generator counted. */
export const servedRequests = (p: PointRecord): number | null => p.server.requests ?? p.scenario.load?.result.requests ?? null;

export interface ScenarioRecord<Obs = unknown, Pred = unknown> {
  name: string;
  observed: Obs;
  predicted: Pred;
  load?: LoadRecord;
  verdicts: RuleVerdict[];
}

export interface PointRecord<Obs = unknown, Pred = unknown> {
  schema: typeof POINT_SCHEMA;
  /** The point and repetition: p001-r1. */
  id: string;
  point: string;
  repetition: number;
  /** The axis values of this point. */
  settings: Record<string, string | number | boolean>;
  /** The lab's run id (what `lab down` and `lab status` name). */
  runId: string;
  runtime: string;
  startedAt: string;
  finishedAt: string;
  /** The lab was left running (`lab up --keep`). */
  kept: boolean;
  environment: { kernel: string; cpus: number; node: string };
  config: PointConfig;
  server: ServerRecord;
  hosts: Record<string, HostRecord>;
  scenario: ScenarioRecord<Obs, Pred>;
  /** The kernel event tracer's summary and events (`trace: true`), or why it did not run. */
  trace?: TraceRecord;
  /** The loadgen's packet capture and its per-connection timelines (`capture: true`), or why not. */
  capture?: CaptureRecord;
}
