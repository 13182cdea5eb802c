// Running a sweep from the CLI (lab sweep, lab run, lab up): progress on stderr, Ctrl-C tears the
// lab down, the report written after.
import type { LabFile } from '../plan/labfile.js';
import type { LabHandle } from '../pipeline/point.js';
import type { SweepOptions } from '../pipeline/sweep.js';

/**
 * Progress of a sweep on stderr: on a terminal a bar (points done, the point running, ETA) with
 * the per-point lines printed above it; otherwise (a pipe, a log file, CI) the lines alone.
 */
async function sweepProgress(): Promise<Pick<SweepOptions, 'progress' | 'bar'>> {
  if (!process.stderr.isTTY) return { progress: (l) => process.stderr.write(l + '\n') };
  const { MultiBar, Presets } = await import('cli-progress');
  const multi = new MultiBar(
    {
      stream: process.stderr,
      format: '{bar} {value}/{total} points | {eta_text} | {current}',
      hideCursor: true,
      clearOnComplete: true,
      autopadding: true,
    },
    Presets.shades_classic,
  );
  let bar: ReturnType<typeof multi.create> | null = null;
  const stop = () => multi.stop();
  process.once('SIGINT', stop);
  return {
    progress: (l) => (bar ? multi.log(l + '\n') : process.stderr.write(l + '\n')),
    bar: {
      start: (total, done) => (bar = multi.create(total, done, { current: 'starting', eta_text: 'ETA –' })),
      update: (done, current, etaSec) => bar?.update(done, { current, eta_text: etaSec === null ? 'ETA –' : `ETA ${etaSec} s` }),
      stop: () => {
        process.removeListener('SIGINT', stop);
        stop();
        bar = null;
      },
    },
  };
}

/** Ctrl-C (or SIGTERM) during a lab: tear the lab down, then exit 130. A second one exits at once. */
export function interruptible(handle: LabHandle, cmd: string): () => void {
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`${cmd}: interrupted again; run \`lab down\` to remove what is left\n`);
      process.exit(130);
    }
    stopping = true;
    process.stderr.write(`${cmd}: ${sig}: removing the lab${handle.runId ? ` ${handle.runId}` : ''} …\n`);
    void (async () => {
      try {
        await handle.creating;
        if (handle.runtime && handle.runId) await handle.runtime.destroy(handle.runId);
        process.stderr.write(`${cmd}: interrupted; nothing left running\n`);
      } catch (err) {
        process.stderr.write(`${cmd}: clean-up failed (${(err as Error).message}); run \`lab down\`\n`);
      }
      process.exit(130);
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

/** A sweep (of a file, of flags, of `lab up`'s one point, or resumed), with progress and its report. */
export async function runSweep(
  source: { file: string | null; lab: LabFile } | { resume: string },
  cmd: string,
  o: { keep?: boolean; bar?: boolean } = {},
) {
  const { sweep } = await import('../pipeline/sweep.js');
  const { writeReport } = await import('../report/report.js');
  const handle: LabHandle = {};
  const out = o.bar === false ? { progress: (l: string) => process.stderr.write(l + '\n') } : await sweepProgress();
  const release = interruptible(handle, cmd);
  try {
    const r = await sweep(source, { ...out, handle, cmd, keep: o.keep ?? false });
    const rep = writeReport(r.dir);
    return { ...r, report: rep };
  } finally {
    release();
  }
}
