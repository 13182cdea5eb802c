// The swarm runtime on a real two-node swarm (scripts/test-swarm.sh: the machine's engine as
// manager, a second engine in a network namespace of its own as the worker tcplab-swarm2):
// hosts placed on nodes, sysctls from the service spec read back inside on the worker, HTTP
// across the overlay, a sweep through the CLI, SIGKILL then `lab down`, bad placement; nothing
// left on either node.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { PointRecord } from '../../lab/pipeline/record.js';
import { mergeHistograms } from '../../lab/loadgen/merge.js';
import { SwarmRuntime } from '../../lab/runtime/swarm.js';
import { nextSubnet } from '../../lab/runtime/runtime.js';
import { DEFAULT_SUBNET } from '../../core/fields.js';
import { parseSetting } from '../../sysctl/registry.js';
import { downLabs } from '../helpers/lab-down.js';
import { baseline } from '../helpers/leftovers.js';

const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../scripts/test-swarm.sh', import.meta.url));
const WORKER = 'tcplab-swarm2';
const WORKER_SOCK = '/run/tcplab-swarm2.sock';
const WORK = mkdtempSync(join(tmpdir(), 'tcplab-swarm-'));
const rt = new SwarmRuntime({ progress: (l) => process.stderr.write(`${l}\n`) });
let manager: string;

/** What carries the lab label on either engine and was not there when the suite began (another run's lab is not this suite's). */
let engines: Awaited<ReturnType<typeof baseline>>;
const leftovers = () => engines.made();

async function sweep(name: string, text: string) {
  writeFileSync(join(WORK, name), text);
  return execa(process.execPath, [CLI, 'sweep', join(WORK, name)], { reject: false, cwd: WORK });
}

beforeAll(async () => {
  // CI makes the test swarm (.ci/run); without it this suite fails, and says how to make it.
  const st = await execa('bash', [SCRIPT, 'status'], { reject: false });
  if (st.stdout.trim() !== 'up') throw new Error(`the two-node test swarm is not up: sudo bash scripts/test-swarm.sh up (${st.stderr.trim()})`);
  // Both nodes ready: a restart of the machine's engine (another suite stops it) leaves the
  // worker Down for a few seconds.
  for (let i = 0; ; i++) {
    const nodes = (await execa('docker', ['node', 'ls', '--format', '{{.Status}}'])).stdout.split('\n');
    if (nodes.filter((s) => s === 'Ready').length >= 2) break;
    if (i >= 60) throw new Error(`the test swarm's nodes are not ready after 30 s: ${nodes.join(', ')}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  await rt.check();
  engines = await baseline({ worker: `unix://${WORKER_SOCK}` });
  manager = (await execa('docker', ['info', '--format', '{{.Name}}'])).stdout.trim();
}, 60_000);

afterAll(async () => {
  expect(await leftovers()).toEqual([]);
});

describe('swarm runtime (two nodes)', () => {
  it('hosts placed on nodes: sysctls from the service spec read back on the worker, HTTP across the overlay, nothing left after destroy', async () => {
    const runId = `t${process.pid}-swarm`;
    const lab = await rt.create({
      runId,
      subnet: '198.18.61.0/24',
      logDir: join(WORK, 'logs-a'),
      placement: { server: WORKER, 'loadgen-1': manager },
      caps: { 'loadgen-1': ['NET_RAW'] },
      hosts: [
        { name: 'server', role: 'server', sysctls: [parseSetting('net.core.somaxconn=77')] },
        { name: 'loadgen-1', role: 'loadgen', sysctls: [parseSetting('net.ipv4.tcp_fin_timeout=17')] },
      ],
    });
    try {
      const srv = lab.host('server');
      const lg = lab.host('loadgen-1');
      expect([srv.placedOn, lg.placedOn]).toEqual([WORKER, manager]);
      expect(srv.address).toMatch(/^198\.18\.61\.\d+$/);
      // Each host's sysctls in its own network namespace only.
      expect((await srv.exec(['sysctl', '-n', 'net.core.somaxconn'])).stdout.trim()).toBe('77');
      expect((await lg.exec(['sysctl', '-n', 'net.core.somaxconn'])).stdout.trim()).not.toBe('77');
      expect((await lg.exec(['sysctl', '-n', 'net.ipv4.tcp_fin_timeout'])).stdout.trim()).toBe('17');
      // The server's container is the worker engine's, not the manager's.
      const onWorker = (await execa('docker', ['-H', `unix://${WORKER_SOCK}`, 'ps', '-q', '--filter', `label=tcplab.run=${runId}`])).stdout.trim();
      expect(onWorker.split('\n')).toHaveLength(1);
      // Never privileged; a capability only where asked.
      for (const h of ['server', 'loadgen-1']) {
        const spec = JSON.parse((await execa('docker', ['service', 'inspect', `tcplab-${runId}-${h}`])).stdout)[0].Spec.TaskTemplate.ContainerSpec;
        expect(spec.Privileges?.Privileged ?? false).toBe(false);
        expect(spec.CapabilityAdd ?? []).toEqual(h === 'loadgen-1' ? ['CAP_NET_RAW'] : []);
      }
      const p = srv.start([...srv.node('dist/server/main.js'), '--host', '0.0.0.0', '--port', '8080', '--control-port', '9090'], 'server');
      let got = '';
      for (let i = 0; i < 40 && got !== 'hello'; i++) {
        await new Promise((r) => setTimeout(r, 250));
        const r = await lg.exec([
          'node',
          '-e',
          `fetch('http://${srv.address}:8080/').then(r => r.text()).then(t => console.log(t.trim()), () => {})`,
        ]);
        got = r.stdout.trim();
      }
      expect(got).toBe('hello');
      await p.stop();
      expect(
        (await rt.list())
          .find((l) => l.runId === runId)
          ?.hosts.map((h) => h.name)
          .sort(),
      ).toEqual(['loadgen-1', 'server']);
    } finally {
      await lab.destroy();
    }
    expect(await leftovers()).toEqual([]);
  }, 240_000);

  it('lab sweep examples/throughput-swarm.yaml as it ships, its default subnet held by a bridge on the manager: the next /24, the server on the worker, two loadgens on the manager, merged, every verdict PASS, the nodes in the record', async () => {
    // A bridge on the manager with the lab's default subnet (as a docker lab left over holds it):
    // the swarm would take the overlay and then refuse the manager's tasks ("Pool overlaps").
    const blocker = `tcplab-test-blocker-${process.pid}`;
    await execa('docker', ['network', 'create', '--driver', 'bridge', '--subnet', DEFAULT_SUBNET, blocker]);
    let r;
    try {
      r = await execa(process.execPath, [CLI, 'sweep', fileURLToPath(new URL('../../examples/throughput-swarm.yaml', import.meta.url))], {
        reject: false,
        cwd: WORK,
      });
    } finally {
      await execa('docker', ['network', 'rm', blocker]);
    }
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain(`lab network: ${DEFAULT_SUBNET} is taken, using ${nextSubnet(DEFAULT_SUBNET)}`);
    expect(r.stderr).toContain(`(node ${WORKER})`);
    const dir = join(WORK, r.stdout.trim());
    const recs = readdirSync(join(dir, 'points'))
      .sort()
      .map((f) => JSON.parse(readFileSync(join(dir, 'points', f), 'utf8')) as PointRecord);
    expect(recs.map((p) => p.server.options.backlog)).toEqual([128, 1024]);
    for (const p of recs) {
      expect([p.hosts['server']!.node, p.hosts['loadgen-1']!.node, p.hosts['loadgen-2']!.node]).toEqual([WORKER, manager, manager]);
      expect(p.scenario.verdicts.filter((v) => v.verdict !== 'PASS').map((v) => `${v.rule}: ${v.reason}`)).toEqual([]);
      const load = p.scenario.load!;
      expect(load.instances!.map((i) => i.host)).toEqual(['loadgen-1', 'loadgen-2']);
      expect(load.result.requests).toBe(load.instances!.reduce((a, i) => a + i.result.requests, 0));
      // The merged latency is the merge of the two loadgens' histograms.
      const h = mergeHistograms(load.instances!.map((i) => i.result.histogramUs))!;
      expect(h.totalCount).toBe(load.instances!.reduce((a, i) => a + mergeHistograms([i.result.histogramUs])!.totalCount, 0));
      expect(load.result.latencyMs!.p99).toBe(h.getValueAtPercentile(99) / 1000);
      // Each host's sysctls set by the swarm and read back inside, on its own node.
      expect(p.hosts['server']!.sysctls.readBack['net.core.somaxconn']).toBe('4096');
      expect(p.hosts['loadgen-2']!.sysctls.readBack['net.ipv4.ip_local_port_range']).toMatch(/^20000\s+60999$/);
      // 2 × 2,500 req/s for 3 s, the server's own count.
      expect(p.server.requests).toBeGreaterThan(14_000);
    }
    expect(JSON.parse(readFileSync(join(dir, 'environment.json'), 'utf8')).versions[`node ${WORKER}`]).toMatch(/^\d+\./);
    expect(await leftovers()).toEqual([]);
  }, 300_000);

  /** A 30 s sweep with the server on the worker, started and waited for until the worker runs its container. */
  async function sweepOnWorker(name: string) {
    writeFileSync(
      join(WORK, name),
      `runtime: swarm\nplacement: {server: ${WORKER}}\nscenario: {name: throughput}\nloadgens: [{options: {connections: 5, duration: 30}}]\n`,
    );
    const child = execa(process.execPath, [CLI, 'sweep', join(WORK, name)], { reject: false, cwd: WORK });
    const onWorker = async () => (await leftovers()).some((x) => x.startsWith('worker container'));
    for (let i = 0; i < 240 && !(await onWorker()); i++) await new Promise((r) => setTimeout(r, 250));
    expect(await onWorker()).toBe(true);
    return { child }; // wrapped: a subprocess is a promise, which an async function's return would await
  }

  // Ctrl-C's handler is the CLI's, proven in test/lab/up.test.ts; what the swarm adds is its
  // destroy() from labels alone, here after SIGKILL.
  it('SIGKILL during a sweep, then `lab down`: no service, network or container on either node', async () => {
    const { child } = await sweepOnWorker('sw-kill.yaml');
    child.kill('SIGKILL');
    await child;
    expect((await execa(process.execPath, [CLI, 'status'])).stdout).toMatch(/\(swarm\)/);
    await downLabs(CLI, (l) => l.runtime === 'swarm');
    expect(await leftovers()).toEqual([]);
  }, 240_000);

  it('bad placement: on another runtime, or a node the swarm lacks, is one line, exit 2, nothing left', async () => {
    const netns = await sweep('sw-netns.yaml', `runtime: netns\nplacement: {server: ${WORKER}}\nscenario: {name: throughput}\n`);
    expect([netns.exitCode, netns.stderr.trim().split('\n').length]).toEqual([2, 1]);
    expect(netns.stderr).toContain(`placement.server: got "${WORKER}": runtime swarm (placement puts hosts on swarm nodes)`);
    const nowhere = await sweep('sw-nowhere.yaml', 'runtime: swarm\nplacement: {server: no-such-node}\nscenario: {name: throughput}\n');
    expect(nowhere.exitCode).toBe(2);
    expect(nowhere.stderr).toContain(`placement of server: no ready node no-such-node the lab can reach (nodes:`);
    expect(await leftovers()).toEqual([]);
  }, 120_000);
});
