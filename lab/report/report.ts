// `lab report DIR`: report.md (and report.html, see report-html.ts) from a sweep folder's point records: the verdict table
// (predicted next to observed, per point and rule), the sysctls read back per host, and
// links to the raw state reports. Every number comes from the records, nothing else.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readJson, writeAtomic } from '../../core/files.js';
import { describeSettings } from '../plan/labfile.js';
import { loadPoint, type PointRecord } from '../pipeline/record.js';
import { LISTEN_COLUMNS, listenCells } from '../pipeline/listen.js';
import { explanations, headline, renderHtml } from './html.js';
import { SweepError } from '../../core/errors.js';
import { loadTune, tuneHtml, tuneMarkdown } from './tune.js';

export function loadPoints(dir: string): PointRecord[] {
  const pdir = join(dir, 'points');
  if (!existsSync(pdir)) throw new SweepError(`${dir}: not a sweep folder (no points/)`);
  return readdirSync(pdir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => loadPoint(join(pdir, f)));
}

const cell = (v: unknown) => (v === null || v === undefined ? '–' : String(v)).replace(/\|/g, '\\|');

export function loadEnvironment(dir: string): Record<string, unknown> {
  return existsSync(join(dir, 'environment.json')) ? (readJson(join(dir, 'environment.json')) as Record<string, unknown>) : {};
}

export function renderMarkdown(dir: string, points: PointRecord[], env: Record<string, unknown> = loadEnvironment(dir)): string {
  const out: string[] = [];
  const scen = [...new Set(points.map((p) => p.scenario.name))].join(', ');
  out.push(`# tcplab sweep ${dir.split('/').filter(Boolean).pop()}`, '');
  out.push(
    `Scenario: ${scen || '–'}. Runtime: ${cell(env['runtime'])}. Kernel: ${cell(env['kernel'])}. CPUs: ${cell(env['cpus'])}. Points on disk: ${points.length}.`,
    '',
  );
  const all = points.flatMap((p) => p.scenario.verdicts.map((v) => v.verdict));
  out.push(`Verdicts: ${['PASS', 'FAIL', 'INCONCLUSIVE'].map((k) => `${all.filter((v) => v === k).length} ${k}`).join(', ')}.`, '');
  out.push('## What happened, point by point', '');
  for (const p of points) out.push(`- **${p.id}** ${describeSettings(p.settings)}: ${headline(p)}`);
  out.push('');
  const listened = points.filter((p) => p.server.listen);
  if (listened.length) {
    out.push('## How the server listened', '', `| ${LISTEN_COLUMNS.join(' | ')} |`, `|${' --- |'.repeat(LISTEN_COLUMNS.length)}`);
    for (const p of listened) out.push(`| ${[p.id, ...listenCells(p.server.listen!)].map(cell).join(' | ')} |`);
    out.push('');
  }
  const explained = points.map((p) => [p, explanations(p)] as const).filter(([, lines]) => lines.length);
  if (explained.length) {
    out.push("## What the kernel's events say", '');
    for (const [p, lines] of explained) out.push(`- **${p.id}** ${describeSettings(p.settings)}`, ...lines.map((l) => `  - ${l}`));
    out.push('');
  }
  out.push('## Verdicts', '', '| point | settings | rule | predicted | observed | verdict | why |', '| --- | --- | --- | --- | --- | --- | --- |');
  for (const p of points) {
    for (const v of p.scenario.verdicts)
      out.push(
        `| ${p.id} | ${cell(describeSettings(p.settings))} | ${cell(v.rule)} | ${cell(v.predicted)} | ${cell(v.observed)} | **${v.verdict}** | ${cell(v.reason)} |`,
      );
  }
  out.push('', '## Sysctls read back per host', '', '| point | host | requested | read back |', '| --- | --- | --- | --- |');
  for (const p of points) {
    for (const [h, rec] of Object.entries(p.hosts)) {
      const req = Object.entries(rec.sysctls.requested);
      out.push(
        `| ${p.id} | ${h} | ${cell(req.map(([k, v]) => `${k}=${v}`).join(', ') || 'none')} | ${cell(req.map(([k]) => `${k}=${rec.sysctls.readBack[k]}`).join(', ') || '–')} |`,
      );
    }
  }
  out.push('', '## Raw state reports', '');
  for (const p of points)
    out.push(
      `- ${p.id}: ${Object.values(p.hosts)
        .flatMap((h) => [...h.reports.before, ...h.reports.after])
        .map((f) => `[${f.split('/').pop()}](${f})`)
        .join(', ')}`,
    );
  return out.join('\n') + '\n';
}

/** Writes report.md and report.html (each temp + rename); returns their paths. */
export function writeReport(dir: string): { md: string; html: string } {
  const points = loadPoints(dir);
  const env = loadEnvironment(dir);
  const md = join(dir, 'report.md');
  const html = join(dir, 'report.html');
  // A tune's folder: its search and answer first.
  const tune = loadTune(dir);
  const text = renderMarkdown(dir, points, env);
  writeAtomic(
    md,
    tune
      ? text
          .replace(/\n## What happened, point by point/, `\n${tuneMarkdown(tune)}\n## What happened, point by point`)
          .replace(/^# tcplab sweep/, '# tcplab tune')
      : text,
  );
  writeAtomic(html, renderHtml(dir, points, env, tune ? tuneHtml(tune) : ''));
  return { md, html };
}
