// lab serve: the native reactor and its control API in this process (what a server host runs).
import { addServeOptions, serveOptions, type ServeOptions } from '../../server/options.js';
import type { LabCommand } from './command.js';

export type ServeInvocation = { cmd: 'serve'; options: ServeOptions };

export const serve: LabCommand<ServeInvocation> = {
  define(program, done) {
    addServeOptions(program.command('serve'))
      .description('run the native reactor and its control API in this process (what the server host runs)')
      .action((parsed: Record<string, unknown>) => done({ cmd: 'serve', options: serveOptions(parsed) }));
  },
  async run(inv) {
    const { serve: start } = await import('../../server/main.js');
    await start(inv.options);
    return 0;
  },
};
