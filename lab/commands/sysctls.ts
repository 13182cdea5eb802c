// lab sysctls: the tunables the lab knows, with their ranges, scope, side, default and meaning.
import { say, type LabCommand } from './command.js';

export type SysctlsInvocation = { cmd: 'sysctls'; json: boolean };

export const sysctls: LabCommand<SysctlsInvocation> = {
  define(program, done) {
    program
      .command('sysctls')
      .description('list the tunables the lab knows: allowed values, scope, side, default, meaning')
      .option('--json', 'print JSON only')
      .action((o: { json?: boolean }) => done({ cmd: 'sysctls', json: o.json ?? false }));
  },
  async run(inv) {
    const { TUNABLES, describeAllowed } = await import('../../sysctl/registry.js');
    if (inv.json) return (say(JSON.stringify(TUNABLES) + '\n'), 0);
    for (const t of TUNABLES) {
      const where =
        t.scope === 'global'
          ? `global (not settable per host: ${t.whyGlobal})`
          : `per host, acts on the ${t.side === 'both' ? 'server and client' : t.side}`;
      const d = t.kernelDefault !== undefined ? `kernel default ${t.kernelDefault}` : 'default depends on the machine';
      say(`${t.name}\n  ${t.meaning}\n  allowed: ${describeAllowed(t.value)}; ${where}; ${d}\n`);
    }
    return 0;
  },
};
