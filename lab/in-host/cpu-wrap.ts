#!/usr/bin/env node
// Runs a load generator and reports the CPU it used: after the child is reaped, this
// process's cutime/cstime (/proc/self/stat fields 16–17, in USER_HZ = 1/100 s) hold the
// child's user and system time, whatever the tool (threads and workers included).
// stdout and stderr pass through; the last stderr line is `tcplab-cpu {json}`.
// Usage: cpu-wrap.js TOOL [ARGS…]; exits with the tool's code (127 when it is missing).
import { spawn } from 'node:child_process';
import { procCpu } from '../../server/proc.js';

export const CPU_MARK = 'tcplab-cpu ';
/** The reaped child's user and system time, as this process's cutime/cstime. */
const childTimes = () => procCpu('self')!.children;

async function main(): Promise<number> {
  const [tool, ...args] = process.argv.slice(2);
  if (!tool) {
    process.stderr.write('usage: cpu-wrap.js TOOL [ARGS…]\n');
    return 2;
  }
  const start = process.hrtime.bigint();
  const child = spawn(tool, args, { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => child.kill(sig));
  const code = await new Promise<number>((resolve) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      process.stderr.write(`cpu-wrap: ${tool}: ${err.code === 'ENOENT' ? 'not found' : err.message}\n`);
      resolve(err.code === 'ENOENT' ? 127 : 126);
    });
    child.on('exit', (c, sig) => resolve(c ?? 128 + (sig === 'SIGKILL' ? 9 : 15)));
  });
  const wallSec = Number(process.hrtime.bigint() - start) / 1e9;
  process.stderr.write(`\n${CPU_MARK}${JSON.stringify({ ...childTimes(), wallSec })}\n`);
  return code;
}

if (process.argv[1]?.endsWith('cpu-wrap.js')) process.exitCode = await main();
