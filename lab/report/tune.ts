// A tune's part of report.md and report.html (from DIR/tune.json): the objective, the answer
// (the settings chosen, or what limits), the search path (each candidate, the model's word
// against what its point measured, with a link to the point), the headroom, and the outputs
// with the tool that checked each.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readJson } from '../../core/files.js';
import { describeSettings } from '../plan/labfile.js';
import { valuesText } from '../plan/tune.js';
import type { TuneResult } from '../pipeline/tune.js';
import { esc } from './html.js';

export function loadTune(dir: string): TuneResult | null {
  const f = join(dir, 'tune.json');
  return existsSync(f) ? (readJson(f) as TuneResult) : null;
}

const said = (m: boolean | null | undefined) => (m === true ? 'meets' : m === false ? 'misses' : 'says nothing');
const goal = (r: TuneResult) =>
  Object.entries(r.objective)
    .map(([k, v]) => `${k} ≤ ${v}`)
    .join(', ');

/** One line: the answer. */
export function tuneAnswer(r: TuneResult): string {
  if (!r.chosen) return `No candidate met the objective (${goal(r)}): ${r.limitedBy}`;
  const held = r.headroom.map((h) => `${h.factor}× (${h.size}): ${h.met ? 'holds' : `breaks (${h.missed.join(', ') || 'not measured'})`}`);
  return `Chosen: ${describeSettings(r.chosen.settings)} (point ${r.chosen.point}) meets ${goal(r)}${r.chosen.modelWasRight ? '' : '; the model had said it would miss'}${held.length ? `. Headroom: ${held.join('; ')}` : ''}.`;
}

interface Row {
  candidate: string;
  cost: number;
  model: string;
  action: string;
  observed: string;
  result: string;
  link: string | null;
}

function rowsOf(r: TuneResult): Row[] {
  return [
    ...r.steps.map((s) => ({
      candidate: describeSettings(s.settings),
      cost: s.cost,
      model: `${said(s.model.met)}${s.model.missed.length ? ` (${s.model.missed.join(', ')})` : ''}: ${s.model.rule}`,
      action: s.action === 'ran' ? `ran as ${s.point}` : s.action === 'pruned' ? 'pruned by the model' : 'not run',
      observed: s.action === 'ran' ? valuesText(s.observed) : '–',
      result: s.action === 'ran' ? (s.met ? 'met' : s.met === null ? 'not measured' : `missed: ${s.missed!.join(', ')}`) : '–',
      link: s.point ? `points/${s.point}-r1.json` : null,
    })),
    ...r.headroom.map((h) => ({
      candidate: `headroom ${h.factor}×: ${r.workload.scaled} ${h.size}`,
      cost: NaN,
      model: `${said(h.model.met)}${h.model.missed.length ? ` (${h.model.missed.join(', ')})` : ''}: ${h.model.rule}`,
      action: `ran as ${h.point}`,
      observed: valuesText(h.observed),
      result: h.met ? 'holds' : `breaks: ${h.missed.join(', ') || 'not measured'}`,
      link: `points/${h.point}-r1.json`,
    })),
  ];
}

export function tuneMarkdown(r: TuneResult): string {
  const cell = (v: unknown) => String(v).replace(/\|/g, '\\|');
  const out = [
    '## The tune',
    '',
    `Objective: ${goal(r)}. Workload: ${r.workload.scenario}, ${r.workload.scaled} ${r.workload.size}.`,
    '',
    `**${tuneAnswer(r)}**`,
    '',
    '### The search, cheapest first',
    '',
    '| candidate | cost | the model | what was done | measured | result |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rowsOf(r).map(
      (x) =>
        `| ${cell(x.candidate)} | ${Number.isNaN(x.cost) ? '–' : x.cost} | ${cell(x.model)} | ${x.link ? `[${x.action}](${x.link})` : x.action} | ${cell(x.observed)} | ${cell(x.result)} |`,
    ),
    '',
  ];
  if (r.outputs.length) {
    out.push('### What to apply (apply/), each checked by its tool', '', '| file | checked by | result |', '| --- | --- | --- |');
    for (const o of r.outputs) out.push(`| [${o.file}](apply/${o.file}) | ${cell(o.tool)} | ${o.ok ? 'ok' : cell(o.detail)} |`);
    if (r.unsafeSysctls.length) out.push('', `Kubernetes: unsafe sysctls each node must allow: ${r.unsafeSysctls.join(', ')}.`);
    out.push('');
  }
  return out.join('\n');
}

export function tuneHtml(r: TuneResult): string {
  const rows = rowsOf(r)
    .map(
      (x) =>
        `<tr class="${x.result.startsWith('met') || x.result.startsWith('holds') ? 'pass' : x.result === '–' ? '' : 'fail'}"><td>${esc(x.candidate)}</td><td>${Number.isNaN(x.cost) ? '–' : x.cost}</td><td>${esc(x.model)}</td><td>${x.link ? `<a href="${esc(x.link)}">${esc(x.action)}</a>` : esc(x.action)}</td><td>${esc(x.observed)}</td><td><b>${esc(x.result)}</b></td></tr>`,
    )
    .join('\n');
  const outputs = r.outputs.length
    ? `<h3>What to apply (apply/), each checked by its tool</h3>\n<table>\n<tr><th>file</th><th>checked by</th><th>result</th></tr>\n${r.outputs
        .map(
          (o) =>
            `<tr class="${o.ok ? 'pass' : 'fail'}"><td><a href="apply/${esc(o.file)}">${esc(o.file)}</a></td><td>${esc(o.tool)}</td><td><b>${esc(o.ok ? 'ok' : o.detail)}</b></td></tr>`,
        )
        .join(
          '\n',
        )}\n</table>${r.unsafeSysctls.length ? `<p>Kubernetes: unsafe sysctls each node must allow: ${esc(r.unsafeSysctls.join(', '))}.</p>` : ''}`
    : '';
  return `<h2>The tune</h2>
<p>Objective: <b>${esc(goal(r))}</b>. Workload: ${esc(r.workload.scenario)}, ${esc(r.workload.scaled)} ${r.workload.size}.</p>
<p class="answer"><b>${esc(tuneAnswer(r))}</b></p>
<h3>The search, cheapest first: the model's word, then the point's</h3>
<div class="wide"><table class="search">
<tr><th>candidate</th><th>cost</th><th>the model</th><th>what was done</th><th>measured</th><th>result</th></tr>
${rows}
</table></div>
${outputs}`;
}
