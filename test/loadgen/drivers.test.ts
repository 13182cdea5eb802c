// cpu-wrap on real processes: the child's CPU time as the kernel accounted it.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { splitCpu, toolThreads } from '../../lab/loadgen/drivers.js';

const WRAP = fileURLToPath(new URL('../../dist/lab/in-host/cpu-wrap.js', import.meta.url));

describe('cpu-wrap', () => {
  it('reports a busy child near one core and an idle one near zero; output and exit code pass through', () => {
    const busy = spawnSync(
      process.execPath,
      [WRAP, process.execPath, '-e', 'const e=Date.now()+600; while(Date.now()<e); console.log("done"); process.exit(3)'],
      { encoding: 'utf8' },
    );
    expect(busy.status).toBe(3);
    expect(busy.stdout).toBe('done\n');
    const b = splitCpu(busy.stderr);
    expect(b.stderr).toBe('');
    expect(b.cpu!.userSec + b.cpu!.systemSec).toBeGreaterThan(0.45);
    expect(b.cpu!.cores).toBeGreaterThan(0.6);

    const idle = splitCpu(spawnSync(process.execPath, [WRAP, 'sleep', '0.5'], { encoding: 'utf8' }).stderr);
    expect(idle.cpu!.wallSec).toBeGreaterThan(0.45);
    expect(idle.cpu!.cores).toBeLessThan(0.1);
  });

  it('a missing tool exits 127 with one line', () => {
    const r = spawnSync(process.execPath, [WRAP, 'no-such-tool-tcplab'], { encoding: 'utf8' });
    expect(r.status).toBe(127);
    expect(splitCpu(r.stderr).stderr).toBe('cpu-wrap: no-such-tool-tcplab: not found');
  });

  it('threads the bound is measured against', () => {
    expect(toolThreads('ab', { url: '', connections: 9, threads: 4 })).toBe(1);
    expect(toolThreads('wrk', { url: '', connections: 2, threads: 4 })).toBe(2);
    expect(toolThreads('autocannon', { url: '', connections: 2 })).toBe(1);
  });
});
