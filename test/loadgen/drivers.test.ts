// cpu-wrap on real processes: the child's CPU time as the kernel accounted it; autocannon-us's
// report of its own CPU against that same accounting.
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { allowedCpus, planPinning, splitCpu, toolThreads } from '../../lab/loadgen/drivers.js';
import type { Host } from '../../lab/runtime/runtime.js';

const WRAP = fileURLToPath(new URL('../../dist/lab/in-host/cpu-wrap.js', import.meta.url));
const AUTOCANNON = fileURLToPath(new URL('../../dist/lab/in-host/autocannon-us.js', import.meta.url));

/** A child's exit code, stdout and stderr (spawn: this process keeps serving while it runs). */
async function run(argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = spawn(process.execPath, argv);
  let stdout = '';
  let stderr = '';
  c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const [code] = (await once(c, 'close')) as [number | null];
  return { code, stdout, stderr };
}

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

  // The driver runs autocannon-us.js without cpu-wrap: its own figure must be the one the kernel
  // gives its parent once it is reaped (cutime/cstime, 10 ms ticks), start-up included.
  it('autocannon-us.js reports its own CPU as the kernel accounts it to cpu-wrap', async () => {
    const srv = createServer((_q, s) => s.end('hello'));
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as { port: number }).port;
    try {
      const opts = JSON.stringify({ url: `http://127.0.0.1:${port}/`, connections: 2, duration: 1 });
      const r = await run([WRAP, process.execPath, AUTOCANNON, opts]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).requests.total).toBeGreaterThan(100);
      const kernel = splitCpu(r.stderr);
      const own = splitCpu(kernel.stderr);
      const sum = (c: typeof own.cpu) => c!.userSec + c!.systemSec;
      expect(sum(kernel.cpu)).toBeGreaterThan(0.2);
      // Its own report ends a moment before it exits (the exit's own CPU is not in it): within 3 ticks.
      expect(Math.abs(sum(own.cpu) - sum(kernel.cpu))).toBeLessThanOrEqual(0.03);
      expect(own.cpu!.wallSec).toBeGreaterThan(1);
      expect(own.cpu!.wallSec).toBeLessThanOrEqual(kernel.cpu!.wallSec);
    } finally {
      srv.close();
    }
  });

  it('threads the bound is measured against', () => {
    expect(toolThreads('ab', { url: '', connections: 9, threads: 4 })).toBe(1);
    expect(toolThreads('wrk', { url: '', connections: 2, threads: 4 })).toBe(2);
    expect(toolThreads('autocannon', { url: '', connections: 2 })).toBe(1);
  });
});

describe('pinning several load generators', () => {
  const host = (name: string, placedOn?: string) => ({ name, placedOn }) as unknown as Host;

  it('reads the CPUs this process may use from its status, ranges and lists', () => {
    expect(allowedCpus('Name:\tnode\nCpus_allowed_list:\t0-3,6,8-9\n')).toEqual([0, 1, 2, 3, 6, 8, 9]);
    expect(allowedCpus('Cpus_allowed_list:\t1\n')).toEqual([1]);
    expect(allowedCpus('Name:\tnode\n')).toEqual([]);
    // This process's own: every CPU it may use is one the machine has.
    const own = allowedCpus(readFileSync('/proc/self/status', 'utf8'));
    expect(own.length).toBe(availableParallelism());
  });

  it('each loadgen its own CPUs, in order, when there are enough; none pinned otherwise, and why', () => {
    expect(planPinning([host('loadgen-1'), host('loadgen-2')], 1, [0, 1])).toEqual({
      plan: [[0], [1]],
      why: 'loadgen-1 on CPU 0, loadgen-2 on CPU 1',
    });
    expect(planPinning([host('loadgen-1'), host('loadgen-2')], 2, [2, 3, 5, 7]).plan).toEqual([
      [2, 3],
      [5, 7],
    ]);
    expect(planPinning([host('loadgen-1'), host('loadgen-2'), host('loadgen-3')], 1, [0, 1])).toEqual({
      plan: null,
      why: '3 load generators × 1 thread(s) need 3 CPUs and 2 are here: not pinned',
    });
    expect(planPinning([host('loadgen-1', 'node-a'), host('loadgen-2', 'node-b')], 1, [0, 1]).plan).toBeNull();
  });
});
