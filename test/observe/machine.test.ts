// The machine's idle CPU from /proc/stat, and the throughput rule whose premise it checks.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { readFileSync } from 'node:fs';
import { idleCores, parseProcStat } from '../../lab/observe/machine.js';
import { throughput } from '../../lab/scenarios/throughput.js';

const read = () => parseProcStat(readFileSync('/proc/stat', 'utf8'));

describe("the machine's idle CPU", () => {
  it('/proc/stat: one cpuN line per CPU node sees, and the jiffies only grow', async () => {
    const a = read();
    await new Promise((r) => setTimeout(r, 200));
    const b = read();
    expect(a?.cpus).toBe(cpus().length);
    expect(b!.total).toBeGreaterThan(a!.total);
    expect(b!.idle).toBeGreaterThanOrEqual(a!.idle);
  });

  it('a process spinning on every CPU for 1 s leaves under a quarter of a core idle', async () => {
    const spin = () => spawn(process.execPath, ['-e', 'const end = Date.now() + 1000; while (Date.now() < end);']);
    const a = read();
    const kids = cpus().map(spin);
    await Promise.all(kids.map((k) => new Promise((r) => k.on('exit', r))));
    const idle = idleCores(a, read());
    expect(idle).not.toBeNull();
    expect(idle!).toBeLessThan(0.25);
  });
});

describe('throughput: the server kept up with the offered rate', () => {
  // 8,000/s offered, 6,162/s answered: a swarm sweep's numbers while a compiler ran on the machine.
  const judge = (idle: number | null) =>
    throughput
      .judge(
        // The rule reads only the driven result.
        {} as Parameters<typeof throughput.judge>[0],
        {
          observed: {
            peak: null,
            rps: 6162,
            requests: 30810,
            errors: { connect: 0, read: 0, write: 0, timeout: 0, reset: 0, non2xx: 0, other: 0 },
            latencyMs: null,
            durationSec: 5,
            idleCores: idle,
          },
          predicted: { rate: 8000 },
        },
        { series: {}, counters: {} },
      )
      .find((v) => v.rule.startsWith('server kept up'))!;

  it('fell short with no idle CPU on its machine: INCONCLUSIVE, saying so', () => {
    const v = judge(0.08);
    expect(v.verdict).toBe('INCONCLUSIVE');
    expect(v.reason).toContain("the server's machine had 0.08 cores idle over the load");
  });

  it('fell short with CPU to spare: FAIL', () => {
    expect(judge(1.2).verdict).toBe('FAIL');
  });
});
