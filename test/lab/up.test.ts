// `lab up` end to end on the netns runtime, as a user runs it (node dist/lab/bin.js):
// its record against what ss/nstat show independently, sysctls only where asked, the
// machine's own sysctls untouched, Send-Q = min(backlog, somaxconn), every load generator
// into one result shape, interrupts, and bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parseListeners } from '../../lab/observe/ss.js';
import { parseNstat } from '../../lab/observe/nstat.js';
import { alive, PREFIX } from '../../lab/runtime/netns.js';
import { TUNABLES } from '../../sysctl/registry.js';
import type { PointRecord } from '../../lab/pipeline/record.js';
import { itUring } from '../helpers/uring.js';

const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
const RESULTS = mkdtempSync(join(tmpdir(), 'tcplab-up-'));
const lab = (args: string[], opts: { user?: boolean } = {}) =>
  opts.user
    ? execa('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, CLI, ...args], { reject: false, cwd: RESULTS })
    : execa(process.execPath, [CLI, ...args], { reject: false, cwd: RESULTS });
const namespaces = () =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`${PREFIX}.`));
type Rt = 'netns' | 'docker';
/** A command inside one host of a lab, without going through the lab's code. */
const inHost = (rt: Rt, id: string, host: string, argv: string[]) =>
  rt === 'netns'
    ? execFileSync('ip', ['netns', 'exec', `${PREFIX}.${id}.${host}`, ...argv], { encoding: 'utf8' })
    : execFileSync('docker', ['exec', `tcplab-${id}-${host}`, ...argv], { encoding: 'utf8' });
/** What is left of a lab: namespaces, or labelled containers and networks. */
const leftovers = (rt: Rt, id: string) =>
  rt === 'netns'
    ? namespaces().filter((n) => n.includes(id))
    : [
        ...execFileSync('docker', ['ps', '-aq', '--filter', `label=tcplab.run=${id}`], { encoding: 'utf8' }).split('\n'),
        ...execFileSync('docker', ['network', 'ls', '-q', '--filter', `label=tcplab.run=${id}`], { encoding: 'utf8' }).split('\n'),
      ].filter(Boolean);
/** The processes of a lab's server host, as the machine sees them. */
const serverPids = (rt: Rt, id: string) =>
  rt === 'netns'
    ? execFileSync('ip', ['netns', 'pids', `${PREFIX}.${id}.server`], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map(Number)
    : [Number(execFileSync('docker', ['inspect', '-f', '{{.State.Pid}}', `tcplab-${id}-server`], { encoding: 'utf8' }).trim())];
const runIdOf = (stderr: string) => /lab (\d{8}-\d{6}-[0-9a-f]{4}-p001-r1)/.exec(stderr)?.[1];
/** A point's run folder (the sweep's, which `lab up` makes for its one point). */
const folderOf = (rec: PointRecord) => join(RESULTS, rec.config.output, rec.runId.replace(/-p\d+-r\d+$/, ''));

/** Every registry sysctl of the machine's own namespace, as bytes. */
const rootSysctls = () =>
  Object.fromEntries(
    TUNABLES.map((t) => t.name).map((n) => [
      n,
      existsSync(`/proc/sys/${n.replace(/\./g, '/')}`) ? readFileSync(`/proc/sys/${n.replace(/\./g, '/')}`, 'utf8') : null,
    ]),
  );

const labelled = () => execFileSync('docker', ['ps', '-aq', '--filter', 'label=tcplab.run'], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
let rootBefore: Record<string, string | null>;
let nsBefore: string[];
let containersBefore: string[];
beforeAll(() => {
  rootBefore = rootSysctls();
  nsBefore = namespaces();
  containersBefore = labelled();
});
afterAll(async () => {
  // Nothing this file made is left (a lab of someone else's may come and go meanwhile).
  expect(namespaces().filter((n) => !nsBefore.includes(n))).toEqual([]);
  expect(labelled().filter((c) => !containersBefore.includes(c))).toEqual([]);
  // The machine's own sysctls are byte-identical after every run of this file.
  expect(rootSysctls()).toEqual(rootBefore);
});

describe.each(['netns', 'docker'] as const)('lab up (%s)', (rt) => {
  // 3 s of the default run (its 10 s are the default's: test/lab/cli.test.ts).
  const sec = 3;
  it(`no load flags but --duration 3: the default autocannon run; the JSON matches what ss and nstat show independently`, async () => {
    const r = await lab([
      'up',
      '--runtime',
      rt,
      '--duration',
      String(sec),
      '--json',
      '--keep',
      '--server-sysctl',
      'net.core.somaxconn=128',
      '--client-sysctl',
      'net.ipv4.tcp_tw_reuse=1',
    ]);
    expect(r.stderr).toContain(`lab up: autocannon from loadgen-1, 10 connections, ${sec} s`);
    expect(r.exitCode).toBe(0);
    // --json: one JSON document and nothing else on stdout.
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const rec = JSON.parse(r.stdout) as PointRecord;
    const id = rec.runId;
    // autocannon's latencies at µs resolution (its own histogram would say p50 0 ms).
    expect(rec.scenario.load!.result.latencyResolutionUs).toBe(1);
    expect(rec.scenario.load!.result.latencyMs!.p50).toBeGreaterThan(0);
    try {
      expect(rec.schema).toBe('tcplab.point/2');
      expect(rec.runtime).toBe(rt);
      expect(rec.kept).toBe(true);
      expect(rec.scenario.load!.result.requests).toBeGreaterThan(1000);
      expect(rec.scenario.load!.result.durationSec).toBeGreaterThanOrEqual(sec - 0.5);
      expect(rec.scenario.load!.cpu!.cores).toBeGreaterThan(0.1);
      expect(rec.scenario.load!.result.errors.non2xx).toBe(0);
      // The server answered at least what the loadgen counted (it may finish a few it never read).
      expect(rec.server.requests).toBeGreaterThanOrEqual(rec.scenario.load!.result.requests);
      expect(rec.server.requests - rec.scenario.load!.result.requests).toBeLessThanOrEqual(rec.scenario.load!.options.connections);
      expect(rec.server.cpuSec).toBeGreaterThan(0);

      // Independently, in the kept namespaces.
      const srv = (argv: string[]) => inHost(rt, id, 'server', argv);
      const cli = (argv: string[]) => inHost(rt, id, 'loadgen-1', argv);
      const listener = parseListeners(srv(['ss', '-ltn'])).find((l) => l.port === 8080)!;
      expect(listener.sendQ).toBe(128);
      expect(rec.server.listener).toMatchObject({ port: 8080, sendQ: 128 });
      const nstat = parseNstat(srv(['nstat', '-asz']));
      for (const k of ['TcpExtListenOverflows', 'TcpExtListenDrops', 'TcpExtSyncookiesSent'])
        expect([k, rec.hosts['server']!.counters.after[k]]).toEqual([k, nstat[k]]);
      // One more passive open since: the /stats call that closes the counted window.
      expect(nstat['TcpPassiveOpens']).toBe(rec.hosts['server']!.counters.after['TcpPassiveOpens']! + 1);
      const nstatClient = parseNstat(cli(['nstat', '-asz']));
      expect(rec.hosts['loadgen-1']!.counters.after['TcpActiveOpens']).toBe(nstatClient['TcpActiveOpens']);
      // autocannon's 10 connections are the loadgen's active opens of the run.
      expect(rec.hosts['loadgen-1']!.counters.delta['TcpActiveOpens']).toBe(10);
      expect(rec.hosts['server']!.counters.delta['TcpPassiveOpens']).toBe(10);

      // Sysctls: requested ones read back on their host, absent elsewhere.
      expect(srv(['sysctl', '-n', 'net.core.somaxconn']).trim()).toBe('128');
      expect(cli(['sysctl', '-n', 'net.core.somaxconn']).trim()).toBe('4096');
      expect(cli(['sysctl', '-n', 'net.ipv4.tcp_tw_reuse']).trim()).toBe('1');
      expect(srv(['sysctl', '-n', 'net.ipv4.tcp_tw_reuse']).trim()).toBe('2');
      expect(rec.hosts['server']!.sysctls.requested).toEqual({ 'net.core.somaxconn': '128' });
      expect(rec.hosts['server']!.sysctls.readBack['net.core.somaxconn']).toBe('128');
      expect(rec.hosts['loadgen-1']!.sysctls.requested).toEqual({ 'net.ipv4.tcp_tw_reuse': '1' });
      expect(rec.hosts['loadgen-1']!.sysctls.readBack['net.ipv4.tcp_tw_reuse']).toBe('1');
      expect(rec.hosts['server']!.sysctls.differsFromKernelDefault).toEqual([{ name: 'net.core.somaxconn', before: '4096', after: '128' }]);
      expect(rec.hosts['loadgen-1']!.sysctls.differsFromKernelDefault).toEqual([{ name: 'net.ipv4.tcp_tw_reuse', before: '2', after: '1' }]);

      // The time series: ~20 samples a second on each host, ESTAB seen during the load.
      for (const h of ['server', 'loadgen-1']) {
        const s = rec.hosts[h]!.series;
        expect(s.summary.samples).toBeGreaterThan(sec * 10); // at least 10 a second (one every 50 ms asked)
        expect(s.summary.intervalMs).toBeLessThan(80);
        expect(s.summary.peakStates['ESTAB']).toBeGreaterThanOrEqual(10);
      }

      // The run folder: the record and the raw state reports, as the tools printed them.
      const dir = folderOf(rec);
      expect(JSON.parse(readFileSync(join(dir, 'points', 'p001-r1.json'), 'utf8'))).toEqual(rec);
      for (const h of ['server', 'loadgen-1']) {
        for (const phase of ['before', 'after']) {
          for (const f of ['ss-tanoi', 'ss-ltn', 'netstat-s', 'netstat-tan', 'nstat-az'])
            expect(existsSync(join(dir, 'raw', 'p001-r1', `${h}-${phase}-${f}.txt`))).toBe(true);
        }
      }
      expect(readFileSync(join(dir, 'raw', 'p001-r1', 'server-after-netstat-s.txt'), 'utf8')).toMatch(/passive connection openings/);
      expect(readFileSync(join(dir, 'raw', 'p001-r1', 'server-after-ss-ltn.txt'), 'utf8')).toMatch(/LISTEN\s+0\s+128\s+0\.0\.0\.0:8080/);

      // lab status lists the kept lab and its processes; lab down removes it.
      const st = JSON.parse((await lab(['status', '--json'])).stdout) as Array<{ runId: string; hosts: Array<{ name: string; pids: number[] }> }>;
      const mine = st.find((l) => l.runId === id)!;
      expect(mine.hosts.map((h) => h.name).sort()).toEqual(['loadgen-1', 'server']);
      expect(mine.hosts.find((h) => h.name === 'server')!.pids.length).toBeGreaterThan(0);
    } finally {
      const d = await lab(['down', id]);
      expect(d.stderr).toContain(rt === 'netns' ? `removed 3 namespace(s) of run ${id}` : `removed 3 container(s) and network(s) of run ${id}`);
    }
    expect(leftovers(rt, id)).toEqual([]);
  }, 120_000);

  // The rest of lab up is the same code on every runtime: proven once, on netns; Docker above
  // proves its wiring (hosts, the JSON against ss and nstat inside them) and below its clean-up.
  if (rt === 'netns') {
    // --backlog by its effect (below somaxconn, so the limit is the backlog given); the cap at
    // somaxconn is the kernel's rule, proven with the backlog scenario's matrix.
    it.each([[64, 200, 64]])('backlog %i, somaxconn %i: the listener Send-Q is %i', async (backlog, somaxconn, limit) => {
      const r = await lab([
        'up',
        '--runtime',
        rt,
        '--json',
        '--duration',
        '1',
        '--backlog',
        String(backlog),
        '--server-sysctl',
        `net.core.somaxconn=${somaxconn}`,
      ]);
      expect(r.exitCode, r.stderr).toBe(0);
      const rec = JSON.parse(r.stdout) as PointRecord;
      expect(rec.server.listener?.sendQ).toBe(limit);
      expect(readFileSync(join(folderOf(rec), 'raw', 'p001-r1', 'server-after-ss-ltn.txt'), 'utf8')).toMatch(
        new RegExp(`LISTEN\\s+0\\s+${limit}\\s`),
      );
    });

    it.each([
      ['ab', ['--no-keep-alive'], 'new connection per request'],
      ['wrk', ['--loadgen-threads', '1', '--connections', '16'], 'keep-alive'],
    ])('%s into the same result shape, counted like the server counted', async (tool, extra, mode) => {
      const r = await lab(['up', '--runtime', rt, '--loadgen', tool, '--duration', '2', ...extra]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toContain(`load      ${tool} from loadgen-1:`);
      expect(r.stdout).toContain(mode);
      const folder = r.stdout.split('\n')[0]!.split(' → ')[1]!.replace(/\/$/, '');
      const rec = JSON.parse(readFileSync(join(RESULTS, folder, 'points', 'p001-r1.json'), 'utf8')) as PointRecord;
      expect(Object.keys(rec.scenario.load!.result).sort()).toEqual([
        'bytes',
        'durationSec',
        'errors',
        'latencyCorrected',
        'latencyMs',
        'latencyResolutionUs',
        'requests',
        'rps',
        'tool',
      ]);
      // wrk measures in µs, ab in whole milliseconds; the summary says which.
      expect(rec.scenario.load!.result.latencyResolutionUs).toBe(tool === 'ab' ? 1000 : 1);
      expect(r.stdout).toMatch(new RegExp(`latency   p50 .* \\(${tool}, ${tool === 'ab' ? 'whole milliseconds' : 'µs resolution'}, `));
      expect(rec.scenario.load!.result.requests).toBeGreaterThan(500);
      expect(rec.server.requests).toBeGreaterThanOrEqual(rec.scenario.load!.result.requests);
      expect(rec.server.requests - rec.scenario.load!.result.requests).toBeLessThanOrEqual(16);
      if (tool === 'ab') {
        // HTTP/1.0 without keep-alive: the server closes first, so TIME_WAIT is on the server.
        expect(rec.hosts['server']!.series.summary.peakStates['TIME-WAIT']).toBeGreaterThan(100);
        expect(rec.hosts['loadgen-1']!.states.after['TIME-WAIT'] ?? 0).toBeLessThan(20);
      }
    });

    it('lab up and a one-point lab sweep of the same settings: the same record, field for field, and the same derived numbers', async () => {
      const up = await lab([
        'up',
        '--runtime',
        rt,
        '--json',
        '--loadgen',
        'ab',
        '--no-keep-alive',
        '--requests',
        '2000',
        '--backlog',
        '100',
        '--server-sysctl',
        'net.core.somaxconn=256',
        '--client-sysctl',
        'net.ipv4.tcp_tw_reuse=0',
      ]);
      expect(up.exitCode, up.stderr).toBe(0);
      const a = JSON.parse(up.stdout) as PointRecord;
      const f = join(RESULTS, `same-${rt}.yaml`);
      const yaml = [
        `runtime: ${rt}`,
        'scenario: {name: throughput}',
        'server: {backlog: 100, sysctls: {net.core.somaxconn: 256}}',
        'loadgens: [{tool: ab, options: {requests: 2000, keepAlive: false}, sysctls: {net.ipv4.tcp_tw_reuse: 0}}]',
      ];
      writeFileSync(f, yaml.join('\n') + '\n');
      const sw = await lab(['sweep', f]);
      expect(sw.exitCode, sw.stderr).toBe(0);
      const b = JSON.parse(readFileSync(join(RESULTS, sw.stdout.trim(), 'points', 'p001-r1.json'), 'utf8')) as PointRecord;
      // The same fields, at every level that does not depend on what the kernel happened to count.
      const keys = (o: object) => Object.keys(o).sort();
      expect(keys(a)).toEqual(keys(b));
      for (const k of ['server', 'scenario', 'environment'] as const) expect([k, keys(a[k])]).toEqual([k, keys(b[k])]);
      expect(keys(a.scenario.observed as object)).toEqual(keys(b.scenario.observed as object));
      expect(keys(a.scenario.load!)).toEqual(keys(b.scenario.load!));
      expect(keys(a.hosts)).toEqual(['loadgen-1', 'server']);
      for (const h of ['server', 'loadgen-1']) {
        const [ha, hb] = [a.hosts[h]!, b.hosts[h]!];
        expect(keys(ha)).toEqual(keys(hb));
        expect(keys(ha.sysctls)).toEqual(keys(hb.sysctls));
        expect(keys(ha.series.summary)).toEqual(keys(hb.series.summary));
        // Same settings, read back alike.
        for (const k of ['name', 'role', 'address', 'capabilities'] as const) expect([h, k, ha[k]]).toEqual([h, k, hb[k]]);
        expect(ha.sysctls.requested).toEqual(hb.sysctls.requested);
        expect(ha.sysctls.readBack).toEqual(hb.sysctls.readBack);
        expect(ha.sysctls.differsFromKernelDefault).toEqual(hb.sysctls.differsFromKernelDefault);
      }
      expect(a.config).toEqual(b.config);
      for (const k of ['schema', 'id', 'point', 'repetition', 'settings', 'runtime', 'kept'] as const) expect([k, a[k]]).toEqual([k, b[k]]);
      expect(a.server.options).toEqual(b.server.options);
      expect([a.server.port, a.server.address]).toEqual([b.server.port, b.server.address]);
      const la = a.scenario.load!;
      const lb = b.scenario.load!;
      expect([la.tool, la.options, la.argv]).toEqual([lb.tool, lb.options, lb.argv]);
      // The same rules (whether the load generator was CPU-bound is a matter of timing).
      expect(a.scenario.verdicts.map((v) => [v.rule, v.predicted])).toEqual(b.scenario.verdicts.map((v) => [v.rule, v.predicted]));
      // The derived numbers that do not depend on timing: ab made exactly 2,000 requests, each on
      // its own connection; the server answered each; the accept queue's limit is min(100, 256).
      for (const r of [a, b]) {
        expect(r.scenario.load!.result.requests).toBe(2000);
        expect(r.server.requests).toBe(2000);
        expect(r.server.listener?.sendQ).toBe(100);
        expect(r.hosts['server']!.series.summary.listener?.sendQ).toBe(100);
        // Every connection the loadgen opened in the counted window, the server accepted; no
        // control-API connection is in that window.
        const opens = r.hosts['loadgen-1']!.counters.delta['TcpActiveOpens']!;
        expect(opens).toBeGreaterThanOrEqual(2000);
        expect(r.hosts['server']!.counters.delta['TcpPassiveOpens']).toBe(opens);
        expect(r.hosts['server']!.counters.delta['TcpActiveOpens'] ?? 0).toBe(0);
      }
    }, 120_000);
  }

  // Ctrl-C runs the lab's own clean-up, the runtime's destroy() that every point ends with:
  // once, on netns. A SIGKILL leaves the clean-up to `lab down`, which finds a lab by what
  // each runtime left (namespaces, labelled containers): on each.
  it.each(rt === 'netns' ? (['SIGINT', 'SIGKILL'] as const) : (['SIGKILL'] as const))(
    '%s mid-run, then lab down: no namespace and no process left',
    async (sig) => {
      const child = spawn(process.execPath, [CLI, 'up', '--runtime', rt, '--duration', '30'], { cwd: RESULTS, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (b) => (err += b));
      const deadline = Date.now() + 20_000;
      while (!/autocannon from loadgen-1/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 500));
      const id = runIdOf(err)!;
      const pids = serverPids(rt, id);
      expect(pids.length).toBeGreaterThan(0);
      const t0 = Date.now();
      child.kill(sig);
      const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
      if (sig === 'SIGINT') {
        expect(code).toBe(130);
        expect(Date.now() - t0).toBeLessThan(8000);
        expect(err).toContain('lab up: interrupted; nothing left running');
      } else {
        expect(signal).toBe('SIGKILL');
        expect(leftovers(rt, id).length).toBeGreaterThan(0); // left behind, as a SIGKILL must
        // Its own lab only: a bare `lab down` would also take any other lab on the machine.
        const d = await lab(['down', id]);
        expect(d.exitCode).toBe(0);
      }
      expect(leftovers(rt, id)).toEqual([]);
      expect(pids.filter(alive)).toEqual([]);
    },
    60_000,
  );
});

// Each `lab up` flag that picks what runs, proven by what ran (not by being parsed): one
// short point each on netns (the runtimes' own wiring is proven above and in test/runtime/).
describe('lab up: each flag by its effect (netns)', () => {
  const up = async (args: string[]): Promise<PointRecord> => {
    const r = await lab(['up', '--runtime', 'netns', '--json', '--duration', '2', ...args]);
    expect(r.exitCode, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as PointRecord;
  };

  it('--kind nginx --threads 2: nginx served the load, its master and 2 workers holding the listener', async () => {
    const rec = await up(['--kind', 'nginx', '--threads', '2', '--connections', '4']);
    expect(rec.server.kind).toBe('nginx');
    expect(rec.server.processes!.pids).toHaveLength(3);
    expect(rec.scenario.load!.result.requests).toBeGreaterThan(100);
    expect(rec.scenario.load!.result.errors.non2xx ?? 0).toBe(0);
  });

  it('--loadgens 2: two loadgen hosts each ran the load; the result is their merge', async () => {
    const rec = await up(['--loadgens', '2', '--connections', '2', '--rate', '500']);
    expect(Object.keys(rec.hosts).sort()).toEqual(['loadgen-1', 'loadgen-2', 'server']);
    const inst = rec.scenario.load!.instances!;
    expect(inst.map((i) => i.host)).toEqual(['loadgen-1', 'loadgen-2']);
    for (const i of inst) expect(i.result.requests).toBeGreaterThan(100);
    expect(rec.scenario.load!.result.requests).toBe(inst[0]!.result.requests + inst[1]!.result.requests);
    // The server counted both hosts' requests (± those in flight when the load stopped).
    expect(Math.abs(rec.server.requests! - rec.scenario.load!.result.requests)).toBeLessThanOrEqual(4);
  });

  it('--model prethread --threads 2 --share reuseport: two waiters, each with a listener of its own', async () => {
    // 16 connections: the kernel's hash puts all of them on one listener 2 times in 65,536.
    const rec = await up(['--model', 'prethread', '--threads', '2', '--share', 'reuseport', '--connections', '16']);
    const ltn = readFileSync(join(folderOf(rec), 'raw', 'p001-r1', 'server-after-ss-ltn.txt'), 'utf8');
    expect(parseListeners(ltn).filter((l) => l.port === 8080)).toHaveLength(2);
    expect(rec.server.stats!.perThread.map((t) => t.accepted > 0)).toEqual([true, true]);
  });

  it('--work-us and --pipelining: each answer costs the work; 4 pipelined requests wait for the work of those before them', async () => {
    const one = await up(['--work-us', '5000', '--connections', '1']);
    const four = await up(['--work-us', '5000', '--connections', '1', '--pipelining', '4']);
    const p50 = (r: PointRecord) => r.scenario.load!.result.latencyMs!.p50;
    // 5 ms of CPU per request on the server's one loop: no answer comes sooner.
    expect(p50(one)).toBeGreaterThanOrEqual(5);
    // Four in flight on one connection are answered one after another: about 4 × 5 ms each.
    expect(p50(four)).toBeGreaterThanOrEqual(15);
    expect(four.scenario.load!.options.pipelining).toBe(4);
  });

  itUring(true)('--io io_uring: the reactor ran its loops on io_uring', async () => {
    const rec = await up(['--io', 'io_uring', '--connections', '2']);
    expect(rec.server.stats!.io).toBe('io_uring');
    expect(rec.server.requests).toBeGreaterThan(100);
  });
});

describe('lab up: environment errors are one line on stderr, exit 2', () => {
  it('no engine at DOCKER_HOST: says so, with the two ways out', async () => {
    const r = await execa(process.execPath, [CLI, 'up', '--runtime', 'docker'], {
      reject: false,
      cwd: RESULTS,
      env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' },
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toMatch(
      /^lab up: no Docker engine answers at unix:\/\/\/nonexistent\/docker.sock \(.*\): run `sudo bash scripts\/install-docker.sh` or use --runtime netns \(as root\) or --runtime rootless$/,
    );
  });

  it('lab images with a base image that is not there: one line naming the script', async () => {
    const r = await lab(['images', '--base', 'tcplab-no-such-base:1']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim().split('\n').pop()).toBe(
      'lab images: the base image tcplab-no-such-base:1 is missing and no registry is reachable here: run `bash scripts/build-base-image.sh tcplab-no-such-base:1`',
    );
  });

  it('the `lab` bin is an executable program (npx runs it directly)', async () => {
    const r = await execa(CLI, ['--help'], { reject: false });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('Usage: lab');
  });

  it('without root: says it needs root or CAP_NET_ADMIN', async () => {
    const r = await lab(['up', '--runtime', 'netns'], { user: true });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toBe('lab up: the netns runtime needs root or CAP_NET_ADMIN (it creates network namespaces); run as root');
  });
});
