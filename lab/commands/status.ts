// lab status: the labs running and their hosts.
import { say, type LabCommand } from './command.js';

export type StatusInvocation = { cmd: 'status'; json: boolean };

export const status: LabCommand<StatusInvocation> = {
  define(program, done) {
    program
      .command('status')
      .description('list running labs and their hosts')
      .option('--json', 'print JSON only')
      .action((o: { json?: boolean }) => done({ cmd: 'status', json: o.json ?? false }));
  },
  async run(inv) {
    const { availableRuntimes } = await import('../runtime/index.js');
    const labs = (await Promise.all((await availableRuntimes()).map((rt) => rt.list()))).flat();
    if (inv.json) return (say(JSON.stringify(labs) + '\n'), 0);
    if (!labs.length) say('no labs running\n');
    for (const l of labs) {
      say(`${l.runId} (${l.runtime})\n`);
      for (const h of l.hosts) say(`  ${h.name.padEnd(12)} ${h.pids.length} process(es)\n`);
    }
    return 0;
  },
};
