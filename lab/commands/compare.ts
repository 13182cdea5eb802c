// lab compare: two sweeps of one scenario point by point; exit 1 on a regression.
import { InputError } from '../../core/errors.js';
import { typed } from '../../core/fields.js';
import { opt, say, type LabCommand } from './command.js';

export type CompareInvocation = { cmd: 'compare'; a: string; b: string; threshold: number; json: boolean };

function threshold(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1)
    throw new InputError(`--threshold: got ${JSON.stringify(typed(v))}: a number from 0 to 1`);
  return n;
}

export const compare: LabCommand<CompareInvocation> = {
  define(program, done) {
    program
      .command('compare <dirA> <dirB>')
      .description(
        'compare two sweeps of one scenario point by point; flags changes beyond the noise (the spread over repetitions, at least --threshold of A). Exit 1 when there is a regression',
      )
      .addOption(opt('--threshold <fraction>', 'smallest relative change flagged, 0 to 1 (default 0.1)'))
      .option('--json', 'print the comparison as JSON')
      .action((a: string, b: string, o: { threshold?: string; json?: boolean }) =>
        done({ cmd: 'compare', a, b, threshold: o.threshold === undefined ? 0.1 : threshold(o.threshold), json: o.json ?? false }),
      );
  },
  async run(inv) {
    const { compare: diff, renderComparison } = await import('../report/compare.js');
    const c = diff(inv.a, inv.b, inv.threshold);
    say(inv.json ? JSON.stringify(c, null, 2) + '\n' : renderComparison(c, inv.a, inv.b));
    return c.regressions > 0 ? 1 : 0;
  },
};
