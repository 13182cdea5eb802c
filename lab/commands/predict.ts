// lab predict: what the kernel model says each point of a lab file will do, before anything runs.
import { say, type LabCommand } from './command.js';

export type PredictInvocation = { cmd: 'predict'; file: string; json: boolean };

export const predict: LabCommand<PredictInvocation> = {
  define(program, done) {
    program
      .command('predict <file>')
      .description('what the kernel model says each point of a lab file will do, and why, before anything runs (needs no root)')
      .option('--json', 'print the predictions as JSON')
      .action((file: string, o: { json?: boolean }) => done({ cmd: 'predict', file, json: o.json ?? false }));
  },
  async run(inv) {
    const { loadLabFile } = await import('../plan/labfile.js');
    const { predictLab, renderPredictions } = await import('../plan/predict.js');
    const points = predictLab(loadLabFile(inv.file));
    say(inv.json ? JSON.stringify(points, null, 2) + '\n' : renderPredictions(inv.file, points));
    return 0;
  },
};
