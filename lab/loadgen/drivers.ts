// The load-generator drivers behind one call: runLoad(host, tool, options) builds the
// tool's argv, runs it inside the loadgen host under cpu-wrap, and returns one
// LoadResult plus the tool's own CPU use. A missing tool is a one-line LoadgenError.
import type { Host } from '../runtime/runtime.js';

/** How a host names the project's files and runs its Node programs: all a tool's argv needs. */
type HostPaths = Pick<Host, 'node' | 'file'>;
import { abArgv, parseAb } from './ab.js';
import { arrivalsArgv, parseArrivals } from './arrivals.js';
import { autocannonArgv, parseAutocannon } from './autocannon.js';
import { httperfArgv, httperfBehind, httperfResult, parseHttperf } from './httperf.js';
import { CPU_MARK } from '../in-host/cpu-wrap.js';
import { LoadgenError, type LoadOptions, type LoadResult, type LoadTool } from './result.js';
import { parseWrk, wrkArgv } from './wrk.js';

export { TOOLS } from '../../core/fields.js';

interface Driver {
  /** How to get it, for the "missing" message. */
  install: string;
  /** A program of the lab's own (it comes with npm install): nothing to check on the host. */
  bundled?: true;
  /** It prints its own CPU as cpu-wrap does (the last stderr line): no wrapper process starts before it. */
  ownCpu?: true;
  /** Open loop: new connections at a rate, as many at once as the server's pace needs (no pool of `connections`). */
  openLoop?: true;
  /** What runs to tell whether it is installed (exit 127: not found); the tool's version flag by default. */
  probe?: string[];
  argv(o: LoadOptions, host: HostPaths): string[];
  /**
   * Its result, and for a tool whose CPU says nothing of its pace (it polls), why its own
   * figures say it, not the server, set the pace (null: they do not). Without `behind`: CPU busy
   * on its threads (BOUND_SHARE).
   */
  parse(stdout: string, stderr: string, o: LoadOptions): LoadResult | { result: LoadResult; behind: string | null };
}

export const DRIVERS: Record<LoadTool, Driver> = {
  autocannon: {
    install: 'it comes with npm install (node_modules/autocannon)',
    bundled: true,
    ownCpu: true,
    argv: (o, host) => autocannonArgv(o, host.node('dist/lab/in-host/autocannon-us.js')),
    parse: (out) => parseAutocannon(out),
  },
  ab: { install: 'apt-get install -y apache2-utils', argv: (o) => abArgv(o), parse: (out, err) => parseAb(out + err) },
  wrk: {
    install: 'apt-get install -y wrk',
    argv: (o, host) => wrkArgv(o, 'wrk', host.file('lab/in-host/pipeline.lua')),
    parse: (out, err) => parseWrk(out + err, 'wrk'),
  },
  arrivals: {
    install: "it comes with npm install (the lab's own open-loop client, lab/in-host/arrivals.ts)",
    bundled: true,
    openLoop: true,
    argv: (o, host) => arrivalsArgv(o, host.node('dist/lab/in-host/arrivals.js')),
    parse: (out) => parseArrivals(out),
  },
  httperf: {
    install: 'apt-get install -y httperf',
    openLoop: true,
    // `httperf --version` would also make a connection (to localhost:80).
    probe: ['httperf', '--help'],
    argv: (o) => httperfArgv(o),
    parse: (out, err, o) => {
      const h = parseHttperf(out + err);
      return { result: httperfResult(h), behind: httperfBehind(h, o.rate!) };
    },
  },
  wrk2: {
    install: 'wrk2 is not in Debian: build it from https://github.com/giltene/wrk2 and install it as wrk2 on the PATH',
    argv: (o, host) => wrkArgv(o, 'wrk2', host.file('lab/in-host/pipeline.lua')),
    parse: (out, err) => parseWrk(out + err, 'wrk2'),
  },
};

export interface LoadgenCpu {
  userSec: number;
  systemSec: number;
  wallSec: number;
  /** (user + system) / wall: 1.0 = one core busy the whole run. */
  cores: number;
}

export interface LoadRun {
  argv: string[];
  result: LoadResult;
  cpu: LoadgenCpu | null;
  /** The tool used (nearly) all the CPU its threads can, or fell behind its own schedule: the numbers say more about the loadgen than the server. */
  loadgenBound: boolean;
  /** Why, when the tool's own figures (not its CPU) said so. */
  boundWhy?: string;
  stdout: string;
  stderr: string;
}

/**
 * CPU busy at or above this share of the tool's threads flags the run as loadgen-bound.
 * Measured here: autocannon with its one JS thread pegged shows 0.80 cores over its
 * wall time (start-up and the idle last moments included), so "near one core" is >= 0.75.
 */
export const BOUND_SHARE = 0.75;

export function splitCpu(stderr: string): { stderr: string; cpu: LoadgenCpu | null } {
  const i = stderr.lastIndexOf(CPU_MARK);
  if (i < 0) return { stderr, cpu: null };
  const c = JSON.parse(stderr.slice(i + CPU_MARK.length).split('\n')[0]!) as Omit<LoadgenCpu, 'cores'>;
  return { stderr: stderr.slice(0, i).replace(/\n+$/, ''), cpu: { ...c, cores: c.wallSec > 0 ? (c.userSec + c.systemSec) / c.wallSec : 0 } };
}

export function toolThreads(tool: LoadTool, o: LoadOptions): number {
  if (tool === 'ab' || DRIVERS[tool].openLoop) return 1;
  if (tool === 'autocannon') return Math.max(1, o.threads ?? 1);
  return Math.min(o.threads ?? 1, o.connections);
}

const missingTool = (host: Host, tool: LoadTool) =>
  new LoadgenError(`${tool} is not installed on ${host.name}: ${DRIVERS[tool].install} (or use --loadgen autocannon)`, 'missing');

/** Throws the driver's usage error for options it cannot honour, before any host exists. */
export function validateLoad(tool: LoadTool, o: LoadOptions): void {
  DRIVERS[tool].argv(o, { node: (s: string) => ['node', s], file: (s: string) => s });
}

/** Fails with the install hint when the tool is not on the host. */
export async function checkTool(host: Host, tool: LoadTool): Promise<void> {
  if (DRIVERS[tool].bundled) return;
  const r = await host.exec(DRIVERS[tool].probe ?? [tool, tool === 'ab' ? '-V' : '-v'], { timeoutMs: 10_000 });
  if (r.exitCode === 127) throw missingTool(host, tool);
}

/**
 * Runs the tool in the host, under cpu-wrap (autocannon-us.js counts its own CPU); with `cpus`,
 * pinned to them (taskset, from util-linux, execs the tool: cpu-wrap still counts its CPU).
 */
export async function runLoad(host: Host, tool: LoadTool, o: LoadOptions, cpus?: number[]): Promise<LoadRun> {
  const d = DRIVERS[tool];
  const argv = d.argv(o, host);
  const budget = ((o.durationSec ?? 0) + 60) * 1000 + (o.requests ? 600_000 : 0);
  const pin = cpus?.length ? ['taskset', '--cpu-list', cpus.join(',')] : [];
  // A wrapper's start-up is 0.25 s a run: a tool that reports its own CPU goes without one.
  const wrap = d.ownCpu ? [] : host.node('dist/lab/in-host/cpu-wrap.js');
  const r = await host.exec([...wrap, ...pin, ...argv], { timeoutMs: budget });
  const { stderr, cpu } = splitCpu(r.stderr);
  if (r.exitCode === 127) {
    throw missingTool(host, tool);
  }
  if (r.timedOut) throw new LoadgenError(`${tool} did not finish within ${Math.round(budget / 1000)} s; stopped`, 'output');
  const parsed = d.parse(r.stdout, stderr, o);
  if ('behind' in parsed) {
    const { result, behind } = parsed;
    return { argv, result, cpu, loadgenBound: behind !== null, ...(behind ? { boundWhy: behind } : {}), stdout: r.stdout, stderr };
  }
  const result = parsed;
  const threads = toolThreads(tool, o);
  return { argv, result, cpu, loadgenBound: cpu !== null && cpu.cores >= BOUND_SHARE * threads, stdout: r.stdout, stderr };
}

/** The CPUs this process may run on (its affinity, /proc/self/status Cpus_allowed_list). */
export function allowedCpus(status: string): number[] {
  const list = /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1];
  if (!list) return [];
  return list.split(',').flatMap((part) => {
    const [a, b] = part.split('-').map(Number);
    return b === undefined ? [a!] : Array.from({ length: b - a! + 1 }, (_, i) => a! + i);
  });
}

/**
 * Several load generators on this machine: each gets CPUs of its own (as many as its tool has
 * threads), taken in order from the CPUs the lab may use, when there are enough for all of
 * them; otherwise none is pinned, and `why` says so. Hosts on swarm nodes are not pinned
 * (their CPUs are their nodes').
 */
export function planPinning(hosts: Host[], threads: number, cpus: number[]): { plan: number[][] | null; why: string } {
  if (hosts.some((h) => h.placedOn !== undefined)) return { plan: null, why: "on swarm nodes: each node's CPUs are its own" };
  const need = hosts.length * threads;
  if (need > cpus.length)
    return {
      plan: null,
      why: `${hosts.length} load generators × ${threads} thread(s) need ${need} CPUs and ${cpus.length} ${cpus.length === 1 ? 'is' : 'are'} here: not pinned`,
    };
  const plan = hosts.map((_, i) => cpus.slice(i * threads, (i + 1) * threads));
  return { plan, why: hosts.map((h, i) => `${h.name} on CPU ${plan[i]!.join(',')}`).join(', ') };
}
