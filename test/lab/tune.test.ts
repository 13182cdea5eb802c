// lab tune on netns: the three example tune files as they ship (examples/tune/), each run as a
// user runs it, and what each hands back checked again here with its own tool: the settings
// chosen run again by `lab sweep` and meet the objective, as the kernel counts it; the sysctl.d
// file applied by `sysctl -p` in a fresh namespace and read back; the pod against the
// Kubernetes schema; the compose file by Compose; the rules by promtool (check, and test on
// series from the tune's own points: the alert fires for a point that missed, not for the
// chosen one). Bad input: one line, exit 2, nothing made.
import { describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parse as parseYaml, stringify } from 'yaml';
import { Pod } from 'kubernetes-models/v1';
import type { TuneResult } from '../../lab/pipeline/tune.js';
import type { PointRecord } from '../../lab/pipeline/record.js';
import type { Observed as ArrivalsObserved } from '../../lab/scenarios/arrivals.js';
import type { Observed as FloodObserved } from '../../lab/scenarios/synflood.js';
import { readRecords } from '../helpers/verdicts.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/lab/bin.js');
const WORK = mkdtempSync(join(tmpdir(), 'tcplab-tune-'));
const lab = (args: string[]) => execa(process.execPath, [CLI, ...args], { reject: false, cwd: WORK });
const example = (name: string) => join(ROOT, 'examples/tune', name);
const netns = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

/** The kernel's counts and the client's outcomes of a point, read from its record. */
function seen(p: PointRecord) {
  const c = p.hosts['server']!.counters.delta;
  const base = { listenOverflows: c['TcpExtListenOverflows'] ?? 0, synDrops: c['TcpExtListenDrops'] ?? 0 };
  if (p.scenario.name === 'synflood') {
    const legit = (p.scenario.observed as FloodObserved).legit;
    return { ...base, errors: 1 - legit.connected, connectMs: Math.max(...legit.connectMs) };
  }
  const o = p.scenario.observed as ArrivalsObserved;
  return { ...base, errors: o.connections - o.byOutcome.answered, connectMs: o.connect.p99! };
}

/** The tune file's workload with the chosen settings, as a lab file `lab sweep` runs. */
function labFileOf(tuneFile: string, settings: Record<string, unknown>): string {
  const raw = parseYaml(readFileSync(tuneFile, 'utf8')) as Record<string, unknown>;
  for (const k of ['objective', 'tune', 'search', 'headroom']) delete raw[k];
  raw['sweep'] = { zip: Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, [v]])) };
  const f = join(WORK, `again-${Date.now()}.yaml`);
  writeFileSync(f, stringify(raw));
  return f;
}

/** Runs a tune file on netns; its folder, result and exit code. */
async function tune(file: string) {
  const r = await lab(['tune', file, '--runtime', 'netns', '--output', 'out']);
  const dir = join(WORK, r.stdout.trim());
  expect(existsSync(join(dir, 'tune.json')), r.stderr).toBe(true);
  return { r, dir, result: JSON.parse(readFileSync(join(dir, 'tune.json'), 'utf8')) as TuneResult };
}

/** The chosen settings run again by lab sweep: the objective, as the kernel and the client count it. */
async function again(file: string, settings: Record<string, unknown>) {
  const s = await lab(['sweep', labFileOf(file, settings), '--runtime', 'netns', '--output', 'again']);
  expect(s.exitCode, s.stderr).toBe(0);
  const [p] = readRecords(join(WORK, s.stdout.trim()));
  return seen(p!);
}

/** Each output checked again here by its own tool. */
async function checkApply(dir: string, chosen: string, missed: string[]) {
  const apply = join(dir, 'apply');
  // sysctl -p in a fresh network namespace, each value read back there.
  const conf = readFileSync(join(apply, 'sysctl.d/90-tcplab-tune.conf'), 'utf8');
  const want = conf
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(' = ') as [string, string]);
  expect(want.length).toBeGreaterThan(0);
  const back = execFileSync(
    'unshare',
    [
      '--net',
      '--',
      'bash',
      '-c',
      'sysctl -q -p "$1" && shift && sysctl -n -- "$@"',
      'bash',
      join(apply, 'sysctl.d/90-tcplab-tune.conf'),
      ...want.map(([n]) => n),
    ],
    { encoding: 'utf8' },
  );
  expect(back.trim().split('\n')).toEqual(want.map(([, v]) => v));
  // The pod against the Kubernetes API schema; its sysctls the same.
  const pod = parseYaml(readFileSync(join(apply, 'k8s-pod-sysctls.yaml'), 'utf8')) as Record<string, unknown>;
  expect(() => new Pod(pod as ConstructorParameters<typeof Pod>[0]).validate()).not.toThrow();
  expect((pod as { spec: { securityContext: { sysctls: Array<{ name: string; value: string }> } } }).spec.securityContext.sysctls).toEqual(
    want.map(([name, value]) => ({ name, value })),
  );
  // Compose reads the service's sysctls as given.
  const v2 = await execa('docker', ['compose', 'version'], { reject: false });
  const compose = v2.exitCode === 0 ? ['docker', 'compose'] : ['docker-compose'];
  const c = await execa(compose[0]!, [...compose.slice(1), '-f', join(apply, 'compose-sysctls.yaml'), 'config'], { reject: false, cwd: apply });
  expect(c.exitCode, c.stderr).toBe(0);
  const svc = (parseYaml(c.stdout) as { services: { server: { sysctls: Record<string, string | number> } } }).services.server;
  expect(Object.entries(svc.sysctls).map(([k, v]) => [k, String(v)])).toEqual(want);
  // promtool: the rules, and their test on the tune's own points.
  const check = await execa('promtool', ['check', 'rules', 'prometheus-rules.yaml'], { cwd: apply, reject: false });
  expect(check.exitCode, check.stdout + check.stderr).toBe(0);
  const test = await execa('promtool', ['test', 'rules', 'prometheus-rules.test.yaml'], { cwd: apply, reject: false });
  expect(test.exitCode, test.stdout + test.stderr).toBe(0);
  // The test expects the alert for the points that missed and not for the chosen one.
  const t = readFileSync(join(apply, 'prometheus-rules.test.yaml'), 'utf8');
  for (const id of missed) expect(t).toContain(`instance: ${id}`);
  expect(t).not.toContain(`instance: ${chosen}\n`);
}

describe('lab tune: bad input', () => {
  const bad = (name: string, text: string) => {
    const f = join(WORK, name);
    writeFileSync(f, text);
    return f;
  };
  const workload = 'runtime: netns\nscenario: {name: arrivals, options: {schedule: bursts, burst: 50, acceptRate: 500}}\noutput: bad\n';
  it.each([
    ['no objective', `${workload}tune: {server.backlog: [16]}\n`, /: objective: missing/],
    ['an objective no one measures', `${workload}objective: {speed: 1}\ntune: {server.backlog: [16]}\n`, /objective: unknown field\(s\) "speed"/],
    [
      "an objective the scenario does not measure (synflood's first byte)",
      'runtime: netns\nscenario: {name: synflood}\nobjective: {firstByteP99Ms: 10}\ntune: {server.backlog: [16]}\noutput: bad\n',
      /objective\.firstByteP99Ms: got 10: an objective scenario synflood measures/,
    ],
    [
      'a value the kernel refuses',
      `${workload}objective: {errors: 0}\ntune: {server.sysctls.net.core.somaxconn: [16, -5]}\n`,
      /candidate p002 .*net\.core\.somaxconn/,
    ],
    [
      'one sysctl spelled twice',
      `${workload}objective: {errors: 0}\ntune: {server.sysctls.net.core.somaxconn: [16], server.sysctls.net/core/somaxconn: [32]}\n`,
      /tune\.server\.sysctls\.net\/core\/somaxconn: the same axis as tune\.server\.sysctls\.net\.core\.somaxconn/,
    ],
    [
      'a headroom past what the scenario takes',
      'runtime: netns\nscenario: {name: arrivals, options: {schedule: bursts, burst: 1500, acceptRate: 500}}\nobjective: {errors: 0}\ntune: {server.backlog: [16]}\nheadroom: [2]\noutput: bad\n',
      /headroom: 2× burst 1500 = 3000: scenario\.options\.burst: got 3000: an integer from 1 to 2000/,
    ],
    [
      'a sweep in a tune file',
      `${workload}objective: {errors: 0}\ntune: {server.backlog: [16]}\nsweep: {matrix: {server.backlog: [1]}}\n`,
      /sweep: a tune file has no sweep/,
    ],
  ])('%s: one line naming the field, exit 2, no folder', async (_what, text, message) => {
    const r = await lab(['tune', bad('bad.yaml', text)]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^lab tune: /);
    expect(r.stderr).toMatch(message);
    expect(existsSync(join(WORK, 'bad'))).toBe(false);
  });
});

describe('lab tune on netns: the example tune files', () => {
  it('burst.yaml: the model prunes the short queues, the cheapest it lets through meets the objective and is chosen; lab sweep meets it again with those settings; the headroom runs break where the queue is too short; each output passes its tool; interrupted, then resumed: the same answer', async () => {
    const file = example('burst.yaml');
    // Ctrl-C once the first point is on disk and the next runs: the lab removed, the point kept.
    const child = spawn(process.execPath, [CLI, 'tune', file, '--runtime', 'netns', '--output', 'out'], {
      cwd: WORK,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const deadline = Date.now() + 60_000;
    while (!/lab tune: hosts: /.test(err.split('p002-r1 headroom')[1] ?? '') && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 50));
    child.kill('SIGINT');
    const [code] = (await once(child, 'exit')) as [number];
    expect(code, err).toBe(130);
    expect(err).toContain('lab tune: interrupted; nothing left running');
    const dir = join(WORK, /^lab tune: (\S+): \d+ candidate/m.exec(err)![1]!);
    expect(readdirSync(join(dir, 'points'))).toEqual(['p001-r1.json']);
    expect(existsSync(join(dir, 'tune.json'))).toBe(false);
    expect(netns()).not.toContain(dir.split('/').pop()!);
    // Resumed: the first point from disk, the rest run.
    const r = await lab(['tune', '--resume', dir]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/lab tune: p001-r1 candidate .*: on disk/);
    const result = JSON.parse(readFileSync(join(dir, 'tune.json'), 'utf8')) as TuneResult;
    expect(
      r.stderr
        .trim()
        .split('\n')
        .filter((l) => /^lab tune: Chosen: /.test(l)),
    ).toHaveLength(1);
    // Every pruning has its rule; the points that ran are recorded, cheapest first.
    const pruned = result.steps.filter((s) => s.action === 'pruned');
    expect(pruned.length).toBeGreaterThan(0);
    for (const s of pruned) expect(s.model.rule).toMatch(/accept queue limit min\(backlog \d+, somaxconn \d+\) = \d+/);
    const ran = result.steps.filter((s) => s.action === 'ran');
    expect(ran.at(-1)!.met).toBe(true);
    expect(result.chosen!.settings).toEqual(ran.at(-1)!.settings);
    // No candidate the model let through is cheaper than the one chosen.
    const cost = ran.at(-1)!.cost;
    expect(result.steps.filter((s) => s.action !== 'pruned' && s.cost < cost)).toEqual([]);
    // The chosen settings, run again by lab sweep: the objective (no overflow, every connection
    // answered, connect p99 under 100 ms) as the kernel and the client count it.
    const x = await again(file, result.chosen!.settings);
    expect({ listenOverflows: x.listenOverflows, errors: x.errors }).toEqual({ listenOverflows: 0, errors: 0 });
    expect(x.connectMs).toBeLessThanOrEqual(100);
    // The headroom: the burst × 1.5 and × 2 on the chosen queue; both records there.
    expect(result.headroom.map((h) => [h.factor, h.size])).toEqual([
      [1.5, 150],
      [2, 200],
    ]);
    const recs = readRecords(dir);
    for (const h of result.headroom) {
      const p = recs.find((q) => q.point === h.point)!;
      expect(h.met).toBe(seen(p).listenOverflows === 0 && seen(p).errors === 0 && seen(p).connectMs <= 100);
    }
    // Each output, checked by its tool (by the tune, and again here).
    expect(result.outputs.map((o) => [o.file, o.ok, o.detail])).toEqual(result.outputs.map((o) => [o.file, true, 'ok']));
    expect(result.outputs).toHaveLength(5);
    const missed = result.headroom.filter((h) => !h.met).map((h) => h.point);
    await checkApply(dir, result.chosen!.point, missed);
    const backlog = readFileSync(join(dir, 'apply/listen-backlog.txt'), 'utf8');
    expect(backlog).toContain(`listen(fd, ${result.chosen!.settings['server.backlog']});`);
    expect(backlog).toContain(`nginx:     listen 8080 backlog=${result.chosen!.settings['server.backlog']};`);
    expect(result.unsafeSysctls).toEqual(['net.core.somaxconn']);
    // The report: the search and the answer, a link to each point that ran.
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    expect(html).toContain('<h2>The tune</h2>');
    for (const s of ran) expect(html).toContain(`href="points/${s.point}-r1.json"`);
    // Resumed when done: the same answer, every point from disk.
    const n = readdirSync(join(dir, 'points')).length;
    const again2 = await lab(['tune', '--resume', dir]);
    expect(again2.exitCode, again2.stderr).toBe(0);
    expect(again2.stderr).toContain(': on disk');
    expect(readdirSync(join(dir, 'points'))).toHaveLength(n);
    expect((JSON.parse(readFileSync(join(dir, 'tune.json'), 'utf8')) as TuneResult).chosen).toEqual(result.chosen);
    expect(netns()).not.toContain(dir.split('/').pop()!);
  }, 240_000);

  it('synflood.yaml: without cookies only the biggest queue holds the flood; with them the smallest does, and is chosen; lab sweep meets it again; the rules watch the SYN queue too', async () => {
    const file = example('synflood.yaml');
    const { r, dir, result } = await tune(file);
    expect(r.exitCode, r.stderr).toBe(0);
    // tcp_syncookies 0: the model prunes each candidate whose SYN queue, min(L + 1, M − M/4 + 1),
    // is below the flood's 600; it lets through only backlog 1024 with M 1024 (769).
    const off = result.steps.filter((s) => s.settings['server.sysctls.net.ipv4.tcp_syncookies'] === 0);
    expect(off.filter((s) => s.action !== 'pruned').map((s) => s.settings)).toEqual([
      { 'server.sysctls.net.ipv4.tcp_syncookies': 0, 'server.sysctls.net.ipv4.tcp_max_syn_backlog': 1024, 'server.backlog': 1024 },
    ]);
    expect(result.chosen!.settings).toEqual({
      'server.sysctls.net.ipv4.tcp_syncookies': 1,
      'server.sysctls.net.ipv4.tcp_max_syn_backlog': 128,
      'server.backlog': 128,
    });
    const x = await again(file, result.chosen!.settings);
    expect({ synDrops: x.synDrops, errors: x.errors }).toEqual({ synDrops: 0, errors: 0 });
    expect(result.outputs.every((o) => o.ok)).toBe(true);
    await checkApply(dir, result.chosen!.point, []);
    const rules = readFileSync(join(dir, 'apply/prometheus-rules.yaml'), 'utf8');
    expect(rules).toContain('node_netstat_TcpExt_TCPReqQFullDrop');
    expect(rules).toContain('--collector.netstat.fields must include TcpExt_TCPReqQFullDrop');
  }, 180_000);

  it('limited.yaml: no setting suffices: exit 1, the largest queue run to confirm, and the answer names what limits', async () => {
    const { r, dir, result } = await tune(example('limited.yaml'));
    expect(r.exitCode, r.stderr).toBe(1);
    expect(result.chosen).toBeNull();
    expect(result.steps.every((s) => s.action !== 'left')).toBe(true);
    const ran = result.steps.filter((s) => s.action === 'ran');
    expect(ran.map((s) => s.settings['server.backlog'])).toEqual([1024]);
    expect(ran[0]!.met).toBe(false);
    expect(seen(readRecords(dir)[0]!).listenOverflows).toBeGreaterThan(0);
    expect(result.limitedBy).toMatch(
      /^the server accepts 500 connections\/s; 2000 new connections\/s for 2 s need an accept queue limit of [\d,]+ for no SYN to be dropped, and the candidates reach 1,024/,
    );
    expect(r.stderr).toContain(`lab tune: No candidate met the objective (listenOverflows ≤ 0): ${result.limitedBy}`);
    expect(existsSync(join(dir, 'apply'))).toBe(false);
  }, 120_000);
});
