// lab schema: the lab file's JSON Schema.
import { say, type LabCommand } from './command.js';

export type SchemaInvocation = { cmd: 'schema' };

export const schema: LabCommand<SchemaInvocation> = {
  define(program, done) {
    program
      .command('schema')
      .description('print the lab file schema (JSON Schema)')
      .action(() => done({ cmd: 'schema' }));
  },
  async run() {
    const { LabFileSchema } = await import('../plan/labfile.js');
    const { z } = await import('zod');
    say(JSON.stringify(z.toJSONSchema(LabFileSchema, { io: 'input' }), null, 2) + '\n');
    return 0;
  },
};
