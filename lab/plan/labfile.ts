// Lab files (YAML) and the flags that stand for one: the schema (zod, built from fields.ts
// and each scenario's options; `lab schema` prints it as JSON Schema), validation of every
// point before anything is created (errors name the file or the flag, the field, the value
// and what is allowed), and the sweep's expansion into points (a matrix of axes, plus `zip`
// for values that move together).
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { lookup, normalizeName, validateValue, type SysctlSetting } from '../../sysctl/registry.js';
import { InputError } from '../../core/errors.js';
import { readText } from '../../core/files.js';
import { badValue, foreignServerMisfit, LabBaseSchema, oneOfText, shareText, threadsText, typed, type PointConfig } from '../../core/fields.js';
import { validateLoad } from '../loadgen/drivers.js';
import { loadOptions } from '../loadgen/result.js';
import { SCENARIO_NAMES, SCENARIOS, scenarioNamed, type Scenario } from '../scenarios/index.js';

/** A scenario's part of a lab file: its name and its own options (each with a default). */
const scenarioSchema = (s: Scenario) => z.object({ name: z.literal(s.name), options: s.options.prefault({}) }).strict();
const [first, ...rest] = SCENARIOS.map(scenarioSchema);
const ScenarioSchema = z.discriminatedUnion('name', [first!, ...rest], { error: oneOfText(SCENARIO_NAMES) });

export const LabFileSchema = LabBaseSchema.extend({ scenario: ScenarioSchema }).strict();

export type LabFile = z.infer<typeof LabFileSchema>;

export class LabFileError extends InputError {}

/** Most points one sweep may expand to (each runs on fresh hosts for seconds at least). */
export const MAX_POINTS = 10_000;

/**
 * Where a bad value came from: a lab file (errors say "FILE: field.path"), or flags (errors
 * name the flag that set the field; `flags` maps field paths to flags).
 */
export type Source = { file: string } | { flags: (path: string) => string | undefined; label: string };

const where = (src: Source, path: string) => ('file' in src ? `${src.file}: ${path || '(top level)'}` : (src.flags(path) ?? `${src.label}: ${path}`));

function valueAt(obj: unknown, path: PropertyKey[]): unknown {
  let cur = obj;
  for (const k of path) cur = cur && typeof cur === 'object' ? (cur as Record<PropertyKey, unknown>)[k as string] : undefined;
  return cur;
}

/** The first schema issue as "WHERE: got VALUE: WHAT IS ALLOWED" (or "WHERE: unknown field(s) …"). */
function schemaError(err: z.ZodError, raw: unknown, at: (path: string) => string): string {
  const issue = err.issues[0]!;
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') return `${at(path)}: unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return badValue(at(path), valueAt(raw, issue.path), issue.message);
}

/** "server.sysctls.net.core.somaxconn" → ['server', 'sysctls', 'net.core.somaxconn']; loadgens.0.x → index 0. */
export function splitPath(path: string): string[] {
  const parts = path.split('.');
  const i = parts.indexOf('sysctls');
  return i >= 0 && i < parts.length - 1 ? [...parts.slice(0, i + 1), parts.slice(i + 1).join('.')] : parts;
}

/** Sets the field at path (parts as splitPath gives them), making the objects on the way. */
export function setAt(obj: Record<string, unknown>, path: string[], v: unknown): void {
  let cur: Record<string, unknown> = obj;
  for (const k of path.slice(0, -1)) {
    if (cur[k] === undefined || typeof cur[k] !== 'object') cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = v;
}

/** An axis path with its sysctl (if it names one) spelled the registry's way. */
function canonicalAxis(path: string): string {
  const m = /^(server|loadgens\.\d+)\.sysctls\.(.+)$/.exec(path);
  return m ? `${m[1]}.sysctls.${normalizeName(m[2]!)}` : path;
}

const AXIS_FIELDS = /^(server|loadgens\.0|scenario\.options|subnet|runtime|placement)(\.|$)/;

/**
 * Validates a lab: the schema, then every point of its sweep as it will run — each host's
 * sysctls, the ports a scenario keeps, the load tool's options, the scenario's own checks.
 * Nothing has been created when this throws.
 */
export function validateLab(raw: unknown, src: Source): LabFile {
  const at = (path: string) => where(src, path);
  const r = LabFileSchema.safeParse(raw ?? {});
  if (!r.success) throw new LabFileError(schemaError(r.error, raw ?? {}, at));
  const lab = r.data;
  const zipLens = new Set(Object.values(lab.sweep.zip).map((v) => v.length));
  if (zipLens.size > 1)
    throw new LabFileError(`${at('sweep.zip')}: every axis must have the same number of values, got ${[...zipLens].join(' and ')}`);
  for (const path of [...Object.keys(lab.sweep.matrix), ...Object.keys(lab.sweep.zip)]) {
    if (!AXIS_FIELDS.test(path))
      throw new LabFileError(`${at('sweep')}: axis "${path}" is not a field a point can vary (server.*, loadgens.0.*, scenario.options.*)`);
  }
  // An axis once, by its canonical name: in matrix and zip, or as two spellings of one sysctl.
  const axes = new Map<string, string>();
  for (const part of ['matrix', 'zip'] as const)
    for (const path of Object.keys(lab.sweep[part])) {
      const first = axes.get(canonicalAxis(path));
      if (first !== undefined) throw new LabFileError(`${at(`sweep.${part}.${path}`)}: the same axis as sweep.${first}; give each axis once`);
      axes.set(canonicalAxis(path), `${part}.${path}`);
    }
  const x = lab.sweep.x;
  if (x !== undefined && !(x === 'zip' ? Object.keys(lab.sweep.zip).length > 0 : x in lab.sweep.matrix)) {
    const allowed = [...Object.keys(lab.sweep.matrix), ...(Object.keys(lab.sweep.zip).length ? ['zip'] : [])];
    throw new LabFileError(badValue(at('sweep.x'), x, allowed.length ? `one of ${allowed.join(', ')}` : 'a swept axis (this sweep has none)'));
  }
  const count = Object.values(lab.sweep.matrix).reduce((n, v) => n * v.length, 1) * (Object.values(lab.sweep.zip)[0]?.length ?? 1);
  if (count * lab.repetitions > MAX_POINTS) {
    throw new LabFileError(
      `${at('sweep')}: ${count} points × ${lab.repetitions} repetitions is more than the ${MAX_POINTS} point runs a sweep may have`,
    );
  }
  const points = expandSweep(lab);
  if (!points.length || !Object.keys(points[0]!.settings).length) {
    checkPoint(lab, src, at);
    return lab;
  }
  for (const p of points) {
    const pointAt = (path: string) => `${'file' in src ? `${src.file}: ` : ''}sweep point ${p.id} (${describeSettings(p.settings)}): ${path}`;
    const pr = LabFileSchema.safeParse(p.config);
    if (!pr.success) throw new LabFileError(schemaError(pr.error, p.config, pointAt));
    checkPoint(pr.data, src, pointAt);
  }
  return lab;
}

/** What the schema alone cannot say about one point. */
function checkPoint(c: LabFile, src: Source, at: (path: string) => string): void {
  const hosts: Array<[string, Record<string, string | number>]> = [
    ['server.sysctls', c.server.sysctls],
    ...c.loadgens.map((l, i): [string, Record<string, string | number>] => [`loadgens.${i}.sysctls`, l.sysctls]),
  ];
  for (const [path, sysctls] of hosts) {
    const seen = new Map<string, string>();
    for (const [name, v] of Object.entries(sysctls)) {
      const canonical = normalizeName(name);
      const first = seen.get(canonical);
      if (first !== undefined) throw new LabFileError(`${at(`${path}.${name}`)}: the same sysctl as ${first}; give it once`);
      seen.set(canonical, name);
      try {
        const t = lookup(name);
        if (t.scope === 'global') throw new Error(`${t.name} cannot be set per host: ${t.whyGlobal}`);
        validateValue(t, v);
      } catch (err) {
        throw new LabFileError(`${at(`${path}.${name}`)}: ${(err as Error).message}`);
      }
    }
  }
  const misfit = foreignServerMisfit(c.server);
  if (misfit) throw new LabFileError(badValue(at(misfit[0]), misfit[1], misfit[2]));
  const placed = Object.keys(c.placement).find((k) => c.placement[k as keyof typeof c.placement] !== undefined);
  if (placed && c.runtime !== 'swarm')
    throw new LabFileError(
      badValue(at(`placement.${placed}`), c.placement[placed as keyof typeof c.placement], 'runtime swarm (placement puts hosts on swarm nodes)'),
    );
  if (c.server.kind === 'command' && c.server.image !== undefined && (c.runtime === 'netns' || c.runtime === 'rootless'))
    throw new LabFileError(
      badValue(at('server.image'), c.server.image, `runtime docker (the ${c.runtime} runtime runs no image: give server.command, an argv, instead)`),
    );
  // The lab's tools join an image's namespaces from a container of their own (NetworkMode
  // container:<id>), which a swarm service cannot do.
  if (c.server.kind === 'command' && c.server.image !== undefined && c.runtime === 'swarm')
    throw new LabFileError(
      badValue(
        at('server.image'),
        c.server.image,
        "runtime docker (a swarm service cannot join another container's namespaces, which the lab's tools need)",
      ),
    );
  // The reactor's own rules for threads and share (another kind says what they mean to it above).
  const reactor = c.server.kind === 'tcplab';
  const one = reactor ? threadsText(c.server.model) : null;
  if (one && c.server.threads !== 1) throw new LabFileError(badValue(at('server.threads'), c.server.threads, one));
  const shares = reactor ? shareText(c.server.model) : null;
  if (shares && c.server.share !== 'accept' && c.server.share !== 'reuseport')
    throw new LabFileError(badValue(at('server.share'), c.server.share, shares));
  if (c.loadgens[0]!.count > 1 && c.scenario.name !== 'throughput')
    throw new LabFileError(
      badValue(
        at('loadgens.0.count'),
        c.loadgens[0]!.count,
        `1 for scenario ${c.scenario.name} (only throughput drives several load generators and merges them)`,
      ),
    );
  const lo = c.loadgens[0]!.options;
  if (lo.duration !== undefined && lo.requests !== undefined)
    throw new LabFileError(`${at('loadgens.0.options')}: give duration or requests, not both`);
  if (c.server.port === c.server.controlPort)
    throw new LabFileError(`${at('server.controlPort')}: got ${c.server.controlPort}: a port other than the server's HTTP port (${c.server.port})`);
  const impl = scenarioNamed(c.scenario.name)!;
  const reserved = impl.reservedPorts;
  c.loadgens.forEach((l, i) => {
    // By its canonical name, whatever the file's spelling (net/ipv4/… too).
    const given = Object.entries(l.sysctls).find(([n]) => normalizeName(n) === 'net.ipv4.ip_local_port_range');
    if (!reserved || given === undefined) return;
    const [spelled, range] = given;
    const [lo, hi] = validateValue(lookup('net.ipv4.ip_local_port_range'), range).split(' ').map(Number) as [number, number];
    if (lo <= reserved.last && hi >= reserved.first) {
      const what = `the ${c.scenario.name} scenario keeps ports ${reserved.first}-${reserved.last} for ${reserved.what}; choose a range outside them`;
      throw new LabFileError(badValue(at(`loadgens.${i}.sysctls.${spelled}`), String(range), what));
    }
  });
  if (impl.usesLoadTool) {
    const lg = c.loadgens[0]!;
    try {
      validateLoad(lg.tool, loadOptions(lg.options, 'http://198.18.0.1/'));
    } catch (err) {
      throw new LabFileError(`${'file' in src ? `${at('loadgens.0')}: ` : ''}${(err as Error).message}`);
    }
  }
  const scenarioOptions = impl.options.parse(c.scenario.options);
  const reactorOnly = c.server.kind === 'tcplab' ? null : impl.needsReactor?.(scenarioOptions);
  if (reactorOnly)
    throw new LabFileError(
      `${at('server.kind')}: got "${c.server.kind}": tcplab for scenario ${c.scenario.name} (${reactorOnly}; server.kind ${c.server.kind} cannot provide it)`,
    );
  const problem = impl.check?.(c, scenarioOptions);
  if (problem) throw new LabFileError(`${at('scenario')}: ${problem}`);
}

export function loadLabFile(file: string): LabFile {
  const text = readText(file, LabFileError);
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new LabFileError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  return validateLab(raw, { file });
}

/** A lab file as written, already parsed (lab.json of a sweep being resumed). */
export const validateLabFile = (raw: unknown, file: string): LabFile => validateLab(raw, { file });

export interface Point {
  /** p001, p002, … in expansion order (stable for a given lab file: resume relies on it). */
  id: string;
  index: number;
  /** The axis values of this point. */
  settings: Record<string, string | number | boolean>;
  config: PointConfig;
}

export function describeSettings(s: Point['settings']): string {
  return (
    Object.entries(s)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ') || 'no axes'
  );
}

const expanded = new WeakMap<LabFile, Point[]>();

/**
 * matrix axes × zip rows, in order: the last matrix axis varies fastest. Expanded once per lab
 * (validation, the sweep's checks and its run all read the same points).
 */
export function expandSweep(lab: LabFile): Point[] {
  let points = expanded.get(lab);
  if (!points) expanded.set(lab, (points = expand(lab)));
  return points;
}

function expand(lab: LabFile): Point[] {
  const axes = Object.entries(lab.sweep.matrix);
  const zipKeys = Object.keys(lab.sweep.zip);
  const zipRows = zipKeys.length
    ? lab.sweep.zip[zipKeys[0]!]!.map((_, i) => Object.fromEntries(zipKeys.map((k) => [k, lab.sweep.zip[k]![i]!])))
    : [{}];
  let combos: Array<Record<string, string | number | boolean>> = [{}];
  for (const [k, values] of axes) combos = combos.flatMap((c) => values.map((v) => ({ ...c, [k]: v })));
  const points: Point[] = [];
  for (const c of combos) {
    for (const zr of zipRows) {
      const settings = { ...c, ...zr };
      const config: PointConfig = structuredClone(lab);
      for (const [k, v] of Object.entries(settings)) setAt(config, splitPath(k), v);
      const index = points.length;
      points.push({ id: `p${String(index + 1).padStart(3, '0')}`, index, settings, config });
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

/** A --set value list "16,128" → [16, 128]. */
export function parseSetValues(v: string): Array<string | number | boolean> {
  return v.split(',').map((x) => typed(x.trim()));
}

/** `lab run` flags as a lab file: each --set path=v1,v2 is a matrix axis. */
export function labFromFlags(f: {
  scenario: string;
  set: string[];
  runtime?: string;
  repetitions?: string;
  output?: string;
  trace?: boolean;
  capture?: boolean;
}): LabFile {
  const matrix: Record<string, Array<string | number | boolean>> = {};
  for (const a of f.set) {
    const i = a.indexOf('=');
    if (i <= 0 || i === a.length - 1) throw new LabFileError(`--set: expected path=value[,value…] (e.g. server.backlog=16,128), got "${a}"`);
    const path = a.slice(0, i);
    if (path in matrix) throw new LabFileError(`--set: ${path} is given twice; give its values once, comma-separated`);
    matrix[path] = parseSetValues(a.slice(i + 1));
  }
  const raw: Record<string, unknown> = { scenario: { name: f.scenario }, sweep: { matrix } };
  if (f.runtime) raw['runtime'] = f.runtime;
  if (f.repetitions !== undefined) raw['repetitions'] = typed(f.repetitions);
  if (f.output) raw['output'] = f.output;
  if (f.trace) raw['trace'] = true;
  if (f.capture) raw['capture'] = true;
  const flags: Record<string, string> = {
    runtime: '--runtime',
    repetitions: '--repetitions',
    output: '--output',
    'scenario.name': '--scenario',
    trace: '--trace',
    capture: '--capture',
  };
  return validateLab(raw, { flags: (p) => flags[p], label: '--set' });
}
