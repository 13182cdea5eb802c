// lab down: remove what labs created (all of them, or one run id), naming what could not be removed.
import { CleanupError, InputError } from '../../core/errors.js';
import { badValue, NAME_RE } from '../../core/fields.js';
import type { LabCommand } from './command.js';

export type DownInvocation = { cmd: 'down'; runId?: string };

export const down: LabCommand<DownInvocation> = {
  define(program, done) {
    program
      .command('down [run-id]')
      .description('remove every namespace, bridge, container, network and process a lab created (all labs, or one run id), even after a crash')
      .action((runId?: string) => {
        if (runId !== undefined && !NAME_RE.test(runId))
          throw new InputError(badValue('run-id', runId, 'a run id like 20261202-024248-884c-p001-r1 (lab status lists them)'));
        done({ cmd: 'down', ...(runId ? { runId } : {}) });
      });
  },
  // Every runtime is cleaned, whatever another one could not remove; each thing left is named
  // on a line of its own, and then the exit code is 1.
  async run(inv) {
    const { availableRuntimes } = await import('../runtime/index.js');
    let total = 0;
    const left: string[] = [];
    for (const rt of await availableRuntimes()) {
      let n: number;
      try {
        n = await rt.destroy(inv.runId);
      } catch (err) {
        if (!(err instanceof CleanupError)) throw err;
        n = err.removed;
        left.push(...err.left);
      }
      total += n;
      if (n) process.stderr.write(`lab down: removed ${n} ${rt.removes}${inv.runId ? ` of run ${inv.runId}` : ''}\n`);
    }
    for (const l of left) process.stderr.write(`lab down: could not remove ${l}\n`);
    if (!total && !left.length) process.stderr.write('lab down: nothing to remove\n');
    return left.length ? 1 : 0;
  },
};
