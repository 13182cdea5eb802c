// `lab tune FILE` / `lab tune --resume DIR`: from an objective to the smallest settings that meet
// it. The kernel model ranks the candidates (cheapest first: each value's place in its list,
// summed) and prunes those its rules say cannot meet the objective, each pruning recorded with
// its rule; real points confirm, cheapest first, until one meets it or the budget (points,
// minutes) runs out. Then the chosen settings run again at each headroom multiple of the
// workload, and the outputs a user applies are written and checked by their own tools.
// Each point is a record in DIR/points as a sweep's (p001 … in the order they ran), written
// whole before the next starts; --resume replays the search and runs only what is not on disk.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { EnvironmentError, isLabError, PointError, SweepError } from '../../core/errors.js';
import { DEFAULT_SUBNET } from '../../core/fields.js';
import { makeDir, readJson, writeAtomic, writeJsonAtomic } from '../../core/files.js';
import { describeSettings, setAt, splitPath, type Point } from '../plan/labfile.js';
import { judge, limitNeeded, measured, modelFor, sizeOf, validateTune, valuesText, type ModelSays, type Tune, type Values } from '../plan/tune.js';
import { prometheusTest, serverSysctls, tuneOutputs } from '../plan/tune-outputs.js';
import { validateManifests } from '../plan/k8s.js';
import { ListenWatchPool } from '../observe/listen-calls.js';
import { loadPoint, type PointRecord } from './record.js';
import { recordName, runPoint, type LabHandle } from './point.js';
import { newRunId, preflight, recordToolVersions } from './sweep.js';

export const TUNE_SCHEMA = 'tcplab.tune/1';

export interface TuneStep {
  /** The point it ran as (p001 …); none when pruned or left out. */
  point: string | null;
  settings: Point['settings'];
  cost: number;
  model: ModelSays & { met: boolean | null; missed: string[] };
  /** pruned: the model says it cannot meet the objective; ran: a real point; left: the budget ran out first. */
  action: 'pruned' | 'ran' | 'left';
  observed?: Values;
  met?: boolean | null;
  missed?: string[];
  /** The point's own verdicts: how many PASS, FAIL, INCONCLUSIVE. */
  verdicts?: Record<string, number>;
}

export interface HeadroomRun {
  factor: number;
  size: number;
  point: string;
  model: ModelSays & { met: boolean | null; missed: string[] };
  observed: Values;
  met: boolean | null;
  missed: string[];
}

export interface OutputCheck {
  file: string;
  tool: string;
  ok: boolean;
  detail: string;
}

export interface TuneResult {
  schema: typeof TUNE_SCHEMA;
  file: string;
  objective: Tune['spec']['objective'];
  /** The workload's size field, and its value. */
  workload: { scenario: string; scaled: string; size: number };
  steps: TuneStep[];
  chosen: { point: string; settings: Point['settings']; modelWasRight: boolean } | null;
  /** Why nothing met the objective (null when something did). */
  limitedBy: string | null;
  headroom: HeadroomRun[];
  outputs: OutputCheck[];
  unsafeSysctls: string[];
  met: boolean;
}

export interface TuneOptions {
  progress: (line: string) => void;
  handle?: LabHandle;
}

const verdictCounts = (p: PointRecord) =>
  Object.fromEntries(['PASS', 'FAIL', 'INCONCLUSIVE'].map((v) => [v, p.scenario.verdicts.filter((x) => x.verdict === v).length]));

/** Runs a tune (fresh from a file, or resumed from its folder); the result, written to DIR/tune.json. */
export async function tune(
  source: { file: string; raw: unknown } | { resume: string },
  o: TuneOptions,
): Promise<{ dir: string; result: TuneResult }> {
  let dir: string;
  let t: Tune;
  const fresh = !('resume' in source);
  if ('resume' in source) {
    dir = source.resume;
    const f = join(dir, 'tune.source.json');
    if (!existsSync(f)) throw new SweepError(`${dir}: not a tune folder (no tune.source.json)`);
    const saved = readJson(f) as { file: string; raw: unknown };
    t = validateTune(saved.raw, saved.file);
  } else {
    t = validateTune(source.raw, source.file);
    dir = join(t.lab.output, newRunId());
  }
  const runtime = await preflight(t.candidates, t.lab, { progress: o.progress });
  if (fresh && 'raw' in source) {
    makeDir(join(dir, 'points'));
    writeJsonAtomic(join(dir, 'tune.source.json'), { file: source.file, raw: source.raw });
  }
  makeDir(join(dir, 'points'));
  makeDir(join(dir, 'logs'));
  const envFile = join(dir, 'environment.json');
  if (!existsSync(envFile))
    writeJsonAtomic(envFile, { kernel: release(), cpus: cpus().length, runtime: runtime.name, startedAt: new Date().toISOString() });
  const onDisk = new Set(readdirSync(join(dir, 'points')).filter((f) => f.endsWith('.json')));
  const sweepId = dir.split('/').filter(Boolean).pop()!;
  const listenWatches = new ListenWatchPool(join(dir, 'logs'));
  const { objective } = t.spec;
  let ran = 0;
  let spentMs = 0;

  /** A point of the tune: from disk when a run before this one finished it, else run now. */
  const point = async (settings: Point['settings'], config: Point['config'], what: string): Promise<PointRecord> => {
    ran++;
    const id = `p${String(ran).padStart(3, '0')}`;
    const p: Point = { id, index: ran - 1, settings, config };
    const name = recordName(p, 1);
    const file = join(dir, 'points', `${name}.json`);
    if (onDisk.has(`${name}.json`)) {
      const rec = loadPoint(file);
      if (describeSettings(rec.settings) !== describeSettings(settings))
        throw new SweepError(
          `${file}: ran ${describeSettings(rec.settings)}, where the search now asks for ${describeSettings(settings)}: not this tune's point`,
        );
      spentMs += Date.parse(rec.finishedAt) - Date.parse(rec.startedAt);
      o.progress(`lab tune: ${name} ${what} ${describeSettings(settings)}: on disk`);
      return rec;
    }
    o.progress(`lab tune: ${name} ${what} ${describeSettings(settings)} …`);
    let rec: PointRecord;
    try {
      rec = await runPoint({
        runtime,
        dir,
        runId: `${sweepId}-${name}`,
        point: p,
        repetition: 1,
        subnetFallback: config.subnet === DEFAULT_SUBNET,
        handle: o.handle ?? {},
        progress: (l) => o.progress(`lab tune: ${l}`),
        onHosts: (hosts) => recordToolVersions(envFile, hosts),
        listenWatches,
      });
    } catch (err) {
      const lost = await runtime.lost(err);
      if (lost) throw new EnvironmentError(`${lost.reason} during point ${name}: ${lost.fix}, then \`lab down\` and \`lab tune --resume ${dir}\``);
      if (isLabError(err)) throw err;
      const log = join(dir, 'logs', name, 'error.txt');
      mkdirSync(join(dir, 'logs', name), { recursive: true });
      writeAtomic(log, `${(err as Error).stack ?? err}\n`);
      throw new PointError(
        `point ${name} failed: ${(err as Error).message.split('\n')[0]} (details: ${log}); the points before it are on disk: lab tune --resume ${dir}`,
      );
    }
    writeJsonAtomic(file, rec);
    spentMs += Date.parse(rec.finishedAt) - Date.parse(rec.startedAt);
    return rec;
  };

  const withModel = (config: Point['config']) => {
    const m = modelFor(config);
    const j = judge(objective, m.values);
    return { ...m, met: j.met, missed: j.missed };
  };

  const steps: TuneStep[] = [...t.candidates]
    .sort((a, b) => a.cost - b.cost || a.index - b.index)
    .map((c) => {
      const model = withModel(c.config);
      return { point: null, settings: c.settings, cost: c.cost, model, action: model.met === false ? 'pruned' : 'left' };
    });
  const configOf = new Map(t.candidates.map((c) => [describeSettings(c.settings), c.config]));
  const pruned = steps.filter((s) => s.action === 'pruned').length;
  o.progress(
    `lab tune: ${dir}: ${steps.length} candidate(s); the model prunes ${pruned}${pruned ? ` (e.g. ${describeSettings(steps.find((s) => s.action === 'pruned')!.settings)}: ${steps.find((s) => s.action === 'pruned')!.model.missed.join(', ')})` : ''}; at most ${t.spec.search.maxPoints} point(s), ${t.spec.search.maxMinutes} min`,
  );
  // What runs: the candidates the model lets through, cheapest first; when it lets none through,
  // the one it says comes nearest (the largest accept queue), to confirm its verdict.
  let queue = steps.filter((s) => s.action === 'left');
  if (!queue.length && steps.length) queue = [[...steps].sort((a, b) => b.model.limit - a.model.limit || a.cost - b.cost)[0]!];
  let chosen: TuneResult['chosen'] = null;
  const budgetMs = t.spec.search.maxMinutes * 60_000;
  let budgetOut = false;
  try {
    for (const s of queue) {
      if (ran >= t.spec.search.maxPoints || spentMs >= budgetMs) {
        budgetOut = true;
        break;
      }
      const rec = await point(s.settings, configOf.get(describeSettings(s.settings))!, 'candidate');
      const v = measured(rec);
      const j = judge(objective, v);
      Object.assign(s, { point: rec.point, action: 'ran', observed: v, met: j.met, missed: j.missed, verdicts: verdictCounts(rec) });
      o.progress(
        `lab tune: ${rec.id}: ${valuesText(v)}: ${j.met ? 'objective met' : j.met === null ? `not measured: ${j.unknown.join(', ')}` : `missed: ${j.missed.join(', ')}`} (the model said ${s.model.met === false ? 'missed' : s.model.met === null ? 'nothing' : 'met'})`,
      );
      if (j.met) {
        chosen = { point: rec.point, settings: s.settings, modelWasRight: s.model.met !== false };
        break;
      }
    }
    // The headroom: the chosen settings at each multiple of the workload.
    const headroom: HeadroomRun[] = [];
    if (chosen) {
      const base = configOf.get(describeSettings(chosen.settings))!;
      const size = sizeOf(base, t.scaled);
      for (const f of t.spec.headroom) {
        const config = structuredClone(base);
        const bigger = Math.round(size * f);
        setAt(config, splitPath(t.scaled), bigger);
        const rec = await point({ ...chosen.settings, [t.scaled]: bigger }, config, `headroom ${f}×`);
        const v = measured(rec);
        const j = judge(objective, v);
        headroom.push({ factor: f, size: bigger, point: rec.point, model: withModel(config), observed: v, met: j.met, missed: j.missed });
        o.progress(
          `lab tune: ${rec.id} (${f}× ${t.scaled.split('.').pop()} ${bigger}): ${valuesText(v)}: ${j.met ? 'holds' : `breaks: ${j.missed.join(', ') || j.unknown.join(', ')}`}`,
        );
      }
    }
    const limitedBy = chosen ? null : whyNot(t, steps, budgetOut);
    const result: TuneResult = {
      schema: TUNE_SCHEMA,
      file: t.file,
      objective,
      workload: { scenario: t.lab.scenario.name, scaled: t.scaled, size: sizeOf(t.lab, t.scaled) },
      steps,
      chosen,
      limitedBy,
      headroom,
      outputs: [],
      unsafeSysctls: [],
      met: chosen !== null,
    };
    if (chosen) {
      const config = configOf.get(describeSettings(chosen.settings))!;
      const out = tuneOutputs(config, objective, `lab tune ${t.file}: ${describeSettings(chosen.settings)} (point ${chosen.point} of ${sweepId})`);
      result.unsafeSysctls = out.unsafe;
      makeDir(join(dir, 'apply', 'sysctl.d'));
      for (const x of out.outputs) writeAtomic(join(dir, 'apply', x.file), x.text);
      // promtool's test: the points that ran, their counters before and after.
      const recs = steps
        .filter((s) => s.point)
        .map((s) => loadPoint(join(dir, 'points', `${s.point}-r1.json`)))
        .concat(headroom.map((h) => loadPoint(join(dir, 'points', `${h.point}-r1.json`))));
      writeAtomic(
        join(dir, 'apply', 'prometheus-rules.test.yaml'),
        prometheusTest(
          out.watches,
          recs.map((r) => ({ id: r.point, before: r.hosts['server']!.counters.before, after: r.hosts['server']!.counters.after })),
        ),
      );
      result.outputs = await checkOutputs(join(dir, 'apply'), config, out.pod, o.progress);
    }
    writeJsonAtomic(join(dir, 'tune.json'), result);
    return { dir, result };
  } finally {
    await listenWatches.close();
  }
}

/** Why no candidate met the objective: the budget, or what the model and the points say limits. */
function whyNot(t: Tune, steps: TuneStep[], budgetOut: boolean): string {
  const runs = steps.filter((s) => s.action === 'ran');
  const left = steps.filter((s) => s.action === 'left').length;
  if (budgetOut && left)
    return `the search's budget ran out (${t.spec.search.maxPoints} point(s), ${t.spec.search.maxMinutes} min) with ${left} candidate(s) the model allows not run: raise search.maxPoints or search.maxMinutes, then lab tune --resume`;
  const best = [...steps].sort((a, b) => b.model.limit - a.model.limit || a.cost - b.cost)[0]!;
  const o = t.lab.scenario.options as Record<string, unknown>;
  const parts: string[] = [];
  if (t.lab.scenario.name === 'arrivals' && o['acceptRate']) {
    const need = limitNeeded(t.candidates.find((c) => describeSettings(c.settings) === describeSettings(best.settings))!.config);
    const load =
      o['schedule'] === 'bursts'
        ? `bursts of ${o['burst']} every ${o['periodMs']} ms`
        : `${o['rate']} new connections/s for ${Number(o['durationMs']) / 1000} s`;
    parts.push(
      `the server accepts ${o['acceptRate']} connections/s; ${load} ${need === null ? 'overflow any accept queue (up to 65535)' : `need an accept queue limit of ${need.toLocaleString('en-US')} for no SYN to be dropped`}, and the candidates reach ${best.model.limit.toLocaleString('en-US')}`,
    );
  } else parts.push(`the best candidate (${describeSettings(best.settings)}): ${best.model.rule}`);
  if (runs.length) parts.push(`measured: ${runs.map((r) => `${r.point} ${r.missed?.join(', ') || 'not measured'}`).join('; ')}`);
  return parts.join('; ');
}

/**
 * Each output checked by the tool it is for, where this machine has it: the sysctl.d file
 * applied with `sysctl -p` in a fresh network namespace and read back; the pod against the
 * Kubernetes API schema; the compose file with `docker compose config`; the rules with
 * `promtool check rules` and `promtool test rules`.
 */
export async function checkOutputs(
  dir: string,
  config: Point['config'],
  pod: Record<string, unknown>,
  progress: (l: string) => void,
): Promise<OutputCheck[]> {
  const out: OutputCheck[] = [];
  const run = async (file: string, tool: string, argv: string[], ok: (stdout: string) => string | null) => {
    const r = await execa(argv[0]!, argv.slice(1), { cwd: dir, reject: false, timeout: 60_000 });
    if ((r as { code?: string }).code === 'ENOENT') out.push({ file, tool, ok: false, detail: `${argv[0]} is not installed here: not checked` });
    else {
      const bad = r.exitCode === 0 ? ok(r.stdout) : `exit ${r.exitCode}: ${(r.stderr || r.stdout).trim().split('\n').slice(-1)[0]}`;
      out.push({ file, tool, ok: bad === null, detail: bad ?? 'ok' });
    }
  };
  const conf = 'sysctl.d/90-tcplab-tune.conf';
  if (process.getuid?.() === 0) {
    const want = serverSysctls(config);
    const norm = (v: string) => v.trim().replace(/\s+/g, ' ');
    const argv = ['unshare', '--net', '--', 'bash', '-c', 'sysctl -q -p "$1" && shift && sysctl -n -- "$@"', 'bash', conf, ...want.map(([n]) => n)];
    await run(conf, 'sysctl -p in a fresh network namespace, read back', argv, (stdout) => {
      const got = stdout.trim().split('\n').map(norm);
      const wrong = want.map(([n, v], i) => [n, norm(v), got[i]] as const).filter(([, v, g]) => g !== v);
      return wrong.length ? `read back ${wrong.map(([n, v, g]) => `${n}=${g ?? 'nothing'} (wrote ${v})`).join(', ')}` : null;
    });
  } else out.push({ file: conf, tool: 'sysctl -p', ok: false, detail: 'needs root (a fresh network namespace): not checked' });
  try {
    validateManifests([pod]);
    out.push({ file: 'k8s-pod-sysctls.yaml', tool: 'the Kubernetes API schema (kubernetes-models)', ok: true, detail: 'ok' });
  } catch (err) {
    out.push({
      file: 'k8s-pod-sysctls.yaml',
      tool: 'the Kubernetes API schema (kubernetes-models)',
      ok: false,
      detail: (err as Error).message.split('\n')[0]!,
    });
  }
  const v2 = await execa('docker', ['compose', 'version'], { reject: false });
  const compose = v2.exitCode === 0 ? ['docker', 'compose'] : ['docker-compose'];
  await run('compose-sysctls.yaml', `${compose.join(' ')} config`, [...compose, '-f', 'compose-sysctls.yaml', 'config', '-q'], () => null);
  await run('prometheus-rules.yaml', 'promtool check rules', ['promtool', 'check', 'rules', 'prometheus-rules.yaml'], () => null);
  await run('prometheus-rules.test.yaml', 'promtool test rules', ['promtool', 'test', 'rules', 'prometheus-rules.test.yaml'], () => null);
  for (const c of out) progress(`lab tune: ${c.file}: ${c.tool}: ${c.detail}`);
  return out;
}
