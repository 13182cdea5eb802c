// lab run: the sweep of a lab file, from flags (--scenario, --set axes).
import { labFromFlags, type LabFile } from '../plan/labfile.js';
import { SCENARIO_NAMES } from '../scenarios/index.js';
import { RUNTIMES } from '../../core/fields.js';
import { CAPTURE_HELP, opt, repeatable, TRACE_HELP, type LabCommand } from './command.js';
import { runSweep } from './run-sweep.js';
import { sweepDone } from './sweep.js';

export type RunInvocation = { cmd: 'run'; lab: LabFile };

export const run: LabCommand<RunInvocation> = {
  define(program, done) {
    program
      .command('run')
      .description(
        'the same sweep as a lab file, from flags: lab run --scenario backlog --set server.backlog=16,128 --set server.sysctls.net.core.somaxconn=64',
      )
      .addOption(opt('--scenario <name>', SCENARIO_NAMES.join(', ')).makeOptionMandatory())
      .addOption(opt('--set <path=values>', 'an axis: a field path and comma-separated values (repeatable)').argParser(repeatable))
      .addOption(opt('--runtime <name>', `where hosts run: ${RUNTIMES.join(', ')}`))
      .addOption(opt('--repetitions <n>', 'runs per point'))
      .option('--trace', TRACE_HELP)
      .option('--capture', CAPTURE_HELP)
      .option('--output <dir>', 'where run folders go')
      .action(
        (f: { scenario: string; set?: string[]; runtime?: string; repetitions?: string; output?: string; trace?: boolean; capture?: boolean }) =>
          done({ cmd: 'run', lab: labFromFlags({ ...f, set: f.set ?? [] }) }),
      );
  },
  async run(inv) {
    return sweepDone(await runSweep({ file: null, lab: inv.lab }, 'lab run'), 'lab run');
  },
};
