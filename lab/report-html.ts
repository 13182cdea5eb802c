// report.html: one self-contained page (Chart.js inlined, the data as JSON inside; nothing is
// fetched when it opens). Charts: each of the scenario's quantities against the first swept
// axis, a bar per value of the other axes, the kernel model's prediction as an outlined bar
// beside it; and one quantity over time, a line per point. Then the verdict table, the
// sysctls per host, and links to the raw state reports. Every number comes from the point records.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describeSettings } from './labfile.js';
import type { PointRecord } from './record.js';
import { scenarioNamed } from './scenarios/index.js';

export interface Dataset {
  label: string;
  /** Bars (one value per label), or [x, y] pairs for lines over time. */
  data: Array<number | null> | Array<[number, number]>;
  predicted?: boolean;
}

export interface ChartSpec {
  id: string;
  title: string;
  kind: 'bar' | 'time';
  xTitle: string;
  labels: string[];
  datasets: Dataset[];
}

const MAX_LINE_POINTS = 400;

const mean = (xs: number[]) => (xs.length ? Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 1000) / 1000 : null);

/** The charts of a sweep's records (all of one scenario). */
export function buildCharts(points: PointRecord[]): ChartSpec[] {
  if (!points.length) return [];
  const impl = scenarioNamed(points[0]!.scenario.name);
  if (!impl) return [];
  const axes = Object.keys(points[0]!.settings);
  const xAxis = axes[0];
  const rest = axes.slice(1);
  const xOf = (p: PointRecord) => (xAxis === undefined ? p.point : String(p.settings[xAxis]));
  const groupOf = (p: PointRecord) =>
    rest.length ? rest.map((k) => `${k.replace(/^.*\.(?=[^.]+$)/, '')}=${p.settings[k]}`).join(', ') : xAxis === undefined ? 'points' : 'measured';
  const labels = [...new Set(points.map(xOf))];
  const groups = [...new Set(points.map(groupOf))];
  const charts: ChartSpec[] = impl.report.metrics.map((m, i) => {
    const datasets: Dataset[] = [];
    for (const g of groups) {
      const at = (x: string, f: (p: PointRecord) => number | null) =>
        mean(
          points
            .filter((p) => groupOf(p) === g && xOf(p) === x)
            .map(f)
            .filter((v): v is number => v !== null),
        );
      datasets.push({ label: g, data: labels.map((x) => at(x, m.value)) });
      if (m.predicted) datasets.push({ label: `${g} (predicted)`, data: labels.map((x) => at(x, m.predicted!)), predicted: true });
    }
    return { id: `metric-${i}`, title: m.label, kind: 'bar', xTitle: xAxis ?? 'point', labels, datasets };
  });
  const s = impl.report.series;
  if (s) {
    const datasets: Dataset[] = points.map((p) => {
      const samples = p.hosts[s.host(p)]?.series.samples ?? [];
      const t0 = samples[0]?.t ?? 0;
      const pts = samples.flatMap((x) => {
        const y = s.value(x, p);
        return y === null ? [] : [[Math.round((x.t - t0) / 10) / 100, y] as [number, number]];
      });
      const step = Math.max(1, Math.ceil(pts.length / MAX_LINE_POINTS));
      return { label: `${p.id} ${describeSettings(p.settings)}`, data: pts.filter((_, i) => i % step === 0 || i === pts.length - 1) };
    });
    charts.push({ id: 'series', title: s.label, kind: 'time', xTitle: 'seconds since the samplers started', labels: [], datasets });
  }
  return charts;
}

const esc = (v: unknown) =>
  (v === null || v === undefined ? '–' : String(v)).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

/** JSON safe inside <script>: no "</script>", no "<!--". */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');

function chartJsSource(): string {
  const require = createRequire(import.meta.url);
  // The UMD build sits beside the package's main file (it is not among its exports).
  const file = join(dirname(require.resolve('chart.js')), 'chart.umd.min.js');
  return readFileSync(file, 'utf8').replace(/<\/script/gi, '<\\/script');
}

// Draws the charts from SPECS; a chart that fails is reported on the page and in the console.
const DRAW = `
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
let drawn = 0;
for (const spec of SPECS) {
  const canvas = document.getElementById(spec.id);
  let colour = 0;
  const datasets = spec.datasets.map((d) => {
    const c = PALETTE[(d.predicted ? colour - 1 : colour++) % PALETTE.length];
    if (spec.kind === 'time') return { label: d.label, data: d.data.map(([x, y]) => ({ x, y })), borderColor: c, backgroundColor: c, pointRadius: 0, borderWidth: 1.5, stepped: true };
    // The prediction: an outlined bar right of its measured bar (same colour).
    if (d.predicted) return { label: d.label, data: d.data, backgroundColor: '#ffffff00', borderColor: c, borderWidth: 2 };
    return { label: d.label, data: d.data, backgroundColor: c + 'cc', borderColor: c };
  });
  new Chart(canvas, {
    type: spec.kind === 'time' ? 'line' : 'bar',
    data: spec.kind === 'time' ? { datasets } : { labels: spec.labels, datasets },
    options: {
      animation: false,
      responsive: false,
      plugins: { title: { display: true, text: spec.title }, legend: { position: 'bottom' } },
      scales: spec.kind === 'time'
        ? { x: { type: 'linear', title: { display: true, text: spec.xTitle } }, y: { beginAtZero: true } }
        : { x: { title: { display: true, text: spec.xTitle } }, y: { beginAtZero: true } },
    },
  });
  drawn++;
}
document.body.dataset.chartsDrawn = String(drawn);
`;

export function renderHtml(dir: string, points: PointRecord[], env: Record<string, unknown>): string {
  const name = dir.split('/').filter(Boolean).pop() ?? dir;
  const charts = buildCharts(points);
  const all = points.flatMap((p) => p.scenario.verdicts.map((v) => v.verdict));
  const count = (k: string) => all.filter((v) => v === k).length;
  const scen = [...new Set(points.map((p) => p.scenario.name))].join(', ') || '–';
  const versions = (env['versions'] ?? {}) as Record<string, string>;
  const tools = Object.entries((env['tools'] ?? {}) as Record<string, Record<string, string>>).flatMap(([h, t]) =>
    Object.entries(t).map(([k, v]) => [`${k} (${h})`, v] as const),
  );
  const rows = (cells: unknown[]) => `<tr>${cells.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`;
  const verdictRows = points
    .flatMap((p) =>
      p.scenario.verdicts.map(
        (v) =>
          `<tr class="${v.verdict.toLowerCase()}"><td>${esc(p.id)}</td><td>${esc(describeSettings(p.settings))}</td><td>${esc(v.rule)}</td><td>${esc(v.predicted)}</td><td>${esc(v.observed)}</td><td><b>${esc(v.verdict)}</b></td><td>${esc(v.reason)}</td></tr>`,
      ),
    )
    .join('\n');
  const sysctlRows = points
    .flatMap((p) =>
      Object.entries(p.hosts).map(([h, rec]) => {
        const req = Object.entries(rec.sysctls.requested);
        return rows([
          p.id,
          h,
          req.map(([k, v]) => `${k}=${v}`).join(', ') || 'none',
          req.map(([k]) => `${k}=${rec.sysctls.readBack[k]}`).join(', ') || '–',
        ]);
      }),
    )
    .join('\n');
  const raw = points
    .map(
      (p) =>
        `<li>${esc(p.id)}: ${Object.values(p.hosts)
          .flatMap((h) => [...h.reports.before, ...h.reports.after])
          .map((f) => `<a href="${esc(f)}">${esc(f.split('/').pop())}</a>`)
          .join(', ')}</li>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tcplab ${esc(name)}: ${esc(scen)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
tr.pass b { color: #1a7f37; } tr.fail b { color: #cf222e; } tr.inconclusive b { color: #9a6700; }
tr.fail { background: #ffebe9; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; border: 1px solid #ddd; padding: 0.5em; }
</style>
</head>
<body>
<h1>tcplab sweep ${esc(name)}</h1>
<p>Scenario: <b>${esc(scen)}</b>. Points on disk: ${points.length}. Verdicts: <b>${count('PASS')} PASS, ${count('FAIL')} FAIL, ${count('INCONCLUSIVE')} INCONCLUSIVE</b>.</p>
<table>
${rows(['runtime', env['runtime']])}
${rows(['kernel', env['kernel']])}
${rows(['CPUs', env['cpus']])}
${[...Object.entries(versions), ...tools].map(([k, v]) => rows([k, v])).join('\n')}
</table>
<h2>Charts</h2>
<div class="charts">
${charts.map((c) => `<figure><canvas id="${c.id}" width="${c.kind === 'time' ? 760 : 520}" height="340"></canvas></figure>`).join('\n')}
</div>
<h2>Verdicts</h2>
<table>
<tr><th>point</th><th>settings</th><th>rule</th><th>predicted</th><th>observed</th><th>verdict</th><th>why</th></tr>
${verdictRows}
</table>
<h2>Sysctls read back per host</h2>
<table>
<tr><th>point</th><th>host</th><th>requested</th><th>read back</th></tr>
${sysctlRows}
</table>
<h2>Raw state reports</h2>
<ul>
${raw}
</ul>
<script>${chartJsSource()}</script>
<script>
const SPECS = ${scriptJson(charts)};
${DRAW}
</script>
</body>
</html>
`;
}
