// report.html: one self-contained page (Chart.js inlined, the data as JSON inside; nothing is
// fetched when it opens). First a headline per point (from its verdicts and numbers). Charts:
// each of the scenario's quantities against the sweep's x-axis — the zipped tuple for a zip,
// else `sweep.x`, else the axis the scenario's rules depend on most, else the first — a bar per
// value of the other axes, the kernel model's prediction as an outlined bar beside it; and one
// quantity over time, a line per point. Then the verdict table, the sysctls per host, and links
// to the raw state reports. Every number comes from the point records.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describeSettings } from '../plan/labfile.js';
import type { PointRecord } from '../pipeline/record.js';
import { LISTEN_COLUMNS, listenCells } from '../pipeline/listen.js';
import { scenarioNamed } from '../scenarios/index.js';
import { lanesOf, MARK_KINDS, type Lanes } from './timelines.js';
import { mergeHistograms } from '../loadgen/merge.js';
import { captureLost } from '../observe/capture.js';

export interface Dataset {
  label: string;
  /** Bars (one value per label), or [x, y] pairs for lines over time. */
  data: Array<number | null> | Array<[number, number]>;
  predicted?: boolean;
}

export interface ChartSpec {
  id: string;
  title: string;
  kind: 'bar' | 'time' | 'lanes' | 'log' | 'xy';
  xTitle: string;
  /** x-axis labels: a zipped tuple is a list, drawn one value per line. */
  labels: Array<string | string[]>;
  datasets: Dataset[];
  /** kind lanes: the swimlanes (y: a connection or an event kind), x in seconds on the series' axis. */
  lanes?: Lanes;
  /** The series chart's x range, so the swimlanes line up with it. */
  xMax?: number;
  /** kind log and xy: dashed verticals, each set with what it is (the model's modes; a knee). */
  marks?: Array<{ label: string; x: number[] }>;
  /** kind xy: the y axis's title. */
  yTitle?: string;
  subtitle?: string;
}

const MAX_LINE_POINTS = 400;

const mean = (xs: number[]) => (xs.length ? Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 1000) / 1000 : null);

/** The charts of a sweep's records (all of one scenario). */
export function buildCharts(points: PointRecord[]): ChartSpec[] {
  if (!points.length) return [];
  const impl = scenarioNamed(points[0]!.scenario.name);
  if (!impl) return [];
  const x = chartAxis(points, impl.report.x ?? []);
  const zipKeys = Object.keys(points[0]!.config.sweep?.zip ?? {});
  const rest = Object.keys(points[0]!.settings).filter((k) => (x.kind === 'zip' ? !zipKeys.includes(k) : x.kind === 'axis' ? k !== x.axis : true));
  const tuple = (p: PointRecord, keys: string[]) => keys.map((k) => `${shortAxis(k)}=${p.settings[k]}`);
  const xOf = (p: PointRecord): string | string[] =>
    x.kind === 'zip' ? tuple(p, zipKeys) : x.kind === 'axis' ? String(p.settings[x.axis]) : p.point;
  const key = (v: string | string[]) => (Array.isArray(v) ? v.join(', ') : v);
  const groupOf = (p: PointRecord) => (rest.length ? tuple(p, rest).join(', ') : x.kind === 'none' ? 'points' : 'measured');
  const labels = [...new Map(points.map((p) => [key(xOf(p)), xOf(p)])).values()];
  const groups = [...new Set(points.map(groupOf))];
  const xTitle = x.kind === 'zip' ? zipKeys.map(shortAxis).join(' · ') : x.kind === 'axis' ? x.axis : 'point';
  // One point: each metric would be a bar of one; its numbers are a table (numbersOf) instead.
  const metrics = points.length === 1 ? [] : impl.report.metrics;
  const charts: ChartSpec[] = metrics.map((m, i) => {
    const datasets: Dataset[] = [];
    for (const g of groups) {
      const at = (at0: string | string[], f: (p: PointRecord) => number | null) =>
        mean(
          points
            .filter((p) => groupOf(p) === g && key(xOf(p)) === key(at0))
            .map(f)
            .filter((v): v is number => v !== null),
        );
      datasets.push({ label: g, data: labels.map((x) => at(x, m.value)) });
      if (m.predicted) datasets.push({ label: `${g} (predicted)`, data: labels.map((x) => at(x, m.predicted!)), predicted: true });
    }
    return { id: `metric-${i}`, title: m.label, kind: 'bar', xTitle, labels, datasets };
  });
  const h = impl.report.histogram;
  if (h) {
    const datasets: Dataset[] = points.map((p) => ({
      label: [p.id, ...Object.entries(p.settings).map(([k, v]) => `${shortAxis(k)}=${v}`)].join(' '),
      data: h.buckets(p),
    }));
    const marks = [...new Set(points.flatMap((p) => h.marks(p)))].sort((a, b) => a - b);
    charts.push({ id: 'histogram', title: h.label, kind: 'log', xTitle: h.xTitle, labels: [], datasets, marks: [{ label: h.marksLabel, x: marks }] });
  }
  const c = impl.report.curve;
  // One curve: the sweep's only axis is the curve's (repeats of a point are averaged).
  const axes = Object.keys(points[0]!.settings);
  if (c && axes.length === 1 && axes[0] === c.axis) {
    const xs = [...new Set(points.map((p) => Number(p.settings[c.axis])))].sort((a, b) => a - b);
    const line = (f: (p: PointRecord) => number | null): Array<[number, number]> =>
      xs.flatMap((x) => {
        const y = mean(
          points
            .filter((p) => Number(p.settings[c.axis]) === x)
            .map(f)
            .filter((v): v is number => v !== null),
        );
        return y === null ? [] : [[x, y] as [number, number]];
      });
    charts.push({
      id: 'curve',
      title: c.label,
      kind: 'xy',
      xTitle: c.axis,
      yTitle: c.yTitle,
      labels: [],
      datasets: [
        { label: 'measured', data: line(c.observed) },
        { label: "the kernel model's", data: line(c.predicted), predicted: true },
      ],
      marks: c.marks(points).map((m) => ({ label: m.label, x: [m.x] })),
    });
  }
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
      const label = [p.id, ...Object.entries(p.settings).map(([k, v]) => `${shortAxis(k)}=${v}`)].join(' ');
      return { label, data: pts.filter((_, i) => i % step === 0 || i === pts.length - 1) };
    });
    charts.push({ id: 'series', title: s.label, kind: 'time', xTitle: 'seconds since the samplers started', labels: [], datasets });
  }
  return [...charts, ...(points.length === 1 ? onePointCharts(points[0]!) : []), ...laneCharts(points)];
}

/** The states a socket count chart draws, in the order a connection goes through them. */
const STATE_ORDER = ['SYN-SENT', 'SYN-RECV', 'ESTAB', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT', 'LAST-ACK', 'CLOSING', 'TIME-WAIT'];
const LATENCY_PERCENTILES = [50, 75, 90, 95, 99, 99.9, 99.99, 100];

/**
 * A one-point run's own charts: each host's sockets per state over time (the states that were
 * ever there), and the load's latency distribution at its percentiles (from the run's HDR
 * histogram, several loadgens' merged).
 */
export function onePointCharts(p: PointRecord): ChartSpec[] {
  const out: ChartSpec[] = [];
  for (const [host, rec] of Object.entries(p.hosts)) {
    const samples = rec.series.samples;
    const t0 = samples[0]?.t ?? 0;
    const states = STATE_ORDER.filter((st) => samples.some((x) => (x.states[st] ?? 0) > 0));
    if (!states.length) continue;
    const step = Math.max(1, Math.ceil(samples.length / MAX_LINE_POINTS));
    const kept = samples.filter((_, i) => i % step === 0 || i === samples.length - 1);
    out.push({
      id: `states-${host}`,
      title: `${host}: sockets per state over time`,
      kind: 'time',
      xTitle: 'seconds since the samplers started',
      labels: [],
      datasets: states.map((st) => ({
        label: st,
        data: kept.map((x) => [Math.round((x.t - t0) / 10) / 100, x.states[st] ?? 0] as [number, number]),
      })),
    });
  }
  const encoded = p.scenario.load?.result.histogramUs;
  if (encoded) {
    const h = mergeHistograms([encoded])!;
    out.push({
      id: 'latency',
      title: `latency distribution (${p.scenario.load!.tool}, ${h.totalCount} requests), ms`,
      kind: 'bar',
      xTitle: 'percentile',
      labels: LATENCY_PERCENTILES.map((q) => (q === 100 ? 'max' : `p${q}`)),
      datasets: [{ label: 'latency, ms', data: LATENCY_PERCENTILES.map((q) => (q === 100 ? h.maxValue : h.getValueAtPercentile(q)) / 1000) }],
    });
  }
  return out;
}

/** A one-point run's numbers, the scenario's metrics as a table: what it measured, and what the model predicted. */
export function numbersOf(p: PointRecord): Array<[string, number | null, number | null]> {
  const impl = scenarioNamed(p.scenario.name);
  return (impl?.report.metrics ?? []).map((m) => [m.label, m.value(p), m.predicted ? m.predicted(p) : null]);
}

/** One swimlane chart per point with a trace or a capture: time across (the series' axis), connections or event kinds down. */
export function laneCharts(points: PointRecord[]): ChartSpec[] {
  return points.flatMap((p, i) => {
    const lanes = lanesOf(p);
    if (!lanes || !lanes.marks.length) return [];
    const samples = p.hosts['server']?.series.samples ?? [];
    const xMax = samples.length > 1 ? Math.round(samples[samples.length - 1]!.t - samples[0]!.t) / 1000 : undefined;
    const by = p.capture?.timelines?.length
      ? "a connection a lane (capture), with the kernel's events on it"
      : 'a host and event kind a lane (trace)';
    const more = lanes.more ? `; ${lanes.more} more not drawn` : '';
    return [
      {
        id: `lanes-${i}`,
        title: `${p.id}: timeline, ${by}${more}`,
        subtitle: describeSettings(p.settings),
        kind: 'lanes' as const,
        xTitle: 'seconds since the samplers started',
        labels: lanes.lanes,
        datasets: MARK_KINDS.filter((k) => lanes.marks.some((m) => m.kind === k)).map((k) => ({ label: k, data: [] })),
        lanes,
        ...(xMax !== undefined ? { xMax } : {}),
      },
    ];
  });
}

/** What a point's trace and capture say: the scenario's explanation, then the counts, a sentence each. */
export function explanations(p: PointRecord): string[] {
  const out: string[] = [];
  if (p.trace?.unavailable) out.push(`Tracer: did not run: ${p.trace.unavailable}.`);
  if (p.capture?.unavailable) out.push(`Capture: ${p.capture.unavailable}.`);
  out.push(...(scenarioNamed(p.scenario.name)?.report.explain?.(p) ?? []));
  const sum = p.trace?.summary;
  if (sum) {
    const hosts = Object.entries(sum.byHost).map(
      ([h, k]) =>
        `${h}: ${Object.entries(k)
          .filter(([n]) => !n.startsWith('state '))
          .map(([n, c]) => `${c} ${n}`)
          .join(', ')}`,
    );
    out.push(
      `Kernel events: ${sum.events} kept${sum.dropped ? `, ${sum.dropped} past the cap of ${sum.cap} or lost` : ''} (${hosts.join('; ')}); all in ${p.trace?.file}.`,
    );
  }
  const c = p.capture?.summary;
  if (c)
    out.push(
      `Capture on ${p.capture?.host}: ${c.packets} packets, ${c.connections} connections: ${c.handshakes} handshakes done by the client, ${c.served} served, ${c.synRetransmitted} with SYNs retransmitted, ${c.synAckRetransmitted} with SYN-ACKs retransmitted, ${c.resetByServer} reset by the server, ${c.resetByClient} by the client${captureLost(c) ? `; tcpdump lost ${captureLost(c)}` : ''}; pcap: ${p.capture?.file}.`,
    );
  return out;
}

/** "server.sysctls.net.ipv4.tcp_syncookies" → "tcp_syncookies", "scenario.options.closer" → "closer". */
export const shortAxis = (path: string) => path.replace(/^.*\.(?=[^.]+$)/, '');

/** The charts' x-axis: the zip's tuple, `sweep.x`, the first of the scenario's axes the sweep moves, or its first axis. */
function chartAxis(points: PointRecord[], preferred: string[]): { kind: 'zip' } | { kind: 'axis'; axis: string } | { kind: 'none' } {
  const sweep = points[0]!.config.sweep ?? { matrix: {}, zip: {} };
  const matrix = Object.keys(sweep.matrix ?? {});
  const zipped = Object.keys(sweep.zip ?? {}).length > 0;
  if (sweep.x === 'zip' && zipped) return { kind: 'zip' };
  if (sweep.x !== undefined && matrix.includes(sweep.x)) return { kind: 'axis', axis: sweep.x };
  if (zipped) return { kind: 'zip' };
  const axis = preferred.find((a) => matrix.includes(a)) ?? matrix[0];
  return axis === undefined ? { kind: 'none' } : { kind: 'axis', axis };
}

export const esc = (v: unknown) =>
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
  if (spec.kind === 'lanes') {
    const L = spec.lanes;
    // Marks at the same moment (a SYN and its SYN-ACK, an ACK and its drop) would hide one another:
    // each kind sits at its own height within the lane.
    const n = spec.datasets.length;
    const datasets = spec.datasets.map((d, i) => ({
      label: d.label,
      data: L.marks.filter((m) => m.kind === d.label).map((m) => ({ x: m.x, y: m.lane + (n > 1 ? (i / (n - 1) - 0.5) * 0.6 : 0), lane: m.lane, text: m.text })),
      backgroundColor: PALETTE[i % PALETTE.length],
      borderColor: PALETTE[i % PALETTE.length],
      pointRadius: 4,
      pointStyle: d.label.endsWith('(kernel)') ? 'crossRot' : 'circle',
    }));
    new Chart(canvas, {
      type: 'scatter',
      data: { datasets },
      options: {
        animation: false,
        responsive: false,
        plugins: {
          title: { display: true, text: spec.title },
          legend: { position: 'bottom', labels: { boxWidth: 10, font: { size: 11 } } },
          subtitle: { display: true, text: spec.subtitle },
          tooltip: { callbacks: { label: (c) => L.lanes[c.raw.lane] + ' @ ' + c.raw.x.toFixed(3) + ' s: ' + c.raw.text } },
        },
        scales: {
          x: { type: 'linear', min: Math.min(0, ...L.marks.map((m) => m.x)), ...(spec.xMax ? { max: Math.max(spec.xMax, ...L.marks.map((m) => m.x)) } : {}), title: { display: true, text: spec.xTitle } },
          y: { reverse: true, min: -0.5, max: L.lanes.length - 0.5, afterBuildTicks: (a) => { a.ticks = L.lanes.map((_, v) => ({ value: v })); }, ticks: { autoSkip: false, font: { size: 10 }, callback: (v) => L.lanes[v] ?? '' } },
        },
      },
    });
    drawn++;
    continue;
  }
  if (spec.kind === 'log' || spec.kind === 'xy') {
    // Lines over x (each point's distribution on a log axis; or one curve, measured and the
    // model's, dashed); the marks as dashed verticals, a colour a set.
    const top = Math.max(1, ...spec.datasets.flatMap((d) => d.data.map(([, y]) => y)));
    const datasets = spec.datasets.map((d, i) => ({ label: d.label, data: d.data.map(([x, y]) => ({ x, y })), borderColor: PALETTE[i % PALETTE.length], backgroundColor: PALETTE[i % PALETTE.length], pointRadius: 3, borderWidth: 1.5, ...(d.predicted ? { borderDash: [6, 3] } : {}) }));
    const MARK_COLOURS = ['#555', '#2ca02c', '#9467bd'];
    spec.marks.forEach((m, i) => datasets.push({ label: m.label, data: m.x.flatMap((x) => [{ x, y: 0 }, { x, y: top }, { x, y: null }]), borderColor: MARK_COLOURS[i % 3], backgroundColor: MARK_COLOURS[i % 3], borderDash: [4, 4], pointRadius: 0, borderWidth: 1.5, spanGaps: false }));
    new Chart(canvas, {
      type: 'line',
      data: { datasets },
      options: {
        animation: false,
        responsive: false,
        plugins: { title: { display: true, text: spec.title }, legend: { position: 'bottom', labels: { boxWidth: 12, font: { size: 11 } } } },
        scales: { x: { type: spec.kind === 'log' ? 'logarithmic' : 'linear', title: { display: true, text: spec.xTitle } }, y: { beginAtZero: true, title: { display: true, text: spec.yTitle ?? 'connections' } } },
      },
    });
    drawn++;
    continue;
  }
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
      plugins: {
        title: { display: true, text: spec.title },
        subtitle: { display: spec.datasets.some((d) => d.predicted), text: "filled: measured; outlined: the kernel model's prediction" },
        // The prediction shares its measured bar's colour: one legend entry for both.
        legend: { position: 'bottom', labels: { boxWidth: 12, font: { size: 11 }, filter: (item) => !spec.datasets[item.datasetIndex].predicted } },
      },
      scales: spec.kind === 'time'
        ? { x: { type: 'linear', title: { display: true, text: spec.xTitle } }, y: { beginAtZero: true } }
        : { x: { title: { display: true, text: spec.xTitle } }, y: { beginAtZero: true } },
    },
  });
  drawn++;
}
document.body.dataset.chartsDrawn = String(drawn);
`;

/** A canvas's width: the time series is wider. */
export const chartWidth = (c: ChartSpec) => (c.kind === 'bar' ? 520 : 760);

/**
 * Taller canvases for more legend entries, so the legend never crowds out or loses an entry:
 * the entries are packed into rows as Chart.js does (a 12 px box, gaps, ~6.5 px a character at
 * 11 px), with a row's height (24 px: 11 px type and 10 px padding) each.
 */
export function chartHeight(c: ChartSpec): number {
  if (c.kind === 'lanes') return 150 + 26 * (c.lanes?.lanes.length ?? 1) + 24 * Math.ceil(c.datasets.length / 5);
  // Bar charts leave the prediction out of the legend; the lines (log, xy) show it, and their marks.
  const labels =
    c.kind === 'bar' || c.kind === 'time'
      ? c.datasets.filter((d) => !d.predicted).map((d) => d.label)
      : [...c.datasets.map((d) => d.label), ...(c.marks ?? []).map((m) => m.label)];
  const items = labels.map((l) => 12 + 10 + 10 + Math.ceil(l.length * 6.5));
  let rows = 0;
  let used = Infinity;
  for (const w of items) {
    if (used + w > chartWidth(c) - 20) {
      rows++;
      used = 0;
    }
    used += w;
  }
  return 320 + 24 * rows;
}

/** The tools the points ran: Node and ss always (the in-host programs, the sampler), the load tool, the scenario's own. */
export function toolsRun(points: PointRecord[]): Set<string> {
  const out = new Set(['node', 'ss']);
  for (const p of points) {
    const tool = p.scenario.load?.tool;
    if (tool) out.add(tool === 'wrk2' ? 'wrk' : tool);
    for (const t of scenarioNamed(p.scenario.name)?.tools ?? []) out.add(t);
  }
  return out;
}

/** Each tool once (of those the points ran, when given), with its version and the hosts that have it. */
export function toolsOnce(env: Record<string, unknown>, ran?: Set<string>): Array<[string, string]> {
  const byTool = new Map<string, string[]>();
  for (const [host, t] of Object.entries((env['tools'] ?? {}) as Record<string, Record<string, string>>))
    for (const [tool, version] of Object.entries(t)) {
      if (ran && !ran.has(tool)) continue;
      const k = `${tool}\u0000${version}`;
      byTool.set(k, [...(byTool.get(k) ?? []), host]);
    }
  return [...byTool].map(([k, hosts]) => {
    const [tool, version] = k.split('\u0000') as [string, string];
    return [`${tool} (${hosts.join(', ')})`, version];
  });
}

/** The point's headline: the scenario's own, or what its verdicts say. */
export function headline(p: PointRecord): string {
  const impl = scenarioNamed(p.scenario.name);
  const v = p.scenario.verdicts;
  const tally = ['PASS', 'FAIL', 'INCONCLUSIVE'].map((k) => [k, v.filter((x) => x.verdict === k).length] as const).filter(([, n]) => n);
  const verdicts = tally.map(([k, n]) => `${n} ${k}`).join(', ');
  const failed = v.find((x) => x.verdict === 'FAIL');
  const own = impl?.report.headline?.(p);
  return [own, failed ? `FAIL: ${failed.rule} (expected ${failed.predicted}, saw ${failed.observed})` : null, verdicts].filter(Boolean).join('; ');
}

/** The sweep's report; `intro` (HTML) goes above the points' headlines (a tune's search). */
export function renderHtml(dir: string, points: PointRecord[], env: Record<string, unknown>, intro = ''): string {
  const name = dir.split('/').filter(Boolean).pop() ?? dir;
  const charts = buildCharts(points);
  const all = points.flatMap((p) => p.scenario.verdicts.map((v) => v.verdict));
  const count = (k: string) => all.filter((v) => v === k).length;
  const scen = [...new Set(points.map((p) => p.scenario.name))].join(', ') || '–';
  const versions = (env['versions'] ?? {}) as Record<string, string>;
  const tools = toolsOnce(env, toolsRun(points));

  const headlines = points.map((p) => `<li><b>${esc(p.id)}</b> ${esc(describeSettings(p.settings))}: ${esc(headline(p))}</li>`).join('\n');
  const explained = points
    .map((p) => [p, explanations(p)] as const)
    .filter(([, lines]) => lines.length)
    .map(
      ([p, lines]) => `<li><b>${esc(p.id)}</b> ${esc(describeSettings(p.settings))}<ul>${lines.map((l) => `<li>${esc(l)}</li>`).join('')}</ul></li>`,
    )
    .join('\n');
  const rows = (cells: unknown[]) => `<tr>${cells.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`;
  const one = points.length === 1 ? points[0]! : null;
  const numbers = one
    ? `<h2>Numbers</h2>\n<table>\n<tr><th>quantity</th><th>measured</th><th>predicted</th></tr>\n${numbersOf(one)
        .map(([label, v, pr]) => rows([label, v ?? '–', pr ?? '–']))
        .join('\n')}\n</table>`
    : '';
  const listened = points.filter((p) => p.server.listen);
  const listenTable = listened.length
    ? `<h2>How the server listened</h2>\n<div class="wide"><table>\n<tr>${LISTEN_COLUMNS.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>\n${listened
        .map((p) => rows([p.id, ...listenCells(p.server.listen!)]))
        .join('\n')}\n</table></div>`
    : '';
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
figure { margin: 0; border: 1px solid #ddd; padding: 0.5em; max-width: 100%; box-sizing: border-box; }
canvas { max-width: 100%; height: auto; }
.wide { overflow-x: auto; max-width: 100%; }
@media (max-width: 600px) { body { margin: 0.6em; } }
</style>
</head>
<body>
<h1>tcplab ${intro ? 'tune' : one ? 'point' : 'sweep'} ${esc(name)}</h1>
<p>Scenario: <b>${esc(scen)}</b>. Points on disk: ${points.length}. Verdicts: <b>${count('PASS')} PASS, ${count('FAIL')} FAIL, ${count('INCONCLUSIVE')} INCONCLUSIVE</b>.</p>
<table>
${rows(['runtime', env['runtime']])}
${rows(['kernel', env['kernel']])}
${rows(['CPUs', env['cpus']])}
${[...Object.entries(versions), ...tools].map(([k, v]) => rows([k, v])).join('\n')}
</table>
${intro}
<h2>What happened, point by point</h2>
<ol class="headlines">
${headlines}
</ol>
${listenTable}
${explained ? `<h2>What the kernel's events say</h2>\n<ol class="explained">\n${explained}\n</ol>` : ''}
${numbers}
<h2>Charts</h2>
<div class="charts">
${charts.map((c) => `<figure><canvas id="${c.id}" width="${chartWidth(c)}" height="${chartHeight(c)}"></canvas></figure>`).join('\n')}
</div>
<h2>Verdicts</h2>
<div class="wide"><table>
<tr><th>point</th><th>settings</th><th>rule</th><th>predicted</th><th>observed</th><th>verdict</th><th>why</th></tr>
${verdictRows}
</table></div>
<h2>Sysctls read back per host</h2>
<div class="wide"><table>
<tr><th>point</th><th>host</th><th>requested</th><th>read back</th></tr>
${sysctlRows}
</table></div>
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
