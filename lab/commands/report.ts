// lab report: report.md and report.html of a sweep folder, from its point records.
import { say, type LabCommand } from './command.js';

export type ReportInvocation = { cmd: 'report'; dir: string };

export const report: LabCommand<ReportInvocation> = {
  define(program, done) {
    program
      .command('report <dir>')
      .description('write report.md and report.html (self-contained, with charts) for a sweep folder from its point records; prints both paths')
      .action((dir: string) => done({ cmd: 'report', dir }));
  },
  async run(inv) {
    const { writeReport } = await import('../report/report.js');
    const r = writeReport(inv.dir);
    say(`${r.md}\n${r.html}\n`);
    return 0;
  },
};
