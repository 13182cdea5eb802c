// Several load generators (loadgens.0.count) on netns and Docker, through the CLI: each a host
// of its own with its sysctls, run together, one merged result whose requests are their sum
// and whose latency is the merge of their histograms (recomputed here from each instance's
// histogram), each instance's CPU and loadgen-bound flag kept; a tool without histograms
// gives no merged latency and says why; count > 1 for another scenario is refused.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { PointRecord } from '../../lab/pipeline/record.js';
import { allowedCpus } from '../../lab/loadgen/drivers.js';
import { mergeHistograms } from '../../lab/loadgen/merge.js';

const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
const WORK = mkdtempSync(join(tmpdir(), 'tcplab-loadgens-'));

async function sweep(name: string, text: string) {
  writeFileSync(join(WORK, name), text);
  const r = await execa(process.execPath, [CLI, 'sweep', join(WORK, name)], { reject: false, cwd: WORK });
  const dir = r.exitCode === 0 ? join(WORK, r.stdout.trim()) : '';
  const recs = dir
    ? readdirSync(join(dir, 'points'))
        .sort()
        .map((f) => JSON.parse(readFileSync(join(dir, 'points', f), 'utf8')) as PointRecord)
    : [];
  return { r, recs };
}

// The merge is the runtime's business nowhere: netns here; several loadgen containers, merged,
// run on the swarm (test/runtime/swarm.test.ts, examples/throughput-swarm.yaml).
describe.each(['netns'] as const)('several load generators on %s', (rt) => {
  it('autocannon ×3: requests add up, latency is the merge of their histograms, each with its sysctls and CPU', async () => {
    const { r, recs } = await sweep(
      `three-${rt}.yaml`,
      `runtime: ${rt}\nscenario: {name: throughput}\nloadgens: [{count: 3, options: {connections: 4, duration: 2}, sysctls: {net.ipv4.tcp_fin_timeout: 21}}]\n`,
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('autocannon from loadgen-1, loadgen-2, loadgen-3, 4 connections each');
    const p = recs[0]!;
    const load = p.scenario.load!;
    const inst = load.instances!;
    expect(inst.map((i) => i.host)).toEqual(['loadgen-1', 'loadgen-2', 'loadgen-3']);
    for (const i of inst) {
      expect(i.result.requests).toBeGreaterThan(100);
      expect(i.cpu!.cores).toBeGreaterThan(0);
      expect(p.hosts[i.host]!.sysctls.readBack['net.ipv4.tcp_fin_timeout']).toBe('21');
    }
    // Requests add up, and the server saw them all (its own count).
    const sum = inst.reduce((a, i) => a + i.result.requests, 0);
    expect(load.result.requests).toBe(sum);
    expect(p.server.requests).toBeGreaterThanOrEqual(sum);
    expect(load.loadgenBound).toBe(inst.some((i) => i.loadgenBound));
    // The merged percentiles are those of the merged histograms, not an average of percentiles.
    const h = mergeHistograms(inst.map((i) => i.result.histogramUs))!;
    const counts = inst.map((i) => mergeHistograms([i.result.histogramUs])!.totalCount);
    expect(h.totalCount).toBe(counts.reduce((a, b) => a + b, 0));
    expect(Math.min(...counts)).toBeGreaterThan(100);
    expect(load.result.latencyMs).toEqual({
      p50: h.getValueAtPercentile(50) / 1000,
      p90: h.getValueAtPercentile(90) / 1000,
      p99: h.getValueAtPercentile(99) / 1000,
      max: Math.max(...inst.map((i) => i.result.latencyMs!.max)),
    });
    // A merged median lies between the instances' medians; the merged max is within the
    // histogram's precision (3 significant digits) of its own.
    const p50s = inst.map((i) => i.result.latencyMs!.p50);
    expect(load.result.latencyMs!.p50).toBeGreaterThanOrEqual(Math.min(...p50s) - 0.001);
    expect(load.result.latencyMs!.p50).toBeLessThanOrEqual(Math.max(...p50s) + 0.001);
    expect(Math.abs(load.result.latencyMs!.max - h.maxValue / 1000)).toBeLessThanOrEqual(load.result.latencyMs!.max / 1000 + 0.001);
    expect(p.scenario.observed).toMatchObject({ requests: sum });
    // Three single-threaded loadgens pin only where the lab may use 3 CPUs.
    const cpus = allowedCpus(readFileSync('/proc/self/status', 'utf8'));
    expect(load.pinning!.pinned).toBe(cpus.length >= 3);
    if (cpus.length < 3) expect(load.pinning!.why).toBe(`3 load generators × 1 thread(s) need 3 CPUs and ${cpus.length} are here: not pinned`);
  }, 180_000);
});

describe('several load generators: what cannot merge, and where they do not apply', () => {
  it('wrk ×2: requests add up; no merged latency, and the record says why; each pinned to a CPU of its own, as the kernel shows', async () => {
    // The affinity of every wrk load while they run, as /proc shows it (the netns runtime's
    // processes are the machine's).
    const seen = new Set<string>();
    let running = true;
    const watch = (async () => {
      while (running) {
        for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
          try {
            const st = readFileSync(`/proc/${pid}/status`, 'utf8');
            // The load runs (the lab's `wrk -v` check before them has no URL).
            if (/^Name:\s+wrk$/m.test(st) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('http://'))
              seen.add(/^Cpus_allowed_list:\s*(\S+)$/m.exec(st)![1]!);
          } catch {
            // gone
          }
        }
        await new Promise((res) => setTimeout(res, 100));
      }
    })();
    const { r, recs } = await sweep(
      'wrk-two.yaml',
      'runtime: netns\nscenario: {name: throughput}\nloadgens: [{tool: wrk, count: 2, options: {connections: 4, duration: 2}}]\n',
    ).finally(() => (running = false));
    await watch;
    expect(r.exitCode, r.stderr).toBe(0);
    const load = recs[0]!.scenario.load!;
    const cpus = allowedCpus(readFileSync('/proc/self/status', 'utf8'));
    if (cpus.length >= 2) {
      expect(load.instances!.map((i) => i.cpus)).toEqual([[cpus[0]], [cpus[1]]]);
      expect(load.pinning).toEqual({ pinned: true, why: `loadgen-1 on CPU ${cpus[0]}, loadgen-2 on CPU ${cpus[1]}` });
      expect([...seen].sort()).toEqual([String(cpus[0]), String(cpus[1])]);
      expect(r.stderr).toContain(`pinning: loadgen-1 on CPU ${cpus[0]}, loadgen-2 on CPU ${cpus[1]}`);
    } else {
      expect(load.pinning!.pinned).toBe(false);
    }
    expect(load.instances).toHaveLength(2);
    expect(load.result.requests).toBe(load.instances!.reduce((a, i) => a + i.result.requests, 0));
    expect(load.result.latencyMs).toBeNull();
    expect(load.latencyWhy).toBe('wrk gives no latency histogram, and percentiles of 2 load generators cannot be averaged');
  }, 120_000);

  it('count > 1 for a scenario other than throughput: one line naming the field, exit 2', async () => {
    const { r } = await sweep('backlog-two.yaml', 'runtime: netns\nscenario: {name: backlog}\nloadgens: [{count: 2}]\n');
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toMatch(
      /loadgens\.0\.count: got 2: 1 for scenario backlog \(only throughput drives several load generators and merges them\)$/,
    );
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
