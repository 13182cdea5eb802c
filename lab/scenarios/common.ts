// What every scenario shares: the context a point gives it, the shape of its result, and the
// verdict rules. A verdict is PASS or FAIL against the kernel model's prediction, or
// INCONCLUSIVE (with the reason) when the measurement cannot be trusted.
import type { LabFile } from '../labfile.js';
import type { LoadRun } from '../loadgen/drivers.js';
import type { Counters } from '../observe/nstat.js';
import type { Sample } from '../observe/sampler.js';
import type { Host } from '../runtime/runtime.js';
import type { PointRecord } from '../sweep.js';

export type Verdict = 'PASS' | 'FAIL' | 'INCONCLUSIVE';

export interface RuleVerdict {
  rule: string;
  predicted: number | string | null;
  observed: number | string | null;
  verdict: Verdict;
  reason: string;
}

export interface ScenarioContext {
  config: LabFile;
  server: Host;
  client: Host;
  port: number;
  controlPort: number;
  /** The server host's sysctls as read back. */
  serverSysctl(name: string): string | null;
  /** The loadgen host's sysctls as read back. */
  clientSysctl(name: string): string | null;
}

export interface Driven {
  observed: Record<string, unknown>;
  predicted: Record<string, unknown>;
  load?: Omit<LoadRun, 'stdout' | 'stderr'>;
}

export interface ScenarioResult extends Driven {
  /** Filled once the series and counters are in (judge()). */
  verdicts: RuleVerdict[];
}

/** What the point saw on each host (by host name) while the scenario ran. */
export interface Observations {
  series: Record<string, Sample[]>;
  /** Counter deltas from the state reports before and after the scenario. */
  counters: Record<string, Counters>;
}

/** What the HTML report charts for a scenario. */
export interface ReportSpec {
  /** Quantities per point, charted against the swept axis (with the prediction when there is one). */
  metrics: Array<{
    label: string;
    value(p: PointRecord): number | null;
    predicted?(p: PointRecord): number | null;
    /** Which way is better, for `lab compare` (unset: a change is flagged, not judged). */
    better?: 'higher' | 'lower';
  }>;
  /** One quantity over time, a line per point. */
  series?: { label: string; host(p: PointRecord): string; value(s: Sample, p: PointRecord): number | null };
}

export interface Scenario {
  report: ReportSpec;
  /** Capabilities the loadgen host needs (nft rules, raw sockets). */
  loadgenCaps?: Array<'NET_RAW' | 'NET_ADMIN'>;
  /** Runs while the samplers sample; returns what it saw directly. */
  drive(ctx: ScenarioContext): Promise<Driven>;
  /** The verdicts, from what drive() saw and the observations per host. */
  judge(ctx: ScenarioContext, r: Driven, obs: Observations): RuleVerdict[];
}

type Num = number | null;

type ScenarioConfig = LabFile['scenario'];
type OptionsOf<N extends ScenarioConfig['name']> = Extract<ScenarioConfig, { name: N }> extends { options: infer O } ? O : never;

/** The point's options for scenario NAME (the lab file's schema gave each its defaults). */
export function scenarioOptions<N extends ScenarioConfig['name']>(ctx: ScenarioContext, name: N): OptionsOf<N> {
  const s = ctx.config.scenario;
  if (s.name !== name) throw new Error(`a ${s.name} point run as ${name}`);
  return s.options as OptionsOf<N>;
}

function verdict(rule: string, predicted: RuleVerdict['predicted'], observed: Num | string, ok: boolean, why: string, inconclusive?: string): RuleVerdict {
  if (inconclusive) return { rule, predicted, observed, verdict: 'INCONCLUSIVE', reason: inconclusive };
  if (observed === null) return { rule, predicted, observed, verdict: 'INCONCLUSIVE', reason: 'not observed' };
  return { rule, predicted, observed, verdict: ok ? 'PASS' : 'FAIL', reason: ok ? why : `expected ${predicted}, observed ${observed}: ${why}` };
}

/** observed must equal predicted. */
export function equal(rule: string, predicted: number | string, observed: Num | string, why: string, inconclusive?: string): RuleVerdict {
  return verdict(rule, predicted, observed, observed === predicted, why, inconclusive);
}

/** observed ≥ min ("≥ N" in the table). */
export function atLeast(rule: string, min: number, observed: Num, why: string, inconclusive?: string): RuleVerdict {
  return verdict(rule, `≥ ${min}`, observed, observed !== null && observed >= min, why, inconclusive);
}

/** observed ≤ max. */
export function atMost(rule: string, max: number, observed: Num, why: string, inconclusive?: string): RuleVerdict {
  return verdict(rule, `≤ ${max}`, observed, observed !== null && observed <= max, why, inconclusive);
}

/** lo ≤ observed ≤ hi. */
export function within(rule: string, lo: number, hi: number, observed: Num, why: string, inconclusive?: string): RuleVerdict {
  return verdict(rule, `${lo}–${hi}`, observed, observed !== null && observed >= lo && observed <= hi, why, inconclusive);
}

/** A counter's delta on a host (0 when it did not move). */
export const counter = (obs: Observations, host: string, name: string): number => obs.counters[host]?.[name] ?? 0;

/** The most sockets seen in a state on a host at one sample (full dumps only for non-TIME-WAIT). */
export function peakState(obs: Observations, host: string, state: string): number {
  return Math.max(0, ...(obs.series[host] ?? []).map((s) => s.states[state] ?? 0));
}

/** The sysctl as a number, or throw naming it: a verdict must not rest on a guess. */
export function numSysctl(get: (n: string) => string | null, name: string): number {
  const v = get(name);
  if (v === null || !/^-?\d+$/.test(v.trim())) throw new Error(`${name} was not read back (got ${JSON.stringify(v)})`);
  return Number(v);
}

/**
 * The accept queue's limit as listen() sets it: a backlog above somaxconn (and any negative
 * one, taken as a huge unsigned number) is cut to somaxconn.
 */
export function predictedLimit(backlog: number, somaxconn: number): number {
  return backlog < 0 || backlog > somaxconn ? somaxconn : backlog;
}

/** Runs a loadgen helper script (dist/lab/loadgen/NAME.js) on a host and parses its last JSON line. */
export async function runHelper<T>(host: Host, script: string, args: Array<string | number>, timeoutMs: number): Promise<T> {
  const r = await host.exec([...host.node(`dist/lab/loadgen/${script}.js`), ...args.map(String)], { timeoutMs });
  if (r.exitCode !== 0) throw new Error(`${script} failed on ${host.name} (exit ${r.exitCode}): ${r.stderr.trim().split('\n').pop()}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`${script} on ${host.name} printed no result: ${JSON.stringify(last.slice(0, 200))}`);
  }
}

/** Helpers for ReportSpec: a number from the record's observed/predicted objects, by path. */
export function num(obj: unknown, ...path: string[]): number | null {
  let cur = obj;
  for (const k of path) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined;
  return typeof cur === 'number' ? cur : typeof cur === 'boolean' ? Number(cur) : null;
}

export const observedNum = (p: PointRecord, ...path: string[]) => num(p.scenario.observed, ...path);
export const predictedNum = (p: PointRecord, ...path: string[]) => num(p.scenario.predicted, ...path);
export const counterOf = (host: string, name: string) => (p: PointRecord) => p.hosts[host]?.counters.delta[name] ?? 0;
/** The server listener's accept queue in a sample. */
export const recvQ = (s: Sample, p: PointRecord) => s.listeners.find((l) => l.port === p.hosts['server']?.series.summary.listener?.port)?.recvQ ?? null;
