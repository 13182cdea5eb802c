// `lab up` end to end on the netns runtime, as a user runs it (node dist/lab/cli.js):
// its record against what ss/nstat show independently, sysctls only where asked, the
// machine's own sysctls untouched, Send-Q = min(backlog, somaxconn), every load generator
// into one result shape, interrupts, and bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parseListeners } from '../../lab/observe/ss.js';
import { parseNstat } from '../../lab/observe/nstat.js';
import { alive, PREFIX } from '../../lab/runtime/netns.js';
import { TUNABLES } from '../../sysctl/registry.js';
import type { RunRecord } from '../../lab/up.js';

const CLI = fileURLToPath(new URL('../../dist/lab/cli.js', import.meta.url));
const RESULTS = mkdtempSync(join(tmpdir(), 'tcplab-up-'));
const lab = (args: string[], opts: { user?: boolean } = {}) =>
  opts.user
    ? execa('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, CLI, ...args], { reject: false, cwd: RESULTS })
    : execa(process.execPath, [CLI, ...args], { reject: false, cwd: RESULTS });
const namespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`${PREFIX}.`));
const inNs = (ns: string, argv: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...argv], { encoding: 'utf8' });
const runIdOf = (stderr: string) => /run (\d{8}-\d{6}-[0-9a-f]{4})/.exec(stderr)?.[1];

/** Every registry sysctl of the machine's own namespace, as bytes. */
const rootSysctls = () =>
  Object.fromEntries(TUNABLES.map((t) => t.name).map((n) => [n, existsSync(`/proc/sys/${n.replace(/\./g, '/')}`) ? readFileSync(`/proc/sys/${n.replace(/\./g, '/')}`, 'utf8') : null]));

let rootBefore: Record<string, string | null>;
let nsBefore: string[];
beforeAll(() => {
  rootBefore = rootSysctls();
  nsBefore = namespaces();
});
afterAll(async () => {
  expect(namespaces()).toEqual(nsBefore);
  // The machine's own sysctls are byte-identical after every run of this file.
  expect(rootSysctls()).toEqual(rootBefore);
});

describe('lab up (netns)', () => {
  it('no load flags: the default 10 s autocannon run; the JSON matches what ss and nstat show independently', async () => {
    const r = await lab(['up', '--runtime', 'netns', '--json', '--keep', '--server-sysctl', 'net.core.somaxconn=128', '--client-sysctl', 'net.ipv4.tcp_tw_reuse=1']);
    expect(r.stderr).toContain('lab up: autocannon from loadgen-1, 10 connections, 10 s');
    expect(r.exitCode).toBe(0);
    // --json: one JSON document and nothing else on stdout.
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const rec = JSON.parse(r.stdout) as RunRecord;
    const id = rec.runId;
    try {
      expect(rec.schema).toBe('tcplab.run/1');
      expect(rec.runtime).toBe('netns');
      expect(rec.kept).toBe(true);
      expect(rec.load.result.requests).toBeGreaterThan(1000);
      expect(rec.load.result.durationSec).toBeGreaterThanOrEqual(9.5);
      expect(rec.load.cpu!.cores).toBeGreaterThan(0.1);
      expect(rec.load.result.errors.non2xx).toBe(0);
      // The server answered at least what the loadgen counted (it may finish a few it never read).
      expect(rec.server.requests).toBeGreaterThanOrEqual(rec.load.result.requests);
      expect(rec.server.requests - rec.load.result.requests).toBeLessThanOrEqual(rec.load.options.connections);
      expect(rec.server.cpuSec).toBeGreaterThan(0);

      // Independently, in the kept namespaces.
      const srvNs = `${PREFIX}.${id}.server`;
      const cliNs = `${PREFIX}.${id}.loadgen-1`;
      const listener = parseListeners(inNs(srvNs, ['ss', '-ltn'])).find((l) => l.port === 8080)!;
      expect(listener.sendQ).toBe(128);
      expect(rec.server.listener).toMatchObject({ port: 8080, sendQ: 128 });
      const nstat = parseNstat(inNs(srvNs, ['nstat', '-asz']));
      for (const k of ['TcpPassiveOpens', 'TcpExtListenOverflows', 'TcpExtListenDrops', 'TcpExtSyncookiesSent']) expect([k, rec.hosts['server']!.counters.after[k]]).toEqual([k, nstat[k]]);
      const nstatClient = parseNstat(inNs(cliNs, ['nstat', '-asz']));
      expect(rec.hosts['loadgen-1']!.counters.after['TcpActiveOpens']).toBe(nstatClient['TcpActiveOpens']);
      // autocannon's 10 connections are the loadgen's active opens of the run.
      expect(rec.hosts['loadgen-1']!.counters.delta['TcpActiveOpens']).toBe(10);
      expect(rec.hosts['server']!.counters.delta['TcpPassiveOpens']).toBeGreaterThanOrEqual(10);

      // Sysctls: requested ones read back on their host, absent elsewhere.
      expect(inNs(srvNs, ['sysctl', '-n', 'net.core.somaxconn']).trim()).toBe('128');
      expect(inNs(cliNs, ['sysctl', '-n', 'net.core.somaxconn']).trim()).toBe('4096');
      expect(inNs(cliNs, ['sysctl', '-n', 'net.ipv4.tcp_tw_reuse']).trim()).toBe('1');
      expect(inNs(srvNs, ['sysctl', '-n', 'net.ipv4.tcp_tw_reuse']).trim()).toBe('2');
      expect(rec.hosts['server']!.sysctls.applied).toEqual([{ name: 'net.core.somaxconn', requested: '128', readBack: '128' }]);
      expect(rec.hosts['loadgen-1']!.sysctls.applied).toEqual([{ name: 'net.ipv4.tcp_tw_reuse', requested: '1', readBack: '1' }]);
      expect(rec.hosts['server']!.sysctls.differsFromKernelDefault).toEqual([{ name: 'net.core.somaxconn', before: '4096', after: '128' }]);
      expect(rec.hosts['loadgen-1']!.sysctls.differsFromKernelDefault).toEqual([{ name: 'net.ipv4.tcp_tw_reuse', before: '2', after: '1' }]);

      // The time series: ~20 samples a second on each host, ESTAB seen during the load.
      for (const h of ['server', 'loadgen-1']) {
        const s = rec.hosts[h]!.series;
        expect(s.summary.samples).toBeGreaterThan(100);
        expect(s.summary.intervalMs).toBeLessThan(80);
        expect(s.summary.peakStates['ESTAB']).toBeGreaterThanOrEqual(10);
      }

      // The run folder: the record and the raw state reports, as the tools printed them.
      const dir = join(RESULTS, 'results', id);
      expect(JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8'))).toEqual(rec);
      for (const h of ['server', 'loadgen-1']) {
        for (const phase of ['before', 'after']) {
          for (const f of ['ss-tanoi', 'ss-ltn', 'netstat-s', 'netstat-tan', 'nstat-az']) expect(existsSync(join(dir, 'raw', `${h}-${phase}-${f}.txt`))).toBe(true);
        }
      }
      expect(readFileSync(join(dir, 'raw', 'server-after-netstat-s.txt'), 'utf8')).toMatch(/passive connection openings/);
      expect(readFileSync(join(dir, 'raw', 'server-after-ss-ltn.txt'), 'utf8')).toMatch(/LISTEN\s+0\s+128\s+0\.0\.0\.0:8080/);

      // lab status lists the kept lab and its processes; lab down removes it.
      const st = JSON.parse((await lab(['status', '--json'])).stdout) as Array<{ runId: string; hosts: Array<{ name: string; pids: number[] }> }>;
      const mine = st.find((l) => l.runId === id)!;
      expect(mine.hosts.map((h) => h.name).sort()).toEqual(['loadgen-1', 'server']);
      expect(mine.hosts.find((h) => h.name === 'server')!.pids.length).toBeGreaterThan(0);
    } finally {
      const d = await lab(['down', id]);
      expect(d.stderr).toContain(`removed 3 namespace(s) of run ${id}`);
    }
    expect(namespaces().filter((n) => n.includes(id))).toEqual([]);
  }, 60_000);

  it.each([
    [64, 4096, 64],
    [1024, 200, 200],
  ])('backlog %i, somaxconn %i: the listener Send-Q is %i', async (backlog, somaxconn, limit) => {
    const r = await lab(['up', '--runtime', 'netns', '--json', '--duration', '1', '--backlog', String(backlog), '--server-sysctl', `net.core.somaxconn=${somaxconn}`]);
    expect(r.exitCode, r.stderr).toBe(0);
    const rec = JSON.parse(r.stdout) as RunRecord;
    expect(rec.server.listener?.sendQ).toBe(limit);
    expect(readFileSync(join(RESULTS, 'results', rec.runId, 'raw', 'server-after-ss-ltn.txt'), 'utf8')).toMatch(new RegExp(`LISTEN\\s+0\\s+${limit}\\s`));
  });

  it.each([
    ['ab', ['--no-keep-alive'], 'new connection per request'],
    ['wrk', ['--loadgen-threads', '1', '--connections', '16'], 'keep-alive'],
  ])('%s into the same result shape, counted like the server counted', async (tool, extra, mode) => {
    const r = await lab(['up', '--runtime', 'netns', '--loadgen', tool, '--duration', '2', ...extra]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`load      ${tool} from loadgen-1:`);
    expect(r.stdout).toContain(mode);
    const id = runIdOf(r.stderr)!;
    const rec = JSON.parse(readFileSync(join(RESULTS, 'results', id, 'result.json'), 'utf8')) as RunRecord;
    expect(Object.keys(rec.load.result).sort()).toEqual(['bytes', 'durationSec', 'errors', 'latencyCorrected', 'latencyMs', 'requests', 'rps', 'tool']);
    expect(rec.load.result.requests).toBeGreaterThan(500);
    expect(rec.server.requests).toBeGreaterThanOrEqual(rec.load.result.requests);
    expect(rec.server.requests - rec.load.result.requests).toBeLessThanOrEqual(16);
    if (tool === 'ab') {
      // HTTP/1.0 without keep-alive: the server closes first, so TIME_WAIT is on the server.
      expect(rec.hosts['server']!.series.summary.peakStates['TIME-WAIT']).toBeGreaterThan(100);
      expect(rec.hosts['loadgen-1']!.states.after['TIME-WAIT'] ?? 0).toBeLessThan(20);
    }
  });

  it.each(['SIGINT', 'SIGKILL'] as const)('%s mid-run, then lab down: no namespace and no process left', async (sig) => {
    const child = spawn(process.execPath, [CLI, 'up', '--runtime', 'netns', '--duration', '30'], { cwd: RESULTS, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b) => (err += b));
    const deadline = Date.now() + 20_000;
    while (!/autocannon from loadgen-1/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500));
    const id = runIdOf(err)!;
    const pids = execFileSync('ip', ['netns', 'pids', `${PREFIX}.${id}.server`], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
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
      expect(namespaces().some((n) => n.includes(id))).toBe(true); // left behind, as a SIGKILL must
      const d = await lab(['down']);
      expect(d.exitCode).toBe(0);
    }
    expect(namespaces().filter((n) => n.includes(id))).toEqual([]);
    expect(pids.filter(alive)).toEqual([]);
  }, 40_000);
});

describe('lab up: bad input is one line on stderr, exit 2, nothing created', () => {
  it.each([
    [['--connections', '0'], "--connections must be an integer from 1 to 100000, got 0"],
    [['--duration', 'ten'], '--duration must be an integer from 1 to 3600, got "ten"'],
    [['--backlog', '1.5'], '--backlog must be an integer'],
    [['--model', 'fast'], '--model must be one of single, reuseport, acceptor, workers, got "fast"'],
    [['--trigger', 'both'], '--trigger must be one of edge, level'],
    [['--loadgen', 'siege'], '--loadgen must be one of autocannon, ab, wrk, wrk2, got "siege"'],
    [['--runtime', 'lxc'], '--runtime must be one of auto, netns, docker'],
    [['--subnet', '10.0.0.0/16'], '--subnet must be an IPv4 /24 like 198.18.0.0/24, got "10.0.0.0/16"'],
    [['--server-sysctl', 'net.core.somaxconx=5'], 'unknown sysctl `net.core.somaxconx`; did you mean `net.core.somaxconn`?'],
    [['--server-sysctl', 'net.ipv4.tcp_syncookies=3'], 'net.ipv4.tcp_syncookies'],
    [['--client-sysctl', 'net.ipv4.ip_local_port_range=60000 50000'], 'net.ipv4.ip_local_port_range'],
    [['--server-sysctl', 'net.core.rmem_max=5'], 'net.core.rmem_max cannot be set per host'],
    [['--server-sysctl', 'somaxconn'], 'expected NAME=VALUE'],
    [['--port', '9090'], 'lab up: --port and --control-port must differ, both are 9090'],
    [['--requests', '10', '--duration', '2'], "option '--requests <n>' cannot be used with option '--duration <s>'"],
    [['--no-keep-alive'], 'lab up: autocannon cannot turn keep-alive off; use --loadgen ab or wrk'],
    [['--loadgen', 'wrk', '--requests', '100'], 'lab up: wrk runs for a duration, not a request count'],
    [['--loadgen', 'wrk2'], 'lab up: wrk2 needs a request rate: give --rate'],
    [['--loadgen', 'ab', '--pipelining', '4'], 'lab up: ab cannot pipeline requests'],
    [['--runtime', 'docker'], 'lab up: the docker runtime is not built yet; use --runtime netns'],
    [['--bogus'], "unknown option '--bogus'"],
    // A missing tool is found on the loadgen host after it exists; the lab is removed again.
    [['--loadgen', 'wrk2', '--rate', '100', '--duration', '1'], 'lab up: wrk2 is not installed on loadgen-1: wrk2 is not in Debian: build it from https://github.com/giltene/wrk2'],
  ])('%j', async (args, msg) => {
    const r = await lab(['up', ...args]);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n').filter((l) => l && !l.startsWith('lab up: run ') && !l.startsWith('lab up: hosts '));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(msg);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(namespaces()).toEqual(nsBefore);
  });

  it('without root: says it needs root or CAP_NET_ADMIN', async () => {
    const r = await lab(['up', '--runtime', 'netns'], { user: true });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toBe('lab up: the netns runtime needs root or CAP_NET_ADMIN (it creates network namespaces); run as root');
  });
});
