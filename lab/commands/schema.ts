// lab schema: the lab file's JSON Schema, or the tune file's (--tune).
import { say, type LabCommand } from './command.js';

export type SchemaInvocation = { cmd: 'schema'; tune: boolean };

export const schema: LabCommand<SchemaInvocation> = {
  define(program, done) {
    program
      .command('schema')
      .description('print the lab file schema (JSON Schema)')
      .option('--tune', "print the tune file's schema instead (lab tune FILE)")
      .action((opts: { tune?: boolean }) => done({ cmd: 'schema', tune: opts.tune === true }));
  },
  async run(inv) {
    const { z } = await import('zod');
    const schema = inv.tune ? (await import('../plan/tune.js')).TuneFileSchema : (await import('../plan/labfile.js')).LabFileSchema;
    say(JSON.stringify(z.toJSONSchema(schema, { io: 'input' }), null, 2) + '\n');
    return 0;
  },
};
