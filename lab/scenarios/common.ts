// What a scenario is, and what every scenario shares: the context a point gives it, the
// verdict rules and a few kernel-model helpers. A scenario is one typed object: its options
// schema, what it drives, its predictions (the kernel model), its verdicts and what the
// report charts; Obs and Pred are the shapes of what it observed and what it predicted, and
// judge() and the report read them as typed fields.
// A verdict is PASS or FAIL against the kernel model's prediction, or INCONCLUSIVE (with the
// reason) when the measurement cannot be trusted or the model does not cover the setting.
import type { ListenRecord } from '../pipeline/listen.js';
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';
import type { z } from 'zod';
import { lookup, normalizeRead, validateValue } from '../../sysctl/registry.js';
import type { PointConfig, PortRange } from '../../core/fields.js';
import { acceptQueueLimit } from '../model/kernel.js';
import type { Counters } from '../observe/nstat.js';
import type { CaptureResult } from '../observe/capture.js';
import type { Sample } from '../observe/sampler.js';
import type { TraceResult } from '../observe/tracer.js';
import type { LoadRecord, PointRecord, RuleVerdict } from '../pipeline/record.js';
import type { Host } from '../runtime/runtime.js';
import type { ServerControl } from '../pipeline/server-host.js';

export type { RuleVerdict, Verdict } from '../pipeline/record.js';

export interface ScenarioContext<O> {
  /** The point's settings (server, loadgens, …). */
  config: PointConfig;
  /** This scenario's options, with their defaults. */
  options: O;
  server: Host;
  /** The (first) load generator's host. */
  client: Host;
  /** Every load generator's host (loadgens.0.count of them: loadgen-1 … loadgen-N). */
  clients: Host[];
  port: number;
  controlPort: number;
  /** The server: its stats, pause and resume, whatever its kind. */
  control: ServerControl;
  /** How the server listens, read once it was up: the accept-queue limit it really has. */
  listen: ListenRecord;
  /** The server host's sysctls as read back. */
  serverSysctl(name: string): string | null;
  /** The loadgen host's sysctls as read back. */
  clientSysctl(name: string): string | null;
  /** Keeps a tool's own output as raw/<point>/NAME. */
  writeRaw(name: string, text: string): void;
  /** A progress line (stderr). */
  progress(line: string): void;
}

export interface Driven<Obs, Pred> {
  observed: Obs;
  predicted: Pred;
  load?: LoadRecord;
}

/** What the point saw on each host (by host name) while the scenario ran. */
export interface Observations {
  series: Record<string, Sample[]>;
  /** Counter deltas from the state reports before and after the scenario. */
  counters: Record<string, Counters>;
  /** The kernel's events (`trace: true`, when the tracer ran). */
  trace?: TraceResult;
  /** The per-connection timelines of the loadgen's capture (`capture: true`, when it ran). */
  capture?: CaptureResult;
}

/** A point record of this scenario: its observed and predicted shapes typed. */
export type ScenarioPoint<Obs, Pred> = PointRecord<Obs, Pred>;

/** What the report charts for a scenario (and `lab compare` compares). */
export interface ReportSpec<Obs, Pred> {
  /** Quantities per point, charted against the swept axis (with the prediction when there is one). */
  metrics: Array<{
    label: string;
    value(p: ScenarioPoint<Obs, Pred>): number | null;
    predicted?(p: ScenarioPoint<Obs, Pred>): number | null;
    /** Which way is better, for `lab compare` (unset: a change is flagged, not judged). */
    better?: 'higher' | 'lower';
  }>;
  /** The axes the rules depend on most, first first: the charts' x-axis when the sweep has one of them (and no zip). */
  x?: string[];
  /** One line per point from its verdicts and numbers, so the report reads as a story before the tables. */
  headline?(p: ScenarioPoint<Obs, Pred>): string;
  /** What the kernel's events and the packet timelines (trace, capture) say happened, a sentence each; [] without them. */
  explain?(p: ScenarioPoint<Obs, Pred>): string[];
  /**
   * A distribution per point on a log axis (e.g. connect times, ms), a line each, with marks
   * where the model puts its modes (the comb's teeth).
   */
  histogram?: {
    label: string;
    xTitle: string;
    /** [upper edge, count] per non-empty bucket, ascending. */
    buckets(p: ScenarioPoint<Obs, Pred>): Array<[number, number]>;
    marks(p: ScenarioPoint<Obs, Pred>): number[];
    marksLabel: string;
  };
  /**
   * One quantity over a numeric setting (e.g. the arrival rate), measured and the model's, with
   * marks where each puts a threshold (the knee). Drawn when that setting is the sweep's only
   * axis, so every point sits on one curve.
   */
  curve?: {
    label: string;
    /** The setting on x. */
    axis: string;
    yTitle: string;
    observed(p: ScenarioPoint<Obs, Pred>): number | null;
    predicted(p: ScenarioPoint<Obs, Pred>): number | null;
    marks(points: Array<ScenarioPoint<Obs, Pred>>): Array<{ label: string; x: number }>;
  };
  /** One quantity over time, a line per point. */
  series?: { label: string; host(p: ScenarioPoint<Obs, Pred>): string; value(s: Sample, p: ScenarioPoint<Obs, Pred>): number | null };
}

export interface Scenario<O = unknown, Obs = unknown, Pred = unknown> {
  name: string;
  /** Tools of the hosts' own it runs besides the load tool (the report lists the tools a run used). */
  tools?: string[];
  /** Its options (each with a default): the lab file's `scenario.options`. */
  options: z.ZodType<O, unknown>;
  /** Capabilities the loadgen host needs (nft rules, raw sockets). */
  loadgenCaps?: Array<'NET_RAW' | 'NET_ADMIN'>;
  /** It runs the loadgen's tool (loadgens.0.tool and options): checked before anything is made. */
  usesLoadTool?: boolean;
  /** Local ports on the loadgen it keeps for itself (ip_local_port_range must stay clear). */
  reservedPorts?: PortRange;
  /** What it needs that only the tcplab reactor's control API gives (its counters, its accept rate), or null: another server.kind is then refused. */
  needsReactor?(options: O): string | null;
  /** What it cannot run, from the point's settings alone (before anything is created): a message, or null. */
  check?(config: PointConfig, options: O): string | null;
  /** Runs while the samplers sample; returns what it saw and what the kernel model predicts. */
  drive(ctx: ScenarioContext<O>): Promise<Driven<Obs, Pred>>;
  /** The verdicts, from what drive() saw and the observations per host. */
  judge(ctx: ScenarioContext<O>, r: Driven<Obs, Pred>, obs: Observations): RuleVerdict[];
  report: ReportSpec<Obs, Pred>;
  /**
   * The registry tunables, per host, that the kernel model covers for this scenario: the rule
   * each one feeds, or (effect 'none') why it does not change the outcome. A point that sets a
   * tunable not listed here gets INCONCLUSIVE "not modelled", never a FAIL.
   */
  model: readonly ModelEntry<O>[];
  /**
   * How the server may listen, beyond its backlog, that the model covers here, each with what it
   * does about it: a listener with TCP_DEFER_ACCEPT, a port served by an SO_REUSEPORT group. A
   * point whose server listens in a way not covered gets INCONCLUSIVE "not modelled", never a FAIL.
   */
  listenerCovers?: { deferAccept?: Covers<O>; reuseportGroup?: Covers<O> };
  /** What the kernel should do at a point, from its settings alone (`lab predict`: nothing runs). */
  predict(config: PointConfig, options: O): Prediction[];
}

export interface ModelEntry<O = unknown> {
  name: string;
  side: 'server' | 'client';
  /** The rule the setting feeds, or why it does not change the outcome. */
  rule: string;
  effect?: 'none';
  /** Why the entry does not cover this point, when it does not (e.g. a claim that holds with keep-alive only). */
  unless?(config: PointConfig, options: O): string | null;
}

/** One line of `lab predict`: a quantity, what the model says it will be, and the rule. */
export interface Prediction {
  what: string;
  value: string | number;
  why: string;
}

/** A setting's value at a point, normalised as the registry reads it back: what the lab file asks for, else a fresh namespace's default. */
export function settingText(config: PointConfig, side: 'server' | 'client', name: string): string {
  const sysctls = side === 'server' ? config.server.sysctls : (config.loadgens[0]?.sysctls ?? {});
  const t = lookup(name);
  const given = Object.entries(sysctls).find(([n]) => lookup(n).name === t.name);
  if (given) return validateValue(t, given[1]);
  if (t.kernelDefault !== undefined) return t.kernelDefault;
  // A default the kernel computes from the machine's memory: this machine's, as a fresh namespace gets it.
  return readMachineDefault(t.name);
}

/** A numeric setting's value at a point (see settingText). */
export const setting = (config: PointConfig, side: 'server' | 'client', name: string): number => Number(settingText(config, side, name));

let hzRead: { hz: number; known: boolean } | undefined;
/**
 * The kernel's timer frequency (CONFIG_HZ), which sets how late its timers may fire: from
 * /proc/config.gz or /boot/config-RELEASE (read once); where neither is there, 100, the
 * coarsest a kernel is built with (so the windows are at their widest), and `known` false.
 */
export function kernelHz(): { hz: number; known: boolean } {
  return (hzRead ??= readKernelHz());
}
function readKernelHz(): { hz: number; known: boolean } {
  for (const read of [() => gunzipSync(readFileSync('/proc/config.gz')).toString('utf8'), () => readFileSync(`/boot/config-${release()}`, 'utf8')]) {
    try {
      const m = /^CONFIG_HZ=(\d+)$/m.exec(read());
      if (m) return { hz: Number(m[1]), known: true };
    } catch {
      // not there: the next source
    }
  }
  return { hz: 100, known: false };
}

/** This machine's value of a tunable (/proc/sys is readable by any user): a fresh namespace gets the same computed default. */
const readMachineDefault = (name: string): string => readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim();

/**
 * The settings of a point that the scenario's model does not cover, as "side name=value"
 * (a value equal to the kernel's default changes nothing and is left out).
 */
export function notModelled<O>(model: readonly ModelEntry<O>[], config: PointConfig, options: O): string[] {
  const out: string[] = [];
  const sides: Array<['server' | 'client', Record<string, string | number>]> = [
    ['server', config.server.sysctls],
    ['client', config.loadgens[0]?.sysctls ?? {}],
  ];
  for (const [side, sysctls] of sides) {
    for (const [name, v] of Object.entries(sysctls)) {
      const t = lookup(name);
      const value = validateValue(t, v);
      if (t.kernelDefault !== undefined && normalizeRead(value) === normalizeRead(t.kernelDefault)) continue;
      const e = model.find((m) => m.name === t.name && m.side === side);
      const why = e?.unless?.(config, options) ?? null;
      if (!e || why) out.push(`${side} ${t.name}=${value}${why ? ` (${why})` : ''}`);
    }
  }
  return out;
}

/** How a scenario covers a way of listening: always (why), or at some points only (why, or null where it does not). */
export type Covers<O = unknown> = string | ListenerCover<O>['at'];
interface ListenerCover<O> {
  /** A method, so a scenario's own options type fits (as ModelEntry.unless). */
  at(config: PointConfig, listen: ListenRecord, options: O): string | null;
}

/** How the server listens that the scenario's model does not cover at this point (`listenerCovers`), each as a gap of coverVerdicts. */
export function listenerGaps<O>(covers: Scenario<O>['listenerCovers'], l: ListenRecord, config: PointConfig, options: O): string[] {
  const covered = (c: Covers<O> | undefined) => (typeof c === 'function' ? c(config, l, options) !== null : c !== undefined);
  const out: string[] = [];
  if (l.deferAcceptSec && !covered(covers?.deferAccept))
    out.push(
      `the server set TCP_DEFER_ACCEPT (${l.deferAcceptSec} s) on its listener (a connection is queued only once its request arrives; the model queues it at the handshake)`,
    );
  if ((l.group ?? 1) > 1 && !covered(covers?.reuseportGroup))
    out.push(
      `the server listens with ${l.group} sockets on the port (an SO_REUSEPORT group: the kernel spreads the connections over their queues by a hash of each 4-tuple; the model has one queue)`,
    );
  return out;
}

/**
 * The verdicts of a point with settings the model does not cover: a FAIL may be the model's
 * gap, not the kernel's, so it becomes INCONCLUSIVE; one more verdict names the settings.
 */
export function coverVerdicts(gaps: string[], verdicts: RuleVerdict[]): RuleVerdict[] {
  if (!gaps.length) return verdicts;
  const reason = `not modelled: ${gaps.join(', ')}`;
  return [
    ...verdicts.map((v): RuleVerdict =>
      v.verdict === 'FAIL' && v.about !== 'server' ? { ...v, verdict: 'INCONCLUSIVE', reason: `${reason}; ${v.reason}` } : v,
    ),
    { rule: 'the kernel model covers every setting of this point', predicted: null, observed: gaps.join(', '), verdict: 'INCONCLUSIVE', reason },
  ];
}

/** A scenario, its types inferred from its options schema and its drive(). */
export const defineScenario = <O, Obs, Pred>(s: Scenario<O, Obs, Pred>): Scenario<O, Obs, Pred> => s;

type Num = number | null;

function verdict(
  rule: string,
  predicted: RuleVerdict['predicted'],
  observed: Num | string,
  ok: boolean,
  why: string,
  inconclusive?: string,
): RuleVerdict {
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

/** A rule the kernel model cannot judge for this point, and why. */
export const inconclusive = (rule: string, reason: string): RuleVerdict => ({
  rule,
  predicted: null,
  observed: null,
  verdict: 'INCONCLUSIVE',
  reason,
});

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

/** Most connections a scenario's own client opens at once (fds, local ports, minutes of set-up). */
export const MAX_CLIENT_CONNECTIONS = 20_000;

/**
 * The accept queue's limit the server really has: its listener's Send-Q, read once it was up
 * (a server may pass listen() a backlog of its own); the settings' min(backlog, somaxconn) when
 * no listener was seen.
 */
export function effectiveLimit(ctx: Pick<ScenarioContext<unknown>, 'listen' | 'config' | 'serverSysctl'>): number {
  return ctx.listen.limit ?? acceptQueueLimit(ctx.config.server.backlog, numSysctl(ctx.serverSysctl, 'net.core.somaxconn'));
}

/** The accept queue's limit a point will get, from its settings alone (before any host exists). */
export function plannedLimit(config: PointConfig): number {
  return acceptQueueLimit(config.server.backlog, setting(config, 'server', 'net.core.somaxconn'));
}

/** A message when a scenario would open more connections than a point can finish. */
export function tooManyClients(config: PointConfig, clients: number, what: string): string | null {
  if (clients <= MAX_CLIENT_CONNECTIONS) return null;
  const limit = plannedLimit(config);
  return `${what} would open ${clients} connections (accept queue limit ${limit} = min(backlog ${config.server.backlog}, somaxconn)); at most ${MAX_CLIENT_CONNECTIONS}: lower server.backlog or net.core.somaxconn`;
}

/** Runs one of the programs in lab/in-host/ (dist/lab/in-host/NAME.js) on a host and parses its last JSON line. */
export async function runInHost<T>(host: Host, program: string, args: Array<string | number>, timeoutMs: number): Promise<T> {
  const r = await host.exec([...host.node(`dist/lab/in-host/${program}.js`), ...args.map(String)], { timeoutMs });
  if (r.exitCode !== 0) throw new Error(`${program} failed on ${host.name} (exit ${r.exitCode}): ${r.stderr.trim().split('\n').pop()}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`${program} on ${host.name} printed no result: ${JSON.stringify(last.slice(0, 200))}`);
  }
}

/** A counter's delta on a host of a point record (0 when it did not move): for ReportSpec. */
export const counterOf =
  (host: string, name: string) =>
  (p: PointRecord): number =>
    p.hosts[host]?.counters.delta[name] ?? 0;

/** The server listener's accept queue in a sample. */
export const recvQ = (s: Sample, p: PointRecord) =>
  s.listeners.find((l) => l.port === p.hosts['server']?.series.summary.listener?.port)?.recvQ ?? null;

/** A boolean as the report's 1/0. */
export const asNumber = (b: boolean | null | undefined): number | null => (b === null || b === undefined ? null : Number(b));

/** How a reading waited for what it measures to settle (kept in the record beside the reading). */
export interface Settle {
  /** From the first reading to the one kept, ms. */
  waitedMs: number;
  /** How long the kept reading had held still (its last change before it), ms. */
  stillForMs: number;
  /** The wait's bound, ms, and how long a reading must hold still to count as settled. */
  boundMs: number;
  stillMs: number;
  settled: boolean;
}

/**
 * Reads `read` every `everyMs` until what `key` says of it has held still for `stillMs`, or
 * `boundMs` has passed: the last reading, and how the wait went. A rule on a reading that did
 * not settle gives INCONCLUSIVE with the numbers (unsettledReason), never FAIL.
 */
export async function settle<T>(
  read: () => Promise<T>,
  key: (t: T) => string,
  o: { stillMs: number; boundMs: number; everyMs?: number },
): Promise<{ value: T; settle: Settle }> {
  const t0 = Date.now();
  let value = await read();
  let last = key(value);
  let changedAt = t0;
  for (;;) {
    const now = Date.now();
    if (now - changedAt >= o.stillMs || now - t0 >= o.boundMs) {
      const settled = now - changedAt >= o.stillMs;
      return { value, settle: { waitedMs: now - t0, stillForMs: now - changedAt, boundMs: o.boundMs, stillMs: o.stillMs, settled } };
    }
    await new Promise((r) => setTimeout(r, o.everyMs ?? 100));
    value = await read();
    const k = key(value);
    if (k !== last) [last, changedAt] = [k, Date.now()];
  }
}

/** Why a reading's rules are INCONCLUSIVE: it did not settle within its bound (undefined when it did). */
export function unsettledReason(what: string, s: Settle | undefined): string | undefined {
  if (!s || s.settled) return undefined;
  return `${what} had not settled: still changing ${s.waitedMs - s.stillForMs} ms into a wait bounded at ${s.boundMs} ms (${s.stillMs} ms still needed)`;
}
