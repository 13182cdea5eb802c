// Tune files (`lab tune FILE`): a workload (a lab file's runtime, server and scenario: open-loop
// arrivals or a SYN flood), an objective (counts and times the point must keep to), and the
// tunables to search (each a list of values, smallest first). Validated like a lab file: every
// candidate and every headroom point as it will run, before anything is made.
// What the kernel model says of each candidate (modelFor), and what a point really measured
// (measured), in the objective's own terms.
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { int, badValue } from '../../core/fields.js';
import { readText } from '../../core/files.js';
import { expandSweep, LabFileError, LabFileSchema, validateLab, type LabFile, type Point } from './labfile.js';
import { acceptQueueLimit } from '../model/kernel.js';
import { plannedFate, type Observed as ArrivalsObserved, type Options as ArrivalsOptions } from '../scenarios/arrivals.js';
import { predict as floodPredict, type Observed as FloodObserved } from '../scenarios/synflood.js';
import { setting } from '../scenarios/common.js';
import type { PointRecord } from '../pipeline/record.js';

/** What an objective can hold a point to: each a most it may reach. */
export const OBJECTIVES = {
  listenOverflows: "SYNs and final ACKs dropped on a full accept queue (the server's TcpExt ListenOverflows)",
  synDrops: "SYNs and final ACKs the listener dropped, for any reason (the server's TcpExt ListenDrops: overflows and a full SYN queue)",
  errors: 'connections that were not answered: refused, reset, timed out, still connecting (arrivals), or the legit client not served (synflood)',
  connectP99Ms: "connect time after the SYN, 99th percentile, ms (arrivals); the legit client's connect time (synflood)",
  firstByteP99Ms: 'time to the first byte of the answer after the SYN, 99th percentile, ms (arrivals)',
} as const;
export type ObjectiveName = keyof typeof OBJECTIVES;
const OBJECTIVE_NAMES = Object.keys(OBJECTIVES) as ObjectiveName[];

/** The scenarios a tune can drive, and the objectives each measures. */
const MEASURES: Record<string, ObjectiveName[]> = {
  arrivals: ['listenOverflows', 'synDrops', 'errors', 'connectP99Ms', 'firstByteP99Ms'],
  synflood: ['listenOverflows', 'synDrops', 'errors', 'connectP99Ms'],
};

const TuneSchema = z
  .object({
    objective: z
      .object({
        listenOverflows: int(0, 1e9).optional(),
        synDrops: int(0, 1e9).optional(),
        errors: int(0, 1e9).optional(),
        connectP99Ms: z.number({ error: 'a number of ms above 0' }).positive({ error: 'a number of ms above 0' }).optional(),
        firstByteP99Ms: z.number({ error: 'a number of ms above 0' }).positive({ error: 'a number of ms above 0' }).optional(),
      })
      .strict(),
    tune: z.record(
      z.string(),
      z
        .array(z.union([z.number(), z.string(), z.boolean()]), { error: 'a list of values, smallest first' })
        .min(1, { error: 'a list of at least one value' })
        .max(64, { error: 'a list of at most 64 values' }),
      { error: 'a map of field paths to lists of values, e.g. server.backlog: [16, 64, 256]' },
    ),
    search: z
      .object({
        /** Most real points the search runs (the headroom runs not counted). */
        maxPoints: int(1, 200).default(10),
        /** Most minutes the search runs points for. */
        maxMinutes: int(1, 24 * 60).default(30),
      })
      .strict()
      .prefault({}),
    /** The chosen settings run again at these multiples of the arrival burst or rate (or the flood). */
    headroom: z
      .array(z.number({ error: 'a multiple above 1, at most 10' }).gt(1, { error: 'a multiple above 1, at most 10' }).max(10), {
        error: 'a list of multiples, e.g. [1.5, 2]',
      })
      .max(4, { error: 'at most 4 multiples' })
      .default([1.5, 2]),
  })
  .strict();

/** A whole tune file, for `lab schema --tune`: a lab file's workload without its sweep, and the tune's keys. */
export const TuneFileSchema = LabFileSchema.omit({ sweep: true }).extend(TuneSchema.shape).strict();

export type TuneSpec = z.infer<typeof TuneSchema>;
export type Objective = TuneSpec['objective'];

export interface Tune {
  file: string;
  spec: TuneSpec;
  /** The workload as a lab file: its sweep the candidates (a matrix of the tunables). */
  lab: LabFile;
  /** Every candidate, in the lab's expansion order; cost = the sum of each value's place in its list. */
  candidates: Array<Point & { cost: number }>;
  /** The field each headroom run scales (scenario.options.burst, .rate or .flood). */
  scaled: string;
}

const TUNE_KEYS = ['objective', 'tune', 'search', 'headroom'];

/** The field a workload's size is in: the burst, the rate, or the flood. */
function scaledField(lab: LabFile): string {
  const o = lab.scenario.options as Record<string, unknown>;
  if (lab.scenario.name === 'synflood') return 'scenario.options.flood';
  return o['schedule'] === 'bursts' ? 'scenario.options.burst' : 'scenario.options.rate';
}

/** The workload's size: the value of its scaled field. */
export const sizeOf = (config: { scenario: { options: unknown } }, field: string): number =>
  Number((config.scenario.options as Record<string, unknown>)[field.split('.').pop()!]);

/** A tune file's YAML, parsed (not yet validated). */
export function readTuneFile(file: string): unknown {
  const text = readText(file, LabFileError);
  try {
    return parseYaml(text);
  } catch (err) {
    throw new LabFileError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
}

export const loadTuneFile = (file: string): Tune => validateTune(readTuneFile(file), file);

/** A tune file as written (tune.json of a tune being resumed, or a parsed file). */
export function validateTune(raw: unknown, file: string): Tune {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new LabFileError(`${file}: expected a map of fields (objective, tune, a workload)`);
  const r = raw as Record<string, unknown>;
  if ('sweep' in r) throw new LabFileError(`${file}: sweep: a tune file has no sweep: its candidates are the values under tune`);
  for (const k of ['objective', 'tune']) if (!(k in r)) throw new LabFileError(`${file}: ${k}: missing (see examples/tune/)`);
  const parsed = TuneSchema.safeParse(Object.fromEntries(TUNE_KEYS.filter((k) => k in r).map((k) => [k, r[k]])));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys')
      throw new LabFileError(`${file}: ${path}: unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`);
    let v: unknown = r;
    for (const k of issue.path) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k as string] : undefined;
    throw new LabFileError(badValue(`${file}: ${path}`, v, issue.message));
  }
  const spec = parsed.data;
  const goals = Object.keys(spec.objective) as ObjectiveName[];
  if (!goals.length) throw new LabFileError(`${file}: objective: give at least one of ${OBJECTIVE_NAMES.join(', ')}`);
  if (!Object.keys(spec.tune).length) throw new LabFileError(`${file}: tune: give at least one field to search, e.g. server.backlog: [16, 64, 256]`);
  const workload = Object.fromEntries(Object.entries(r).filter(([k]) => !TUNE_KEYS.includes(k)));
  // The workload with the tunables as a matrix: every candidate validated as a sweep point.
  let lab: LabFile;
  try {
    lab = validateLab({ ...workload, sweep: { matrix: spec.tune } }, { file });
  } catch (err) {
    throw new LabFileError((err as Error).message.replace(/\bsweep\.matrix\b/g, 'tune').replace(/\bsweep point (p\d+)/g, 'candidate $1'));
  }
  const measures = MEASURES[lab.scenario.name];
  if (!measures)
    throw new LabFileError(
      badValue(`${file}: scenario.name`, lab.scenario.name, `one of ${Object.keys(MEASURES).join(', ')} (the workloads a tune drives)`),
    );
  for (const g of goals)
    if (!measures.includes(g))
      throw new LabFileError(
        badValue(`${file}: objective.${g}`, spec.objective[g], `an objective scenario ${lab.scenario.name} measures: ${measures.join(', ')}`),
      );
  const scaled = scaledField(lab);
  if (scaled in spec.tune)
    throw new LabFileError(`${file}: tune.${scaled}: the workload's size is not a setting to tune (the headroom runs scale it)`);
  // Each headroom run as it will run: the workload's size × each multiple, on every candidate.
  const base = sizeOf(lab, scaled);
  if (spec.headroom.length) {
    const biggest = Math.max(...spec.headroom);
    try {
      validateLab({ ...workload, sweep: { matrix: { ...spec.tune, [scaled]: [Math.round(base * biggest)] } } }, { file });
    } catch (err) {
      throw new LabFileError(
        `${file}: headroom: ${biggest}× ${scaled.split('.').pop()} ${base} = ${Math.round(base * biggest)}: ${(err as Error).message.replace(/^.*?: (got|scenario)/, '$1')}`,
      );
    }
  }
  const lists = Object.entries(spec.tune);
  const candidates = expandSweep(lab).map((p) => ({ ...p, cost: lists.reduce((n, [k, values]) => n + values.indexOf(p.settings[k]!), 0) }));
  return { file, spec, lab, candidates, scaled };
}

/** An objective's values for one point; null where it was not measured (or the model does not say). */
export type Values = Partial<Record<ObjectiveName, number | null>>;

/** Values as text: "listenOverflows 0, errors 2, connectP99Ms –". */
export const valuesText = (v: Values | undefined): string =>
  v
    ? Object.entries(v)
        .map(([k, x]) => `${k} ${x === null || x === undefined ? '–' : x.toLocaleString('en-US')}`)
        .join(', ')
    : '–';

/** What the kernel model says a candidate's point will do, and the rule that says it. */
export interface ModelSays {
  values: Values;
  rule: string;
  /** The accept queue's limit the candidate gives, min(backlog, somaxconn). */
  limit: number;
}

/** The 99th percentile of the teeth the connections got in on, ms after the SYN (tooth 0 is a round trip: 0). */
function toothP99Ms(perTooth: number[], retransmitsAt: number[]): number | null {
  const n = perTooth.reduce((a, b) => a + b, 0);
  if (!n) return null;
  const at = Math.ceil(0.99 * n);
  let seen = 0;
  for (let k = 0; k < perTooth.length; k++) if ((seen += perTooth[k]!) >= at) return k ? retransmitsAt[k - 1]! * 1000 : 0;
  return null;
}

/** The arrivals model on a point's settings (the SYNs at their intended times). */
function arrivalsFate(config: Point['config'], limit: number) {
  const o = config.scenario.options as ArrivalsOptions;
  return { o, ...plannedFate(config, o, limit) };
}

export function modelFor(config: Point['config']): ModelSays {
  const somaxconn = setting(config, 'server', 'net.core.somaxconn');
  const limit = acceptQueueLimit(config.server.backlog, somaxconn);
  const queue = `accept queue limit min(backlog ${config.server.backlog}, somaxconn ${somaxconn}) = ${limit}`;
  if (config.scenario.name === 'synflood') {
    const o = config.scenario.options as { flood: number; acceptQueueFull: boolean };
    const cookies = setting(config, 'server', 'net.ipv4.tcp_syncookies');
    const maxSyn = setting(config, 'server', 'net.ipv4.tcp_max_syn_backlog');
    const p = floodPredict(cookies, maxSyn, limit, somaxconn, o.flood, o.acceptQueueFull);
    const held =
      cookies === 0
        ? `the SYN queue holds min(limit ${limit} + 1, M ${maxSyn} − M/4 + 1) = ${p.synQueueCap}`
        : `tcp_syncookies ${cookies}: SYNs past limit + 1 get cookies`;
    return {
      limit,
      values: {
        listenOverflows: o.acceptQueueFull ? o.flood + 1 : 0,
        synDrops: p.droppedSyns + (p.legitServed ? 0 : 1),
        errors: p.legitServed ? 0 : 1,
        connectP99Ms: null,
      },
      rule: `${queue}; ${held}; ${o.flood} flood SYNs: ${p.droppedSyns} dropped, the legit client ${p.legitServed ? 'served' : 'not served'}`,
    };
  }
  const { o, syn, fate } = arrivalsFate(config, limit);
  if (o.acceptRate === 0)
    return {
      limit,
      values: {},
      rule: `${queue}; the server accepts as fast as it can: the model has no accept rate to drain the queue at, and says nothing`,
    };
  return {
    limit,
    values: {
      listenOverflows: fate.drops,
      synDrops: fate.drops,
      errors: fate.timedOut + fate.waiting,
      connectP99Ms: toothP99Ms(fate.perTooth, syn.retransmitsAt),
      firstByteP99Ms: null,
    },
    rule: `${queue}, drained at ${o.acceptRate}/s: ${fate.drops} SYN(s) dropped (at least: a final ACK that meets a full queue is dropped too), ${fate.timedOut + fate.waiting} connect(s) not made`,
  };
}

/**
 * The smallest accept queue limit at which the model drops no SYN of the workload (bisection up
 * to 65535, the most somaxconn may be); null when even that drops some, or the model says nothing.
 */
export function limitNeeded(config: Point['config']): number | null {
  const o = config.scenario.options as { acceptRate?: number };
  if (config.scenario.name !== 'arrivals' || !o.acceptRate) return null;
  const drops = (l: number) => arrivalsFate(config, l).fate.drops > 0;
  let [lo, hi] = [0, 65535];
  if (drops(hi)) return null;
  if (!drops(lo)) return 0;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (drops(mid)) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** What a point really did, in the objective's terms. */
export function measured(p: PointRecord): Values {
  const c = p.hosts['server']?.counters.delta ?? {};
  const counters = { listenOverflows: c['TcpExtListenOverflows'] ?? 0, synDrops: c['TcpExtListenDrops'] ?? 0 };
  if (p.scenario.name === 'synflood') {
    const legit = (p.scenario.observed as FloodObserved).legit;
    return {
      ...counters,
      errors: legit.pending + legit.reset + legit.refused + legit.other,
      connectP99Ms: legit.connectMs.length ? Math.max(...legit.connectMs) : null,
    };
  }
  const o = p.scenario.observed as ArrivalsObserved;
  return {
    ...counters,
    errors: o.connections - o.byOutcome.answered,
    connectP99Ms: o.connect.p99,
    firstByteP99Ms: o.firstByte.p99,
  };
}

/** Each goal of the objective against values: met (at most the goal), missed, or not known (null). */
export function judge(objective: Objective, v: Values): { met: boolean | null; missed: string[]; unknown: string[] } {
  const missed: string[] = [];
  const unknown: string[] = [];
  for (const [k, most] of Object.entries(objective) as Array<[ObjectiveName, number]>) {
    const x = v[k];
    if (x === null || x === undefined) unknown.push(k);
    else if (x > most) missed.push(`${k} ${x.toLocaleString('en-US')} > ${most}`);
  }
  return { met: missed.length ? false : unknown.length ? null : true, missed, unknown };
}
