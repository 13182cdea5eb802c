// `lab predict FILE`: for every point of a lab file, what the kernel model says the kernel will
// do and why, before anything runs. It reads the lab file and, for the defaults the kernel
// computes from the machine's memory (tcp_max_syn_backlog, tcp_max_tw_buckets), this machine's
// /proc/sys, which any user may read: no root, no host, no engine.
import { describeSettings, expandSweep, type LabFile } from './labfile.js';
import { notModelled, scenarioNamed, type Prediction } from '../scenarios/index.js';

export interface PointPrediction {
  id: string;
  settings: Record<string, string | number | boolean>;
  scenario: string;
  predictions: Prediction[];
  /** Settings the model does not cover: their verdicts will be INCONCLUSIVE, never FAIL. */
  notModelled: string[];
  /** What cannot be known before the server runs, and where the point's record will say it. */
  unknown: string[];
}

/**
 * A server the lab does not build picks its own listen() backlog (and may open several
 * listeners): the predictions assume server.backlog, and the point reads the real one.
 */
function unknownBeforeRun(c: LabFile): string[] {
  if (c.server.kind === 'tcplab' || c.server.kind === 'nginx') return [];
  const who = c.server.image ? `the image ${c.server.image}` : `the command ${c.server.command?.[0] ?? ''}`;
  return [
    `the backlog ${who} passes to listen(): these numbers assume server.backlog ${c.server.backlog}; the point reads the real one (ss Send-Q) and judges the kernel's rules against it`,
  ];
}

export function predictLab(lab: LabFile): PointPrediction[] {
  return expandSweep(lab).map((p) => {
    const impl = scenarioNamed(p.config.scenario.name)!;
    const options = impl.options.parse(p.config.scenario.options ?? {});
    return {
      id: p.id,
      settings: p.settings,
      scenario: impl.name,
      predictions: impl.predict(p.config, options),
      notModelled: notModelled(impl.model, p.config, options),
      unknown: unknownBeforeRun(p.config),
    };
  });
}

export function renderPredictions(file: string, points: PointPrediction[]): string {
  const out: string[] = [`${file}: ${points.length} point(s) of the ${points[0]?.scenario ?? '?'} scenario; what the kernel model predicts`];
  for (const p of points) {
    const s = Object.keys(p.settings).length ? describeSettings(p.settings) : 'no axes';
    out.push('', `${p.id} ${s}`);
    const w = Math.max(...p.predictions.map((x) => x.what.length));
    for (const x of p.predictions) out.push(`  ${x.what.padEnd(w)}  ${String(x.value)}  (${x.why})`);
    if (p.notModelled.length) out.push(`  not modelled: ${p.notModelled.join(', ')}: its verdicts will be INCONCLUSIVE, not FAIL`);
    for (const u of p.unknown) out.push(`  not known before it runs: ${u}`);
  }
  return out.join('\n') + '\n';
}
