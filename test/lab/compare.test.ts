// `lab compare A B` on a real throughput sweep (2 repetitions of one point, so the spread is
// real), against itself and against a copy whose records were changed on purpose.
import { beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { PointRecord } from '../../lab/pipeline/record.js';

const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
const WORK = mkdtempSync(join(tmpdir(), 'tcplab-compare-'));
const lab = (args: string[]) => execa(process.execPath, [CLI, ...args], { reject: false, cwd: WORK });
let A = '';

/** A copy of a sweep (A by default) with each record passed through `edit`. */
function variant(name: string, edit: (p: PointRecord) => void, from = A): string {
  const dir = join(WORK, name);
  cpSync(from, dir, { recursive: true });
  for (const f of readdirSync(join(dir, 'points'))) {
    const p = JSON.parse(readFileSync(join(dir, 'points', f), 'utf8')) as PointRecord;
    edit(p);
    writeFileSync(join(dir, 'points', f), JSON.stringify(p));
  }
  return dir;
}

beforeAll(async () => {
  const f = join(WORK, 'tp.yaml');
  writeFileSync(f, 'runtime: netns\nscenario: {name: throughput}\nloadgens: [{options: {connections: 8, duration: 1}}]\nrepetitions: 2\n');
  const r = await lab(['sweep', f]);
  expect(r.exitCode, r.stderr).toBe(0);
  A = join(WORK, r.stdout.trim());
}, 120_000);

describe('lab compare', () => {
  it('a sweep against itself: no flag, exit 0', async () => {
    const r = await lab(['compare', A, A]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('0 regression(s) beyond the noise; 0 improvement(s); 0 other change(s).');
    const j = JSON.parse((await lab(['compare', '--json', A, A])).stdout);
    const rps = j.metrics.find((m: { metric: string }) => m.metric === 'requests/s');
    const recs = readdirSync(join(A, 'points')).map((f) => JSON.parse(readFileSync(join(A, 'points', f), 'utf8')) as PointRecord);
    const vals = recs.map((p) => (p.scenario.observed as { rps: number }).rps);
    expect(rps.a).toBeCloseTo((vals[0]! + vals[1]!) / 2, 2);
    // The noise is the spread of the repetitions (or 10 % of the mean, whichever is larger).
    expect(rps.noise).toBeCloseTo(Math.max(Math.abs(vals[0]! - vals[1]!), rps.a * 0.1), 2);
  });

  it('half the requests/s in B: a regression beyond the noise, exit 1; double: an improvement', async () => {
    // Two 1 s runs on 2 shared cores can differ by half (15,810 and 26,709 req/s seen in CI), and
    // that spread is the noise: the rule is tested on a copy of A whose repetitions agree.
    const rps = (p: PointRecord) => p.scenario.observed as { rps: number };
    const recs = readdirSync(join(A, 'points')).map((f) => JSON.parse(readFileSync(join(A, 'points', f), 'utf8')) as PointRecord);
    const mean = recs.reduce((n, p) => n + rps(p).rps, 0) / recs.length;
    const steady = variant('steady', (p) => (rps(p).rps = mean));
    const half = variant('half', (p) => (rps(p).rps /= 2), steady);
    const r = await lab(['compare', steady, half]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/\| no axes \| requests\/s \| [\d.]+ \| [\d.]+ \| -[\d.]+ \| [\d.]+ \| \*\*REGRESSION\*\* \|/);
    expect(r.stdout).toContain('1 regression(s) beyond the noise');
    const double = variant('double', (p) => (rps(p).rps *= 2), steady);
    const d = await lab(['compare', steady, double]);
    expect(d.exitCode).toBe(0);
    expect(d.stdout).toContain('**IMPROVEMENT**');
  });

  it('a rule that went from PASS to FAIL is a regression', async () => {
    const failed = variant('failed', (p) => (p.scenario.verdicts[0]!.verdict = 'FAIL'));
    const base = variant('passed', (p) => (p.scenario.verdicts[0]!.verdict = 'PASS'));
    const r = await lab(['compare', base, failed]);
    expect(r.stdout).toContain('| no axes | measurement valid (load generator not the bottleneck) | PASS | FAIL | **REGRESSION** |');
    expect(r.exitCode).toBe(1);
  });

  it('bad input: one line, exit 2', async () => {
    const other = variant('other', (p) => (p.scenario.name = 'backlog'));
    // A record cut short (a disk that filled up, a copy stopped half-way): one line naming it.
    const damaged = variant('damaged', () => {});
    const f = join(damaged, 'points', 'p001-r1.json');
    writeFileSync(f, readFileSync(f, 'utf8').slice(0, 100));
    for (const [args, msg] of [
      [[A, other], `lab compare: ${A} is a throughput sweep, ${other} a backlog sweep: compare sweeps of one scenario`],
      [[A, join(WORK, 'nope')], `lab compare: ${join(WORK, 'nope')}: not a sweep folder (no points/)`],
      [['--threshold', '2', A, A], 'lab compare: --threshold: got 2: a number from 0 to 1'],
      [[A], "lab compare: missing required argument 'dirB'"],
    ] as const) {
      const r = await lab(['compare', ...args]);
      expect([r.exitCode, r.stderr.trim()]).toEqual([2, msg]);
    }
    const r = await lab(['compare', A, damaged]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toMatch(
      new RegExp(`^lab compare: ${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON \\(.+\\); the file is damaged$`),
    );
  });
});
