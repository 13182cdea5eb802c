// `lab sweep` end to end: the backlog scenario's verdicts on this kernel (both runtimes),
// the report's numbers equal the point records', resume after SIGKILL, bad input.
import { expectAllPass } from '../helpers/verdicts.js';
import { downLabs } from '../helpers/lab-down.js';
import { baseline } from '../helpers/leftovers.js';
import { describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { PointRecord } from '../../lab/pipeline/record.js';

const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
const WORK = mkdtempSync(join(tmpdir(), 'tcplab-sweep-'));
const lab = (args: string[]) => execa(process.execPath, [CLI, ...args], { reject: false, cwd: WORK });
const labFile = (name: string, text: string) => {
  const f = join(WORK, name);
  writeFileSync(f, text);
  return f;
};
const records = (dir: string) =>
  readdirSync(join(dir, 'points'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, 'points', f), 'utf8')) as PointRecord);

describe.each(['netns'] as const)('lab sweep, backlog scenario (%s)', (rt) => {
  it('limit = min(backlog, somaxconn), peak = limit + 1, limit + 1 handshakes: PASS on every point; the report says the same', async () => {
    const f = labFile(
      `backlog-${rt}.yaml`,
      `runtime: ${rt}\nscenario: {name: backlog, options: {extraClients: 6, holdMs: 1200}}\nserver: {sysctls: {net.core.somaxconn: 16}}\nsweep:\n  matrix:\n    server.backlog: [8, 64, -1]\n`,
    );
    const r = await lab(['sweep', f]);
    expect(r.exitCode, r.stderr).toBe(0);
    const dir = join(WORK, r.stdout.trim());
    const recs = records(dir);
    expect(recs.map((p) => [p.settings['server.backlog'], p.hosts['server']!.series.summary.listener?.sendQ])).toEqual([
      [8, 8],
      [64, 16],
      [-1, 16],
    ]);
    for (const p of recs) {
      expect(p.runtime).toBe(rt);
      expect(p.hosts['server']!.sysctls.readBack['net.core.somaxconn']).toBe('16');
      expect(p.hosts['loadgen-1']!.sysctls.readBack['net.core.somaxconn']).toBe('4096');
      expect(p.scenario.verdicts.map((v) => `${v.about ?? 'kernel'} ${v.verdict}`)).toEqual([
        'server PASS',
        'kernel PASS',
        'kernel PASS',
        'kernel PASS',
        'kernel PASS',
      ]);
      // The dropped SYNs show in the server's counters.
      expect(p.hosts['server']!.counters.delta['TcpExtListenDrops']).toBeGreaterThan(0);
      for (const f of [...p.hosts['server']!.reports.before, ...p.hosts['server']!.reports.after]) expect(existsSync(join(dir, f))).toBe(true);
    }
    // report.md: one row per point and rule, with the records' numbers.
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    for (const p of recs) {
      for (const v of p.scenario.verdicts)
        expect(md).toContain(
          `| ${p.id} | server.backlog=${p.settings['server.backlog']} | ${v.rule} | ${v.predicted} | ${v.observed} | **${v.verdict}** |`,
        );
    }
    expect(md).toContain('Verdicts: 15 PASS, 0 FAIL, 0 INCONCLUSIVE.');
    const env = JSON.parse(readFileSync(join(dir, 'environment.json'), 'utf8'));
    expect(env.runtime).toBe(rt);
  }, 240_000);
});

describe('lab sweep --resume', () => {
  it('after a SIGKILL: no finished point lost, none repeated', async () => {
    const f = labFile(
      'resume.yaml',
      'runtime: netns\nscenario: {name: backlog, options: {extraClients: 2, holdMs: 1000}}\nsweep: {matrix: {server.backlog: [4, 8, 12]}}\noutput: out\n',
    );
    const child = spawn(process.execPath, [CLI, 'sweep', f], { cwd: WORK, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b) => (err += b));
    const deadline = Date.now() + 60_000;
    while (!/\[1\/3\] p001-r1: /.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await once(child, 'exit');
    const dir = join(WORK, /lab sweep: (\S+): 3 point/.exec(err)![1]!);
    const first = join(dir, 'points', 'p001-r1.json');
    const before = readFileSync(first, 'utf8');
    const mtime = statSync(first).mtimeMs;
    // What a SIGKILL in the middle of writing a record leaves: its temp file, half written.
    const half = join(dir, 'points', 'p003-r1.json.tmp-99999');
    writeFileSync(half, before.slice(0, 300));
    await downLabs(CLI, (l) => l.runId.startsWith(basename(dir)), { cwd: WORK }, false);
    const r = await lab(['sweep', '--resume', dir]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('removed 1 half-written file(s) an interrupted write left in points/');
    expect(existsSync(half)).toBe(false);
    expect(readdirSync(join(dir, 'points')).filter((x) => !x.endsWith('.json'))).toEqual([]);
    expect(r.stderr).toMatch(/3 point run\(s\) \(3 points × 1\), [12] on disk, [12] to run/);
    expect(r.stderr).not.toContain('p001-r1 server.backlog=4 …');
    expect(readFileSync(first, 'utf8')).toBe(before);
    expect(statSync(first).mtimeMs).toBe(mtime);
    expect(records(dir).map((p) => p.id)).toEqual(['p001-r1', 'p002-r1', 'p003-r1']);
    // Nothing left to run: a second resume runs nothing.
    const again = await lab(['sweep', '--resume', dir]);
    expect(again.stderr).toContain('3 on disk, 0 to run');
  }, 120_000);
  // strace stops the lab at the syscall and delivers SIGKILL there: at `write`, the record's temp
  // file exists and is empty; at `rename`, it is whole but was never put in place.
  it.each(['write', 'rename'] as const)(
    "SIGKILL at the point record's %s: nothing half-written counts as done; --resume runs it again",
    async (call) => {
      const f = labFile(
        `kill-${call}.yaml`,
        `runtime: netns\nscenario: {name: backlog, options: {extraClients: 1, holdMs: 300}}\nsweep: {matrix: {server.backlog: [2, 3]}}\noutput: kill-${call}\n`,
      );
      const child = spawn(process.execPath, [CLI, 'sweep', f], { cwd: WORK, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (b) => (err += b));
      const deadline = Date.now() + 30_000;
      while (!/lab sweep: (\S+): 2 point/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const rel = /lab sweep: (\S+): 2 point/.exec(err)![1]!;
      const dir = join(WORK, rel);
      // -P matches a path as the syscall names it: by fd (absolute) for write, as given (relative) for rename.
      const tmp = join(dir, 'points', `p001-r1.json.tmp-${child.pid}`);
      const strace = spawn(
        'strace',
        [
          '-qq',
          '-f',
          '-p',
          String(child.pid),
          '-P',
          tmp,
          '-P',
          join(rel, 'points', `p001-r1.json.tmp-${child.pid}`),
          '-e',
          `trace=${call}`,
          '-e',
          `inject=${call}:signal=KILL`,
        ],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let traced = '';
      strace.stderr.on('data', (b) => (traced += b));
      const [, signal] = (await once(child, 'exit')) as [number | null, string | null];
      await once(strace, 'exit');
      expect(signal, err + traced).toBe('SIGKILL');
      expect(traced).toContain(`${call}(`);
      expect(readdirSync(join(dir, 'points'))).toEqual([`p001-r1.json.tmp-${child.pid}`]);
      expect(statSync(tmp).size > 0).toBe(call === 'rename');
      await downLabs(CLI, (l) => l.runId.startsWith(basename(dir)), { cwd: WORK }, false);
      const r = await lab(['sweep', '--resume', dir]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stderr).toContain('removed 1 half-written file(s) an interrupted write left in points/');
      expect(r.stderr).toContain('2 point run(s) (2 points × 1), 0 on disk, 2 to run');
      expect(readdirSync(join(dir, 'points'))).toEqual(['p001-r1.json', 'p002-r1.json']);
      expect(records(dir).map((p) => p.id)).toEqual(['p001-r1', 'p002-r1']);
    },
    120_000,
  );
});

describe('damaged records and a full disk', () => {
  it('a point record cut short, or a damaged lab.json: one line naming the file for --resume and lab report', async () => {
    const f = labFile(
      'one.yaml',
      'runtime: netns\nscenario: {name: backlog, options: {extraClients: 1, holdMs: 300}}\nserver: {backlog: 2}\noutput: damaged\n',
    );
    const r = await lab(['sweep', f]);
    expect(r.exitCode, r.stderr).toBe(0);
    const dir = join(WORK, r.stdout.trim());
    const rec = join(dir, 'points', 'p001-r1.json');
    writeFileSync(rec, readFileSync(rec, 'utf8').slice(0, 500));
    for (const args of [
      ['sweep', '--resume', dir],
      ['report', dir],
    ]) {
      const x = await lab(args);
      expect(x.exitCode).toBe(2);
      expect(x.stderr.trim()).toMatch(
        new RegExp(`^lab ${args[0]}: ${rec.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON \\(.+\\); the file is damaged$`),
      );
    }
    writeFileSync(rec, JSON.stringify({ schema: 'tcplab.point/1' }));
    expect((await lab(['report', dir])).stderr.trim()).toBe(`lab report: ${rec}: not a tcplab.point/2 point record (schema "tcplab.point/1")`);
    writeFileSync(join(dir, 'lab.json'), '{"runtime": ');
    const y = await lab(['sweep', '--resume', dir]);
    expect(y.exitCode).toBe(2);
    expect(y.stderr.trim()).toMatch(/^lab sweep: .*\/lab\.json: not valid JSON \(.+\); the file is damaged$/);
  }, 60_000);

  it('the results folder fills up mid-sweep: one line, exit 2, every finished point whole, no temp file left', async () => {
    const mnt = mkdtempSync(join(tmpdir(), 'tcplab-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1100k', 'tcplab-full', mnt]);
    try {
      const f = labFile(
        'full.yaml',
        `runtime: netns\nscenario: {name: backlog, options: {extraClients: 1, holdMs: 300}}\nsweep: {matrix: {server.backlog: [2, 3, 4, 5, 6]}}\noutput: ${mnt}\n`,
      );
      const r = await lab(['sweep', f]);
      expect(r.exitCode, r.stderr).toBe(2);
      const last = r.stderr.trim().split('\n').pop()!;
      expect(last).toMatch(/^lab sweep: .*ENOSPC.*finished point run\(s\).* on disk, whole: lab sweep --resume /);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      const dir = join(mnt, readdirSync(mnt)[0]!);
      const files = readdirSync(join(dir, 'points'));
      expect(files.filter((x) => !x.endsWith('.json'))).toEqual([]);
      expect(files.length).toBeGreaterThan(0);
      expect(files.length).toBeLessThan(5);
      for (const x of files) expect(JSON.parse(readFileSync(join(dir, 'points', x), 'utf8')).schema).toBe('tcplab.point/2');
      expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(dir.split('/').pop()!);
    } finally {
      execFileSync('umount', [mnt]);
    }
  }, 120_000);

  it('the server process killed mid-point: the point fails with the reason (exit 1), nothing is left, --resume finishes', async () => {
    const f = labFile(
      'killed.yaml',
      'runtime: netns\nscenario: {name: backlog, options: {extraClients: 1, holdMs: 4000}}\nsweep: {matrix: {server.backlog: [2, 3]}}\noutput: killed\n',
    );
    const child = spawn(process.execPath, [CLI, 'sweep', f], { cwd: WORK, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b) => (err += b));
    const deadline = Date.now() + 30_000;
    // This sweep's own server namespace, by its run id (other suites' sweeps run beside this one).
    let ns: string | undefined;
    while (!ns && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      const runId = /^lab sweep: \S*\/(\d{8}-\d{6}-[0-9a-f]{4}): /m.exec(err)?.[1];
      if (!runId) continue;
      ns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
        .split('\n')
        .map((l) => l.split(' ')[0]!)
        .find((n) => n === `tcplab-lab.${runId}-p001-r1.server`);
    }
    expect(ns, err).toBeDefined();
    // The server is up once the burst runs: then kill it (SIGKILL, as a crash would).
    let pid: number | undefined;
    while (!pid && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      const pids = execFileSync('ip', ['netns', 'pids', ns!], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
      pid = pids.find((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('dist/server/main.js');
        } catch {
          return false;
        }
      });
    }
    await new Promise((r) => setTimeout(r, 1000));
    process.kill(pid!, 'SIGKILL');
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(1);
    const last = err.trim().split('\n').pop()!;
    expect(last).toMatch(
      /^lab sweep: point p001-r1 failed: server: (GET \/stats|POST \/pause|POST \/resume) failed: .*ECONNREFUSED.* \(details: .*error\.txt\); the 0 finished point run\(s\) are on disk: lab sweep --resume (\S+)$/,
    );
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(ns!.split('.')[1]!);
    const dir = join(WORK, /--resume (\S+)$/.exec(last)![1]!);
    const r = await lab(['sweep', '--resume', dir]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(records(dir).map((p) => p.id)).toEqual(['p001-r1', 'p002-r1']);
  }, 90_000);

  it('lab sweep --output puts the run folder where it says; with --resume it is refused', async () => {
    const f = labFile('out.yaml', 'runtime: netns\nscenario: {name: backlog, options: {extraClients: 1, holdMs: 300}}\nserver: {backlog: 2}\n');
    const r = await lab(['sweep', f, '--output', 'elsewhere']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^elsewhere\/\d{8}-\d{6}-[0-9a-f]{4}$/);
    const x = await lab(['sweep', '--resume', join(WORK, r.stdout.trim()), '--output', 'x']);
    expect([x.exitCode, x.stderr.trim()]).toEqual([2, 'lab sweep: --output cannot move a sweep being resumed (it goes on in its own folder)']);
  }, 60_000);
});

describe('lab run: the same sweep from flags', () => {
  it('--set axes become the matrix; the records say so', async () => {
    const r = await lab([
      'run',
      '--scenario',
      'backlog',
      '--runtime',
      'netns',
      '--set',
      'server.backlog=4,-1',
      '--set',
      'server.sysctls.net.core.somaxconn=8',
      '--output',
      'flags',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const dir = join(WORK, r.stdout.trim());
    expect(dir).toContain(join(WORK, 'flags'));
    const recs = records(dir);
    expect(recs.map((p) => p.settings)).toEqual([
      { 'server.backlog': 4, 'server.sysctls.net.core.somaxconn': 8 },
      { 'server.backlog': -1, 'server.sysctls.net.core.somaxconn': 8 },
    ]);
    expect(recs.map((p) => p.hosts['server']!.series.summary.listener?.sendQ)).toEqual([4, 8]);
    expectAllPass(recs);
    expect(existsSync(join(dir, 'lab.source.yaml'))).toBe(false);
  }, 120_000);
});

describe('the Docker engine stopped mid-sweep', () => {
  it('one line naming the engine (exit 2); once it is back, lab down cleans up and --resume finishes', async () => {
    const f = labFile(
      'engine.yaml',
      'runtime: docker\nscenario: {name: backlog, options: {extraClients: 1, holdMs: 6000}}\nsweep: {matrix: {server.backlog: [2]}}\noutput: engine\n',
    );
    const engine = await baseline();
    const child = spawn(process.execPath, [CLI, 'sweep', f], { cwd: WORK, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b) => (err += b));
    const deadline = Date.now() + 120_000;
    // Stop the engine while the first point's burst holds its connections.
    while (!/lab sweep: hosts: /.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 2500));
    // The machine's engine only (its pidfile): the test swarm's second engine stays up.
    const enginePid = Number(readFileSync('/var/run/docker.pid', 'utf8').trim());
    process.kill(enginePid, 'SIGTERM');
    const engineRuns = () => {
      try {
        process.kill(enginePid, 0);
        return true;
      } catch {
        return false; // ESRCH: gone
      }
    };
    let dir = '';
    try {
      const [code] = (await once(child, 'exit')) as [number];
      const last = err.trim().split('\n').pop()!;
      expect(code, err).toBe(2);
      expect(last).toMatch(
        /^lab sweep: the Docker engine stopped answering during point p001-r1 \(.+\); the 0 finished point run\(s\) are on disk: start the engine again \(sudo bash scripts\/install-docker\.sh\), then `lab down` and `lab sweep --resume (\S+)`$/,
      );
      expect(err).not.toMatch(/\n\s+at /);
      dir = join(WORK, /--resume (\S+)`$/.exec(last)![1]!);
    } finally {
      // The engine back, whatever happened above (the suites after this one need it).
      while (engineRuns() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      execFileSync('bash', [fileURLToPath(new URL('../../scripts/install-docker.sh', import.meta.url))], { stdio: 'ignore' });
    }
    await downLabs(CLI, (l) => l.runId.startsWith(basename(dir)), { cwd: WORK }, false);
    expect(await engine.made()).toEqual([]);
    const r = await lab(['sweep', '--resume', dir]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(records(dir).map((p) => [p.id, p.runtime])).toEqual([['p001-r1', 'docker']]);
  }, 240_000);
});
