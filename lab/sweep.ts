// `lab sweep FILE` / `lab sweep --resume DIR`: every point of the lab file's sweep, each
// repetition on fresh hosts: create (sysctls set and read back) → server → samplers →
// scenario → state reports → one point record written atomically (temp + rename) →
// destroy. Finished points stay on disk whatever happens later; resume runs the missing ones.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { snapshot, type Snapshot } from '../sysctl/apply.js';
import { describeSettings, expandSweep, sysctlSettings, validateLabFile, type LabFile, type Point } from './labfile.js';
import { counterDeltas, nonZero, type Counters } from './observe/nstat.js';
import { stateReport } from './observe/reports.js';
import { startSampler, summarize, type Sample, type SeriesSummary } from './observe/sampler.js';
import { getRuntime } from './runtime/index.js';
import type { Host, Runtime } from './runtime/runtime.js';
import { SCENARIO_IMPLS, type Driven, type ScenarioResult } from './scenarios/index.js';
import { newRunId, serverStats, startServer, writeJsonAtomic, type UpHandle } from './up.js';

export const POINT_SCHEMA = 'tcplab.point/1';
const PORT = 8080;
const CONTROL_PORT = 9090;

export interface PointRecord {
  schema: typeof POINT_SCHEMA;
  id: string;
  point: string;
  repetition: number;
  settings: Point['settings'];
  runtime: string;
  startedAt: string;
  finishedAt: string;
  config: LabFile;
  hosts: Record<string, { address: string; sysctls: { requested: Record<string, string>; readBack: Snapshot }; counters: { delta: Counters; nonZero: Counters }; series: { summary: SeriesSummary; samples: Sample[] }; reports: string[] }>;
  server: { stats: unknown };
  scenario: { name: string } & ScenarioResult;
}

export interface SweepOptions {
  progress: (line: string) => void;
  /** Points done of the total, the point running, the seconds left (null: not known yet). */
  bar?: { start(total: number, done: number): void; update(done: number, current: string, etaSec: number | null): void; stop(): void };
  handle?: UpHandle;
}

export const recordName = (p: Point, rep: number) => `${p.id}-r${rep}`;

/** Points × repetitions not yet on disk in DIR/points. */
export function missing(dir: string, lab: LabFile): Array<{ point: Point; rep: number }> {
  const done = new Set(existsSync(join(dir, 'points')) ? readdirSync(join(dir, 'points')).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)) : []);
  return expandSweep(lab).flatMap((point) => Array.from({ length: lab.repetitions }, (_, i) => ({ point, rep: i + 1 }))).filter((x) => !done.has(recordName(x.point, x.rep)));
}

/** The runtime's own versions (engine, image tags); the tools' come from a host (hostToolVersions). */
async function runtimeVersions(rt: Runtime): Promise<Record<string, string>> {
  const out: Record<string, string> = { 'lab (node)': process.version };
  if (rt.name === 'docker') {
    const d = rt as unknown as { docker: { version(): Promise<{ Version: string }>; getImage(n: string): { inspect(): Promise<{ Id: string }> } }; prepare(): Promise<{ server: string; loadgen: string }> };
    out['docker engine'] = (await d.docker.version()).Version;
    const im = await d.prepare();
    out['images'] = `${im.server} ${im.loadgen}`;
    for (const role of ['server', 'loadgen'] as const) out[`${role} image id`] = (await d.docker.getImage(im[role]).inspect()).Id;
  }
  return out;
}

const TOOL_VERSION: Array<[string, string[], RegExp]> = [
  ['node', ['node', '-v'], /^v\d/],
  ['ab', ['ab', '-V'], /version/i],
  ['wrk', ['wrk', '-v'], /^wrk \S+/],
  ['hping3', ['hping3', '-v'], /version/i],
  ['nft', ['nft', '--version'], /nftables/i],
  ['ss', ['ss', '-V'], /iproute2/i],
];

/** The versions of the tools as a host runs them (inside the image on Docker). */
export async function hostToolVersions(h: Host): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, argv, re] of TOOL_VERSION) {
    const r = await h.exec(argv, { timeoutMs: 10_000 });
    const line = `${r.stdout}\n${r.stderr}`.split('\n').find((l) => re.test(l.trim()));
    out[name] = r.exitCode === 127 ? 'not installed' : (line?.trim().replace(/\s+Copyright.*$/, '') ?? `unknown (exit ${r.exitCode})`);
  }
  return out;
}

/** Starts a new sweep in OUTPUT/<run-id>/ from a lab file, or resumes one. Returns the folder. */
export async function sweep(source: { file: string | null; lab: LabFile } | { resume: string }, o: SweepOptions): Promise<{ dir: string; ran: number; failed: number }> {
  let dir: string;
  let lab: LabFile;
  if ('resume' in source) {
    dir = source.resume;
    const f = join(dir, 'lab.json');
    if (!existsSync(f)) throw new SweepError(`${dir}: not a sweep folder (no lab.json)`);
    lab = validateLabFile(JSON.parse(readFileSync(f, 'utf8')), f);
  } else {
    lab = source.lab;
    dir = join(lab.output, newRunId());
    mkdirSync(join(dir, 'points'), { recursive: true });
    writeJsonAtomic(join(dir, 'lab.json'), lab);
    // The file as written (a `lab run` from flags has none: lab.json is the whole story).
    if (source.file) writeFileSync(join(dir, 'lab.source.yaml'), readFileSync(source.file));
  }
  mkdirSync(join(dir, 'points'), { recursive: true });
  const runtime = await getRuntime(lab.runtime, { progress: o.progress });
  if (!existsSync(join(dir, 'environment.json'))) {
    writeJsonAtomic(join(dir, 'environment.json'), { kernel: release(), cpus: cpus().length, runtime: runtime.name, versions: await runtimeVersions(runtime), startedAt: new Date().toISOString() });
  }
  const todo = missing(dir, lab);
  const total = expandSweep(lab).length * lab.repetitions;
  o.progress(`lab sweep: ${dir}: ${total} point run(s) (${expandSweep(lab).length} points × ${lab.repetitions}), ${total - todo.length} on disk, ${todo.length} to run on ${runtime.name}`);
  const sweepId = dir.split('/').filter(Boolean).pop()!;
  const t0 = Date.now();
  let failed = 0;
  o.bar?.start(total, total - todo.length);
  try {
    for (const [i, { point, rep }] of todo.entries()) {
      const name = recordName(point, rep);
      const etaSec = i ? Math.round((((Date.now() - t0) / i) * (todo.length - i)) / 1000) : null;
      o.bar?.update(total - todo.length + i, `${name} ${describeSettings(point.settings)}`, etaSec);
      o.progress(`[${total - todo.length + i + 1}/${total}] ${name} ${describeSettings(point.settings)} …`);
      let rec: PointRecord;
      try {
        rec = await runPoint(runtime, `${sweepId}-${name}`, dir, point, rep, o);
      } catch (err) {
        const e = err as Error;
        // The machine or the input is wrong (no engine, a sysctl the kernel refuses, a missing
        // tool, no base image): every point would fail alike, so say that (exit 2), not "point X".
        if (['RuntimeUnavailable', 'SysctlError', 'LoadgenError', 'ImageBuildError'].includes(e.name)) throw err;
        // Keep the whole story for whoever debugs it; the user gets one line.
        const log = join(dir, 'logs', name, 'error.txt');
        mkdirSync(join(dir, 'logs', name), { recursive: true });
        writeFileSync(log, `${e.stack ?? e.message}\n`);
        throw new PointError(`point ${name} failed: ${e.message.split('\n')[0]} (details: ${log}); the ${total - todo.length + i} finished point run(s) are on disk: lab sweep --resume ${dir}`);
      }
      writeJsonAtomic(join(dir, 'points', `${name}.json`), rec);
      const v = rec.scenario.verdicts.map((x) => x.verdict);
      if (v.includes('FAIL')) failed++;
      const left = todo.length - i - 1;
      const eta = left ? `, ETA ${Math.round((((Date.now() - t0) / (i + 1)) * left) / 1000)} s` : '';
      o.progress(`[${total - todo.length + i + 1}/${total}] ${name}: ${v.join(' ')}${eta}`);
    }
    o.bar?.update(total, 'done', 0);
  } finally {
    o.bar?.stop();
  }
  return { dir, ran: todo.length, failed };
}

export class SweepError extends Error {
  override name = 'SweepError';
}

/** A point could not be run (not the user's input): exit 1, finished points kept. */
export class PointError extends Error {
  override name = 'PointError';
}

async function runPoint(runtime: Runtime, runId: string, dir: string, point: Point, rep: number, o: SweepOptions): Promise<PointRecord> {
  const c = point.config;
  const impl = SCENARIO_IMPLS[c.scenario.name];
  const startedAt = new Date().toISOString();
  const handle = o.handle ?? {};
  Object.assign(handle, { runtime, runId });
  const creating = runtime.create({
    runId,
    subnet: c.subnet,
    subnetFallback: true,
    logDir: join(dir, 'logs', `${point.id}-r${rep}`),
    ...(impl.loadgenCaps ? { caps: { 'loadgen-1': impl.loadgenCaps } } : {}),
    hosts: [
      { name: 'server', role: 'server', sysctls: sysctlSettings(c.server.sysctls) },
      { name: 'loadgen-1', role: 'loadgen', sysctls: sysctlSettings(c.loadgens[0]!.sysctls) },
    ],
  });
  handle.creating = creating.catch(() => {});
  try {
    const lab = await creating;
    const server = lab.host('server');
    const client = lab.host('loadgen-1');
    const envFile = join(dir, 'environment.json');
    const env = JSON.parse(readFileSync(envFile, 'utf8')) as { tools?: unknown };
    if (!env.tools) writeJsonAtomic(envFile, { ...env, tools: { [client.name]: await hostToolVersions(client), [server.name]: await hostToolVersions(server) } });
    const readBack: Record<string, Snapshot> = {};
    for (const h of lab.hosts) readBack[h.name] = await snapshot(h);
    const raw = join('raw', `${point.id}-r${rep}`);
    await startServer(server, { port: PORT, controlPort: CONTROL_PORT, ...c.server });
    const before = Object.fromEntries(await Promise.all(lab.hosts.map(async (h) => [h.name, await stateReport(h, dir, 'before', raw)] as const)));
    const samplers = lab.hosts.map((h) => [h.name, startSampler(h, 50)] as const);
    const ctx = { config: c, server, client, port: PORT, controlPort: CONTROL_PORT, serverSysctl: (n: string) => readBack['server']![n] ?? null, clientSysctl: (n: string) => readBack['loadgen-1']![n] ?? null };
    const series: Record<string, Sample[]> = {};
    let driven: Driven;
    try {
      await new Promise((r) => setTimeout(r, 150)); // a few samples before the scenario starts
      driven = await impl.drive(ctx);
    } finally {
      for (const [name, s] of samplers) series[name] = await s.stop();
    }
    const after = Object.fromEntries(await Promise.all(lab.hosts.map(async (h) => [h.name, await stateReport(h, dir, 'after', raw)] as const)));
    // After the reports: the control API's own connection must not move the counters.
    const stats = await serverStats(server, CONTROL_PORT).catch(() => null);
    const counters = Object.fromEntries(lab.hosts.map((h) => [h.name, counterDeltas(before[h.name]!.counters, after[h.name]!.counters)]));
    const verdicts = impl.judge(ctx, driven, { series, counters });
    const hosts: PointRecord['hosts'] = {};
    for (const h of lab.hosts) {
      const delta = counters[h.name]!;
      const requested = h.role === 'server' ? c.server.sysctls : c.loadgens[0]!.sysctls;
      hosts[h.name] = {
        address: h.address,
        sysctls: { requested: Object.fromEntries(Object.entries(requested).map(([k, v]) => [k, String(v)])), readBack: readBack[h.name]! },
        counters: { delta, nonZero: nonZero(delta) },
        series: { summary: summarize(series[h.name] ?? [], h.role === 'server' ? PORT : undefined), samples: series[h.name] ?? [] },
        reports: [...before[h.name]!.files, ...after[h.name]!.files],
      };
    }
    return {
      schema: POINT_SCHEMA,
      id: recordName(point, rep),
      point: point.id,
      repetition: rep,
      settings: point.settings,
      runtime: runtime.name,
      startedAt,
      finishedAt: new Date().toISOString(),
      config: c,
      hosts,
      server: { stats },
      scenario: { name: c.scenario.name, ...driven, verdicts },
    };
  } finally {
    await handle.creating;
    await runtime.destroy(runId);
  }
}
