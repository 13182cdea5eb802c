// lab sweep: every point of a lab file, or the missing points of a sweep folder (--resume).
import { InputError } from '../../core/errors.js';
import { F, RUNTIMES, textFlag, type RuntimeName } from '../../core/fields.js';
import { opt, say, type LabCommand } from './command.js';
import { runSweep } from './run-sweep.js';

export type SweepInvocation =
  { cmd: 'sweep'; file: string; runtime?: RuntimeName; output?: string; trace?: boolean; capture?: boolean } | { cmd: 'resume'; dir: string };

export const sweep: LabCommand<SweepInvocation> = {
  define(program, done) {
    program
      .command('sweep [file]')
      .description('run every point of a lab file (YAML) on fresh hosts; write point records, report.md and report.html; prints the run folder')
      .option('--resume <dir>', 'run only the points of this sweep folder that are not on disk yet')
      .addOption(opt('--runtime <name>', `override the lab file's runtime: ${RUNTIMES.join(', ')}`).argParser(textFlag('--runtime', F.runtime)))
      .addOption(opt('--output <dir>', "override the lab file's output: where run folders go").argParser(textFlag('--output', F.output)))
      .option('--trace', 'turn the kernel event tracer on for every point (trace: true)')
      .option('--capture', 'turn the packet capture on for every point (capture: true)')
      .action((file: string | undefined, o: { resume?: string; runtime?: RuntimeName; output?: string; trace?: boolean; capture?: boolean }) => {
        if (!file === !o.resume) throw new InputError('give a lab file, or --resume DIR (not both)');
        if (o.resume && o.runtime) throw new InputError('--runtime cannot change a sweep being resumed (its points must run alike)');
        if (o.resume && o.output) throw new InputError('--output cannot move a sweep being resumed (it goes on in its own folder)');
        if (o.resume && (o.trace || o.capture))
          throw new InputError('--trace and --capture cannot change a sweep being resumed (its points must run alike)');
        done(
          file
            ? {
                cmd: 'sweep',
                file,
                ...(o.runtime ? { runtime: o.runtime } : {}),
                ...(o.output ? { output: o.output } : {}),
                ...(o.trace ? { trace: true } : {}),
                ...(o.capture ? { capture: true } : {}),
              }
            : { cmd: 'resume', dir: o.resume! },
        );
      });
  },
  async run(inv) {
    const { loadLabFile } = await import('../plan/labfile.js');
    const source =
      inv.cmd === 'resume'
        ? { resume: inv.dir }
        : {
            file: inv.file,
            lab: {
              ...loadLabFile(inv.file),
              ...(inv.runtime ? { runtime: inv.runtime } : {}),
              ...(inv.output ? { output: inv.output } : {}),
              ...(inv.trace ? { trace: true } : {}),
              ...(inv.capture ? { capture: true } : {}),
            },
          };
    return sweepDone(await runSweep(source, 'lab sweep'), 'lab sweep');
  },
};

/** What lab sweep and lab run print when done: the folder on stdout, the tally and the report on stderr. */
export function sweepDone(r: Awaited<ReturnType<typeof runSweep>>, cmd: string): number {
  say(`${r.dir}\n`);
  process.stderr.write(`${cmd}: ${r.ran} point run(s) done, ${r.failed} with a FAIL verdict; report: ${r.report.md}, ${r.report.html}\n`);
  return 0;
}
