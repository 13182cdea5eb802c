// `lab compare DIR_A DIR_B`: two sweeps of one scenario, point by point (matched by their
// settings). For each of the scenario's quantities: the mean over repetitions in A and in B,
// the change, and the noise — the larger spread (max − min over repetitions) of the two, and
// at least THRESHOLD of A's mean. A change beyond the noise is flagged: a regression when the
// quantity has a better direction and moved the other way, else a change. A rule whose verdict
// went from PASS to FAIL is a regression too.
import { describeSettings } from '../plan/labfile.js';
import { loadPoints } from './report.js';
import type { PointRecord } from '../pipeline/record.js';
import { scenarioNamed } from '../scenarios/index.js';
import { SweepError } from '../../core/errors.js';

export interface MetricDiff {
  point: string;
  metric: string;
  a: number | null;
  b: number | null;
  /** B − A. */
  delta: number | null;
  /** The change B − A must exceed to be flagged. */
  noise: number | null;
  flag: 'regression' | 'improvement' | 'change' | null;
}

export interface VerdictDiff {
  point: string;
  rule: string;
  a: string;
  b: string;
  flag: 'regression' | 'improvement';
}

export interface Comparison {
  scenario: string;
  metrics: MetricDiff[];
  verdicts: VerdictDiff[];
  onlyInA: string[];
  onlyInB: string[];
  regressions: number;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

function byPoint(points: PointRecord[]): Map<string, PointRecord[]> {
  const m = new Map<string, PointRecord[]>();
  for (const p of points) {
    const k = describeSettings(p.settings);
    m.set(k, [...(m.get(k) ?? []), p]);
  }
  return m;
}

export function compare(dirA: string, dirB: string, threshold = 0.1): Comparison {
  const A = loadPoints(dirA);
  const B = loadPoints(dirB);
  if (!A.length) throw new SweepError(`${dirA}: no point records yet`);
  if (!B.length) throw new SweepError(`${dirB}: no point records yet`);
  const scenario = A[0]!.scenario.name;
  if (B[0]!.scenario.name !== scenario)
    throw new SweepError(`${dirA} is a ${scenario} sweep, ${dirB} a ${B[0]!.scenario.name} sweep: compare sweeps of one scenario`);
  const impl = scenarioNamed(scenario);
  if (!impl) throw new SweepError(`${dirA}: a sweep of an unknown scenario "${scenario}"`);
  const a = byPoint(A);
  const b = byPoint(B);
  const out: Comparison = {
    scenario,
    metrics: [],
    verdicts: [],
    onlyInA: [...a.keys()].filter((k) => !b.has(k)),
    onlyInB: [...b.keys()].filter((k) => !a.has(k)),
    regressions: 0,
  };
  for (const [key, ra] of a) {
    const rb = b.get(key);
    if (!rb) continue;
    for (const m of impl.report.metrics) {
      const va = ra.map(m.value).filter((v): v is number => v !== null);
      const vb = rb.map(m.value).filter((v): v is number => v !== null);
      if (!va.length || !vb.length) {
        out.metrics.push({
          point: key,
          metric: m.label,
          a: va.length ? round(mean(va)) : null,
          b: vb.length ? round(mean(vb)) : null,
          delta: null,
          noise: null,
          flag: null,
        });
        continue;
      }
      const ma = mean(va);
      const mb = mean(vb);
      const delta = mb - ma;
      const noise = Math.max(spread(va), spread(vb), Math.abs(ma) * threshold);
      let flag: MetricDiff['flag'] = null;
      if (Math.abs(delta) > noise) flag = !m.better ? 'change' : delta > 0 === (m.better === 'higher') ? 'improvement' : 'regression';
      out.metrics.push({ point: key, metric: m.label, a: round(ma), b: round(mb), delta: round(delta), noise: round(noise), flag });
    }
    // Verdicts: the first repetition's rules, by rule text.
    const vb = new Map(rb[0]!.scenario.verdicts.map((v) => [v.rule, v.verdict]));
    for (const v of ra[0]!.scenario.verdicts) {
      const now = vb.get(v.rule);
      if (!now || now === v.verdict) continue;
      if (v.verdict === 'PASS' && now === 'FAIL') out.verdicts.push({ point: key, rule: v.rule, a: v.verdict, b: now, flag: 'regression' });
      else if (v.verdict === 'FAIL' && now === 'PASS') out.verdicts.push({ point: key, rule: v.rule, a: v.verdict, b: now, flag: 'improvement' });
    }
  }
  out.regressions = out.metrics.filter((m) => m.flag === 'regression').length + out.verdicts.filter((v) => v.flag === 'regression').length;
  return out;
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const spread = (xs: number[]) => Math.max(...xs) - Math.min(...xs);

export function renderComparison(c: Comparison, dirA: string, dirB: string): string {
  const lines = [`lab compare: ${c.scenario}: A = ${dirA}, B = ${dirB}`, ''];
  const fmt = (v: number | null) => (v === null ? '–' : String(v));
  lines.push('| point | quantity | A | B | B − A | noise | flag |', '| --- | --- | --- | --- | --- | --- | --- |');
  for (const m of c.metrics)
    lines.push(
      `| ${m.point} | ${m.metric} | ${fmt(m.a)} | ${fmt(m.b)} | ${fmt(m.delta)} | ${fmt(m.noise)} | ${m.flag ? `**${m.flag.toUpperCase()}**` : ''} |`,
    );
  if (c.verdicts.length) {
    lines.push('', '| point | rule | A | B | flag |', '| --- | --- | --- | --- | --- |');
    for (const v of c.verdicts) lines.push(`| ${v.point} | ${v.rule} | ${v.a} | ${v.b} | **${v.flag.toUpperCase()}** |`);
  }
  for (const k of c.onlyInA) lines.push(`only in A: ${k}`);
  for (const k of c.onlyInB) lines.push(`only in B: ${k}`);
  lines.push(
    '',
    `${c.regressions} regression(s) beyond the noise; ${c.metrics.filter((m) => m.flag === 'improvement').length + c.verdicts.filter((v) => v.flag === 'improvement').length} improvement(s); ${c.metrics.filter((m) => m.flag === 'change').length} other change(s).`,
  );
  return lines.join('\n') + '\n';
}
