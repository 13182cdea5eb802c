// Lab files (YAML): the schema (zod; `lab schema` prints it as JSON Schema), loading with
// errors that name the file, the field path, the value and what is allowed, and the sweep's
// expansion into points (a matrix of axes, plus `zip` for values that move together).
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { lookup, validateValue, type SysctlSetting } from '../sysctl/registry.js';

const int = (lo: number, hi: number) => z.number().int().min(lo).max(hi);

const Sysctls = z.record(z.string(), z.union([z.string(), z.number()])).default({});

import { RESERVED_PORTS } from './scenario-names.js';
export { SCENARIOS } from './scenario-names.js';

const Server = z
  .object({
    model: z.enum(['single', 'reuseport', 'acceptor', 'workers']).default('single'),
    threads: int(1, 256).default(1),
    trigger: z.enum(['edge', 'level']).default('edge'),
    backlog: int(-2147483648, 2147483647).default(511),
    idleTimeoutMs: int(0, 86400000).default(60000),
    sysctls: Sysctls,
  })
  .strict();

const LoadOptions = z
  .object({
    connections: int(1, 100000).default(10),
    duration: int(1, 3600).optional(),
    requests: int(1, 1000000000).optional(),
    threads: int(1, 64).optional(),
    rate: int(1, 10000000).optional(),
    keepAlive: z.boolean().default(true),
    pipelining: int(1, 1024).optional(),
  })
  .strict();

const Loadgen = z
  .object({
    tool: z.enum(['autocannon', 'ab', 'wrk', 'wrk2']).default('autocannon'),
    options: LoadOptions.prefault({}),
    sysctls: Sysctls,
    count: int(1, 1).default(1),
  })
  .strict();

/** A scenario: its name and its own options, each with a default (`options` may be left out). */
const scenario = <N extends string, T extends z.ZodRawShape>(name: N, options: T) => {
  const o = z.object(options).strict();
  // Every option has a default, so {} is a valid input; prefault runs it through them.
  return z.object({ name: z.literal(name), options: o.prefault({} as z.input<typeof o>) }).strict();
};

const Scenario = z.discriminatedUnion('name', [
  scenario('throughput', {}),
  scenario('backlog', {
    /** Connections beyond the predicted queue (limit + 1) that the burst adds. */
    extraClients: int(0, 10000).default(10),
    /** How long the burst holds its connections, ms. */
    holdMs: int(200, 60000).default(1500),
  }),
  scenario('overflow', {
    /** Handshakes whose final ACK is held back until the accept queue is full. */
    held: int(1, 1000).default(4),
    /** SYNs sent once the accept queue is full. */
    late: int(0, 1000).default(4),
    /** Connections the server accepts per second after the release (0: none). */
    acceptRate: int(0, 100000).default(0),
    /** How long the clients are watched after the release, ms. */
    holdMs: int(500, 60000).default(3000),
  }),
  scenario('synflood', {
    /** Half-open SYNs hping3 sends (source ports 20000 + i). */
    flood: int(1, 10000).default(1000),
    /** Gap between SYNs, µs. */
    intervalUs: int(10, 1000000).default(200),
    /** How long the legit client waits for its connection, ms. */
    legitTimeoutMs: int(500, 60000).default(3000),
    /** Fill the accept queue first (server not accepting): shows that cookies do not help then. */
    acceptQueueFull: z.boolean().default(false),
  }),
  scenario('timewait', {
    /** Who closes each connection first: the client, or the server (Connection: close). */
    closer: z.enum(['client', 'server']).default('client'),
    /** How long the short connections go on, ms. */
    durationMs: int(200, 600000).default(3000),
    /** Connections in flight at a time. */
    concurrency: int(1, 256).default(4),
  }),
]);

const AxisValues = z.array(z.union([z.string(), z.number(), z.boolean()])).min(1);

export const LabFileSchema = z
  .object({
    runtime: z.enum(['auto', 'netns', 'docker']).default('auto'),
    subnet: z.string().regex(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/, 'an IPv4 /24 like 198.18.0.0/24').default('198.18.0.0/24'),
    server: Server.prefault({}),
    loadgens: z.array(Loadgen).min(1).max(1).prefault([{}]),
    scenario: Scenario,
    sweep: z
      .object({
        /** Every combination of these axes: field path → values. */
        matrix: z.record(z.string(), AxisValues).default({}),
        /** Axes that move together (equal lengths): point i takes value i of each. */
        zip: z.record(z.string(), AxisValues).default({}),
      })
      .strict()
      .prefault({}),
    repetitions: int(1, 100).default(1),
    output: z.string().min(1).default('results'),
  })
  .strict();

export type LabFile = z.infer<typeof LabFileSchema>;

export class LabFileError extends Error {
  override name = 'LabFileError';
}

function show(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

/** What is allowed, in the words of the enum/discriminator/type check. */
function message(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_union' && 'options' in issue && Array.isArray(issue.options)) return `expected one of ${issue.options.map((o) => JSON.stringify(o)).join('|')}`;
  return issue.message.replace(/^Invalid (input|option): /, '');
}

function valueAt(obj: unknown, path: PropertyKey[]): unknown {
  let cur = obj;
  for (const k of path) cur = cur && typeof cur === 'object' ? (cur as Record<PropertyKey, unknown>)[k as string] : undefined;
  return cur;
}

/** "server.sysctls.net.core.somaxconn" → ['server', 'sysctls', 'net.core.somaxconn']; loadgens.0.x → index 0. */
export function splitPath(path: string): string[] {
  const parts = path.split('.');
  const i = parts.indexOf('sysctls');
  return i >= 0 && i < parts.length - 1 ? [...parts.slice(0, i + 1), parts.slice(i + 1).join('.')] : parts;
}

function setAt(obj: Record<string, unknown>, path: string[], v: unknown): void {
  let cur: Record<string, unknown> = obj;
  for (const k of path.slice(0, -1)) {
    if (cur[k] === undefined || typeof cur[k] !== 'object') cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = v;
}

/** Validates a parsed lab file; errors: "FILE: field.path: value …: what is allowed". */
export function validateLabFile(raw: unknown, file: string): LabFile {
  const r = LabFileSchema.safeParse(raw ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    const got = issue.code === 'unrecognized_keys' ? '' : ` got ${show(valueAt(raw, issue.path))};`;
    const what = issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}` : message(issue);
    throw new LabFileError(`${file}: ${where}:${got} ${what}`.replace(/:\s+/g, ': ').replace(/; /, ': '));
  }
  const lab = r.data;
  // Sysctls: known, per host, valid values (the registry's rules and messages).
  checkHostSysctls(lab, file);
  const o = lab.loadgens[0]!.options;
  if (o.duration !== undefined && o.requests !== undefined) throw new LabFileError(`${file}: loadgens.0.options: give duration or requests, not both`);
  const zipLens = new Set(Object.values(lab.sweep.zip).map((v) => v.length));
  if (zipLens.size > 1) throw new LabFileError(`${file}: sweep.zip: every axis must have the same number of values, got ${[...zipLens].join(' and ')}`);
  for (const path of [...Object.keys(lab.sweep.matrix), ...Object.keys(lab.sweep.zip)]) {
    if (!/^(server|loadgens\.0|scenario\.options|subnet|runtime)(\.|$)/.test(path)) {
      throw new LabFileError(`${file}: sweep: axis "${path}" is not a field a point can vary (server.*, loadgens.0.*, scenario.options.*)`);
    }
  }
  // Every point must validate too: expand and check each.
  for (const p of expandSweep(lab)) validatePoint(p.config, `${file}: sweep point ${p.id} (${describeSettings(p.settings)})`);
  return lab;
}

/** Every host's sysctls: known, settable per host, a valid value (the registry's rules and messages). */
function checkHostSysctls(lab: LabFile, where: string): void {
  const hosts: Array<[string, Record<string, string | number>]> = [['server.sysctls', lab.server.sysctls], ...lab.loadgens.map((l, i) => [`loadgens.${i}.sysctls`, l.sysctls] as [string, Record<string, string | number>])];
  for (const [path, sysctls] of hosts) {
    for (const [name, v] of Object.entries(sysctls)) {
      try {
        const t = lookup(name);
        if (t.scope === 'global') throw new Error(`${t.name} cannot be set per host: ${t.whyGlobal}`);
        validateValue(t, v);
      } catch (err) {
        throw new LabFileError(`${where}: ${path}.${name}: ${(err as Error).message}`);
      }
    }
  }
  const reserved = RESERVED_PORTS[lab.scenario.name];
  lab.loadgens.forEach((l, i) => {
    const range = l.sysctls['net.ipv4.ip_local_port_range'];
    if (!reserved || range === undefined) return;
    const [lo, hi] = String(range).trim().split(/\s+/).map(Number) as [number, number];
    if (lo <= reserved.last && hi >= reserved.first) {
      throw new LabFileError(`${where}: loadgens.${i}.sysctls.net.ipv4.ip_local_port_range: got ${JSON.stringify(String(range))}: the ${lab.scenario.name} scenario keeps ports ${reserved.first}-${reserved.last} for ${reserved.what}; choose a range outside them`);
    }
  });
}

function validatePoint(config: unknown, where: string): LabFile {
  const r = LabFileSchema.safeParse(config);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new LabFileError(`${where}: ${issue.path.join('.')}: got ${show(valueAt(config, issue.path))}: ${message(issue)}`);
  }
  checkHostSysctls(r.data, where);
  return r.data;
}

export function loadLabFile(file: string): LabFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new LabFileError(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new LabFileError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  return validateLabFile(raw, file);
}

export interface Point {
  /** p001, p002, … in expansion order (stable for a given lab file: resume relies on it). */
  id: string;
  index: number;
  /** The axis values of this point. */
  settings: Record<string, string | number | boolean>;
  config: LabFile;
}

export function describeSettings(s: Point['settings']): string {
  return Object.entries(s).map(([k, v]) => `${k}=${v}`).join(', ') || 'no axes';
}

/** matrix axes × zip rows, in order: the last matrix axis varies fastest. */
export function expandSweep(lab: LabFile): Point[] {
  const axes = Object.entries(lab.sweep.matrix);
  const zipKeys = Object.keys(lab.sweep.zip);
  const zipRows = zipKeys.length ? lab.sweep.zip[zipKeys[0]!]!.map((_, i) => Object.fromEntries(zipKeys.map((k) => [k, lab.sweep.zip[k]![i]!]))) : [{}];
  let combos: Array<Record<string, string | number | boolean>> = [{}];
  for (const [k, values] of axes) combos = combos.flatMap((c) => values.map((v) => ({ ...c, [k]: v })));
  const points: Point[] = [];
  for (const c of combos) {
    for (const z of zipRows) {
      const settings = { ...c, ...z };
      const config = structuredClone(lab) as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(settings)) setAt(config, splitPath(k), v);
      const index = points.length;
      points.push({ id: `p${String(index + 1).padStart(3, '0')}`, index, settings, config: config as unknown as LabFile });
    }
  }
  return points;
}

/** The sysctl settings of a host, validated by the registry. */
export function sysctlSettings(sysctls: Record<string, string | number>): SysctlSetting[] {
  return Object.entries(sysctls).map(([name, v]) => {
    const t = lookup(name);
    return { name: t.name, value: validateValue(t, v), tunable: t };
  });
}

/** A --set value list "16,128" → [16, 128]; integers and true/false are typed, the rest stay strings. */
export function parseSetValues(v: string): Array<string | number | boolean> {
  return v.split(',').map((x) => x.trim()).map((x) => (/^-?\d+$/.test(x) ? Number(x) : x === 'true' ? true : x === 'false' ? false : x));
}

/** `lab run` flags as a lab file: each --set path=v1,v2 is a matrix axis. */
export function labFromFlags(f: { scenario: string; set: string[]; runtime?: string; repetitions?: number; output?: string }): LabFile {
  const matrix: Record<string, Array<string | number | boolean>> = {};
  for (const a of f.set) {
    const i = a.indexOf('=');
    if (i <= 0 || i === a.length - 1) throw new LabFileError(`--set: expected path=value[,value…] (e.g. server.backlog=16,128), got "${a}"`);
    matrix[a.slice(0, i)] = parseSetValues(a.slice(i + 1));
  }
  const raw: Record<string, unknown> = { scenario: { name: f.scenario }, sweep: { matrix } };
  if (f.runtime) raw['runtime'] = f.runtime;
  if (f.repetitions !== undefined) raw['repetitions'] = f.repetitions;
  if (f.output) raw['output'] = f.output;
  try {
    return validateLabFile(raw, '--set');
  } catch (err) {
    // "--set: sweep point …" / "--set: scenario.name …": the flags are the file here.
    throw new LabFileError((err as Error).message.replace(/^--set: (?!sweep)/, ''));
  }
}
