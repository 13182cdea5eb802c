// The docker runtime on a real engine: exec semantics, sysctls at creation read back,
// capabilities only where asked, the server image's non-root user, labels, typed errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerRuntime } from '../../lab/runtime/docker.js';
import type { Lab } from '../../lab/runtime/runtime.js';
import { parseSetting, type SysctlSetting } from '../../sysctl/registry.js';

const rt = new DockerRuntime({ progress: (l) => process.stderr.write(`${l}\n`) });
const runId = `t${process.pid}-docker`;
const logDir = () => mkdtempSync(join(tmpdir(), 'tcplab-docker-'));
let lab: Lab;
let labLogs: string;

/** The capability bounding set of a container's processes (CapBnd of PID 1), as a bit mask. */
const capBnd = (container: string) =>
  BigInt(`0x${/CapBnd:\s*([0-9a-f]+)/.exec(execFileSync('docker', ['exec', container, 'cat', '/proc/1/status'], { encoding: 'utf8' }))![1]}`);
const NET_ADMIN = 1n << 12n;
const NET_RAW = 1n << 13n;

beforeAll(async () => {
  await rt.check();
  labLogs = join(logDir(), 'logs');
  lab = await rt.create({
    runId,
    subnet: '198.18.7.0/24',
    logDir: labLogs,
    hosts: [
      { name: 'server', role: 'server', sysctls: [parseSetting('net.core.somaxconn=321'), parseSetting('net.ipv4.ip_local_port_range=20000 30000')] },
      { name: 'loadgen-1', role: 'loadgen', sysctls: [] },
    ],
    caps: { 'loadgen-1': ['NET_RAW', 'NET_ADMIN'] },
  });
}, 300_000);

afterAll(async () => {
  await rt.destroy(runId);
  expect(execFileSync('docker', ['ps', '-aq', '--filter', `label=tcplab.run=${runId}`], { encoding: 'utf8' }).trim()).toBe('');
});

describe('docker runtime', () => {
  it('a taken subnet: an error naming it, or with subnetFallback the next free /24', async () => {
    const spec = { subnet: '198.18.7.0/24', logDir: logDir(), hosts: [{ name: 'server', role: 'server' as const, sysctls: [] }] };
    await expect(rt.create({ ...spec, runId: `${runId}-b` })).rejects.toThrow(
      'the lab subnet 198.18.7.0/24 overlaps a network that exists: pass --subnet with a free /24',
    );
    const second = await rt.create({ ...spec, runId: `${runId}-c`, subnetFallback: true });
    try {
      expect(second.host('server').address).toBe('198.18.8.1');
    } finally {
      await second.destroy();
    }
  });

  it('the bind-mounted log folder: not world-writable, files owned by the container user, no link followed', async () => {
    expect(statSync(labLogs).mode & 0o777).toBe(0o755);
    const srv = lab.host('server');
    const p = srv.start(['sh', '-c', 'echo written-by-$(id -u)'], 'own');
    await p.exited;
    const st = statSync(join(labLogs, 'server-own.log'));
    expect([st.uid, st.mode & 0o777]).toEqual([10001, 0o644]);
    // A link planted at a log's name (by a container or a local user) is never followed:
    // starting the process fails, and the link's target keeps its owner and mode.
    const victim = join(logDir(), 'victim');
    writeFileSync(victim, 'secret\n', { mode: 0o600 });
    symlinkSync(victim, join(labLogs, 'server-planted.log'));
    expect(() => srv.start(['true'], 'planted')).toThrow(/EEXIST/);
    expect(lstatSync(join(labLogs, 'server-planted.log')).isSymbolicLink()).toBe(true);
    const v = statSync(victim);
    expect([v.uid, v.mode & 0o777]).toEqual([0, 0o600]);
  });

  it('exec: stdout and stderr apart, exit codes, a missing program is 127, a timeout is reported', async () => {
    const h = lab.host('loadgen-1');
    expect(await h.exec(['sh', '-c', 'echo out; echo err >&2; exit 3'])).toMatchObject({ stdout: 'out\n', stderr: 'err\n', exitCode: 3 });
    expect((await h.exec(['no-such-program-tcplab'])).exitCode).toBe(127);
    const t0 = Date.now();
    const slow = await h.exec(['sleep', '30'], { timeoutMs: 1000 });
    expect(slow.timedOut).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('sysctls set at creation read back inside that container only', async () => {
    expect((await lab.host('server').exec(['sysctl', '-n', 'net.core.somaxconn'])).stdout.trim()).toBe('321');
    expect((await lab.host('server').exec(['sysctl', '-n', 'net.ipv4.ip_local_port_range'])).stdout.trim().split(/\s+/)).toEqual(['20000', '30000']);
    expect((await lab.host('loadgen-1').exec(['sysctl', '-n', 'net.core.somaxconn'])).stdout.trim()).toBe('4096');
  });

  it('never privileged; NET_RAW/NET_ADMIN only where asked; the server runs as a non-root user', async () => {
    for (const c of [`tcplab-${runId}-server`, `tcplab-${runId}-loadgen-1`]) {
      expect(execFileSync('docker', ['inspect', '-f', '{{.HostConfig.Privileged}}', c], { encoding: 'utf8' }).trim()).toBe('false');
    }
    expect(capBnd(`tcplab-${runId}-loadgen-1`) & NET_ADMIN).toBe(NET_ADMIN);
    expect(capBnd(`tcplab-${runId}-server`) & NET_ADMIN).toBe(0n);
    // The server's processes: uid 10001, no effective capabilities at all.
    const st = await lab.host('server').exec(['sh', '-c', 'id -u; grep CapEff /proc/self/status']);
    expect(st.stdout).toMatch(/^10001\nCapEff:\s+0+\n$/);
    // Docker's default set has NET_RAW; the loadgen's nft needs NET_ADMIN, which the server lacks.
    expect((await lab.host('loadgen-1').exec(['nft', 'list', 'ruleset'])).exitCode).toBe(0);
    expect(capBnd(`tcplab-${runId}-server`) & NET_RAW).toBe(NET_RAW);
    expect(execFileSync('docker', ['inspect', '-f', '{{json .HostConfig.CapAdd}}', `tcplab-${runId}-loadgen-1`], { encoding: 'utf8' }).trim()).toBe(
      '["NET_RAW","NET_ADMIN"]',
    );
    expect(execFileSync('docker', ['inspect', '-f', '{{json .HostConfig.CapAdd}}', `tcplab-${runId}-server`], { encoding: 'utf8' }).trim()).toMatch(
      /^(null|\[\])$/,
    );
  });

  it('HTTP across the lab network at the planned addresses', async () => {
    const srv = lab.host('server');
    expect(srv.address).toBe('198.18.7.1');
    const p = srv.start([...srv.node('dist/server/main.js'), '--port', '8080', '--control-port', '9090'], 'server');
    try {
      const cli = lab.host('loadgen-1');
      let r;
      for (let i = 0; i < 50; i++) {
        r = await cli.exec([...cli.node('dist/lab/in-host/http-get.js'), 'http://198.18.7.1:8080/']);
        if (r.exitCode === 0) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      expect(r!.stdout).toBe('hello\n');
    } finally {
      await p.stop();
    }
    expect(await p.exited).toBe(0);
  });

  it('a name clash and a sysctl the kernel refuses are typed errors; nothing is left', async () => {
    await expect(
      rt.create({ runId, subnet: '198.18.8.0/24', logDir: logDir(), hosts: [{ name: 'server', role: 'server', sysctls: [] }] }),
    ).rejects.toThrow(`a lab with run id ${runId} exists already: \`lab down ${runId}\` removes it`);
    // The first lab is untouched by the refused one.
    expect((await lab.host('server').exec(['true'])).exitCode).toBe(0);
    const bogus = { name: 'net.ipv4.tcp_no_such_knob', value: '1' } as unknown as SysctlSetting;
    const id = `${runId}-bad`;
    await expect(
      rt.create({ runId: id, subnet: '198.18.9.0/24', logDir: logDir(), hosts: [{ name: 'server', role: 'server', sysctls: [bogus] }] }),
    ).rejects.toMatchObject({
      name: 'SysctlError',
      code: 'UNSUPPORTED',
      message: 'server: net.ipv4.tcp_no_such_knob does not exist on this kernel (unsupported)',
    });
    expect(execFileSync('docker', ['ps', '-aq', '--filter', `label=tcplab.run=${id}`], { encoding: 'utf8' }).trim()).toBe('');
  });
});
