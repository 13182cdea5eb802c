// throughput: the load generator's run; the verdict only says whether the numbers can be trusted.
import { runLoad } from '../loadgen/drivers.js';
import { loadOptions } from '../loadgen/result.js';
import type { Scenario } from './common.js';

export const throughput: Scenario = {
  async drive(ctx) {
    const lg = ctx.config.loadgens[0]!;
    const run = await runLoad(ctx.client, lg.tool, loadOptions(lg.options, `http://${ctx.server.address}:${ctx.port}/`));
    const { stdout: _o, stderr: _e, ...load } = run;
    return { observed: { rps: run.result.rps, requests: run.result.requests, errors: run.result.errors }, predicted: {}, load };
  },
  judge(_ctx, r) {
    const bound = r.load?.loadgenBound;
    const rps = (r.observed as { rps: number }).rps;
    return [
      {
        rule: 'measurement valid (load generator not the bottleneck)',
        predicted: null,
        observed: Math.round(rps),
        verdict: bound ? 'INCONCLUSIVE' : 'PASS',
        reason: bound ? `the load generator used ${r.load?.cpu?.cores.toFixed(2)} cores: the rate says more about it than the server` : 'the load generator had CPU to spare',
      },
    ];
  },
};
