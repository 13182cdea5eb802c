// lab tune: from an objective to the smallest settings that meet it (lab/pipeline/tune.ts), with
// the evidence and the files to apply them. Exit 0 when the objective is met, 1 when not, 2 on
// bad input (nothing made).
import { InputError } from '../../core/errors.js';
import { F, RUNTIMES, textFlag, type RuntimeName } from '../../core/fields.js';
import { opt, say, type LabCommand } from './command.js';

export type TuneInvocation = { cmd: 'tune'; file: string; runtime?: RuntimeName; output?: string } | { cmd: 'tune-resume'; dir: string };

export const tuneCmd: LabCommand<TuneInvocation> = {
  define(program, done) {
    program
      .command('tune [file]')
      .description(
        'search the settings a tune file lists for the smallest that meet its objective: the kernel model prunes, real points confirm, then a headroom run at each multiple of the workload; writes the settings to apply (sysctl.d, listen backlog, Kubernetes, compose, Prometheus rules), each checked by its tool; exit 0 met, 1 not met',
      )
      .option('--resume <dir>', 'go on with a tune folder: its search replayed, only the points not on disk run')
      .addOption(opt('--runtime <name>', `override the tune file's runtime: ${RUNTIMES.join(', ')}`).argParser(textFlag('--runtime', F.runtime)))
      .addOption(opt('--output <dir>', "override the tune file's output: where run folders go").argParser(textFlag('--output', F.output)))
      .action((file: string | undefined, o: { resume?: string; runtime?: RuntimeName; output?: string }) => {
        if (!file === !o.resume) throw new InputError('give a tune file, or --resume DIR (not both)');
        if (o.resume && (o.runtime || o.output))
          throw new InputError('--runtime and --output cannot change a tune being resumed (its points must run alike)');
        done(
          file
            ? { cmd: 'tune', file, ...(o.runtime ? { runtime: o.runtime } : {}), ...(o.output ? { output: o.output } : {}) }
            : { cmd: 'tune-resume', dir: o.resume! },
        );
      });
  },
  async run(inv) {
    const { tune } = await import('../pipeline/tune.js');
    const { readTuneFile } = await import('../plan/tune.js');
    const { writeReport } = await import('../report/report.js');
    const { tuneAnswer } = await import('../report/tune.js');
    const { interruptible } = await import('./run-sweep.js');
    const handle = {};
    const release = interruptible(handle, 'lab tune');
    try {
      const source =
        inv.cmd === 'tune-resume'
          ? { resume: inv.dir }
          : (() => {
              const raw = readTuneFile(inv.file);
              // The flags override the file's fields; a file that is not a map is refused by validateTune.
              const map = raw && typeof raw === 'object' && !Array.isArray(raw);
              const over = { ...(inv.runtime ? { runtime: inv.runtime } : {}), ...(inv.output ? { output: inv.output } : {}) };
              return { file: inv.file, raw: map ? { ...(raw as Record<string, unknown>), ...over } : raw };
            })();
      const { dir, result } = await tune(source, { progress: (l) => process.stderr.write(l + '\n'), handle });
      const rep = writeReport(dir);
      say(`${dir}\n`);
      process.stderr.write(`lab tune: ${tuneAnswer(result)}\n`);
      const bad = result.outputs.filter((o) => !o.ok);
      if (result.chosen)
        process.stderr.write(
          `lab tune: apply/: ${result.outputs.length - bad.length} of ${result.outputs.length} output(s) checked by their tools${bad.length ? `; not: ${bad.map((o) => `${o.file} (${o.detail})`).join('; ')}` : ''}\n`,
        );
      process.stderr.write(`lab tune: report: ${rep.md}, ${rep.html}\n`);
      return result.met ? 0 : 1;
    } finally {
      release();
    }
  },
};
