// The rootless runtime, run as an unprivileged user (tcplab-ci; .ci/run creates it) through
// the real CLI: `lab up` picks it by itself and prints µs latencies, sysctls land in the
// lab's own namespaces (checked by entering them without the lab's code), `lab status` and
// `lab down` find the lab, also after the CLI was SIGKILLed, every example lab file runs
// with no FAIL, and the machine's own namespaces and sysctls are untouched.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parseListeners } from '../../lab/observe/ss.js';
import { TUNABLES } from '../../sysctl/registry.js';
import type { PointRecord } from '../../lab/pipeline/record.js';
import { ONE_POINT_PER_SCENARIO } from '../helpers/one-point.js';
import { expectAllPass, readRecords } from '../helpers/verdicts.js';
import { downLabs } from '../helpers/lab-down.js';

const USER = 'tcplab-ci';
const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));

function account(): { uid: number; gid: number; home: string } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${USER}:`));
  if (!line)
    throw new Error(`the rootless suite runs as the unprivileged user ${USER}, who is missing: useradd --create-home ${USER} (.ci/run does)`);
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
}

const me = account();
const WORK = mkdtempSync(join(tmpdir(), 'tcplab-rootless-'));
chownSync(WORK, me.uid, me.gid);
const asUser = ['setpriv', '--reuid', String(me.uid), '--regid', String(me.gid), '--init-groups', '--'];
// A user's login PATH on Debian (no sbin folder: sysctl, nft and hping3 are not on it).
const env = { HOME: me.home, USER, LOGNAME: USER, PATH: '/usr/local/bin:/usr/bin:/bin' };
/** The CLI as the unprivileged user, in a folder of its own. */
const lab = (args: string[]) =>
  execa(asUser[0]!, [...asUser.slice(1), process.execPath, CLI, ...args], { reject: false, cwd: WORK, env, extendEnv: false });
/** The user's processes, as the machine sees them. */
const userProcs = (): string[] =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .flatMap((pid) => {
      try {
        const st = readFileSync(`/proc/${pid}/status`, 'utf8');
        if (Number(/^Uid:\s*(\d+)/m.exec(st)![1]) !== me.uid || /^State:\s*Z/m.test(st)) return [];
        return [`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim()}`];
      } catch {
        return []; // gone meanwhile
      }
    });
/** A command in one host of a kept lab, entered with nsenter directly (not through the lab's code). */
function inHost(runId: string, host: string, argv: string[]): string {
  const holder = userProcs()
    .map((l) => l.split(/\s+/))
    .find((f) => f[1] === 'sleep' && readFileSync(`/proc/${f[0]}/environ`, 'latin1').includes(`TCPLAB_ROOTLESS=${runId}\0`));
  if (!holder) throw new Error(`no holder for ${runId}`);
  return execFileSync(
    asUser[0]!,
    [
      ...asUser.slice(1),
      'nsenter',
      '-t',
      holder[0]!,
      '-U',
      '-m',
      '-n',
      '--preserve-credentials',
      '--',
      'ip',
      'netns',
      'exec',
      `tcplab-lab.${runId}.${host}`,
      ...argv,
    ],
    { encoding: 'utf8' },
  );
}
// The lab's namespaces in the machine's /run/netns (other suites may run theirs meanwhile).
const rootNamespaces = () =>
  existsSync('/run/netns')
    ? readdirSync('/run/netns')
        .filter((n) => n.startsWith('tcplab-lab.'))
        .sort()
    : [];
const rootSysctls = () =>
  Object.fromEntries(
    TUNABLES.map((t) => `/proc/sys/${t.name.replace(/\./g, '/')}`)
      .filter((p) => existsSync(p))
      .map((p) => [p, readFileSync(p, 'utf8')]),
  );

let nsBefore: string[];
let sysctlsBefore: Record<string, string>;
beforeAll(() => {
  nsBefore = rootNamespaces();
  sysctlsBefore = rootSysctls();
  expect(userProcs()).toEqual([]);
});
afterAll(() => {
  expect(userProcs()).toEqual([]);
  expect(rootNamespaces()).toEqual(nsBefore);
  expect(rootSysctls()).toEqual(sysctlsBefore);
});

describe(`rootless runtime (as ${USER})`, () => {
  it('`lab up` with no runtime picks rootless, prints µs latencies, and sets sysctls only in its own namespaces', async () => {
    const r = await lab(['up', '--duration', '2', '--keep', '--server-sysctl', 'net.core.somaxconn=77', '--backlog', '200']);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).not.toMatch(/needs root/);
    // The summary: latency in µs, with the tool and its resolution.
    expect(r.stdout).toMatch(/^latency {3}p50 \d+(\.\d+)? µs, .*\(autocannon, µs resolution, /m);
    const dir = /report\.md: (\S+)\/$/m.exec(r.stdout)![1]!;
    const rec = JSON.parse(readFileSync(join(WORK, dir, 'points', 'p001-r1.json'), 'utf8')) as PointRecord;
    const id = rec.runId;
    try {
      expect(rec.runtime).toBe('rootless');
      expect(rec.scenario.load!.result.latencyResolutionUs).toBe(1);
      expect(rec.scenario.load!.result.requests).toBeGreaterThan(1000);
      expect(rec.hosts['server']!.sysctls.readBack['net.core.somaxconn']).toBe('77');
      // Independently, inside the kept lab: the sysctl where asked, the kernel default elsewhere.
      expect(inHost(id, 'server', ['sysctl', '-n', 'net.core.somaxconn']).trim()).toBe('77');
      expect(inHost(id, 'loadgen-1', ['sysctl', '-n', 'net.core.somaxconn']).trim()).toBe('4096');
      expect(parseListeners(inHost(id, 'server', ['ss', '-ltn'])).find((l) => l.port === 8080)!.sendQ).toBe(77);
      // The user is root only inside.
      expect(inHost(id, 'server', ['id', '-u']).trim()).toBe('0');
      expect(rootNamespaces()).toEqual(nsBefore);

      const st = await lab(['status', '--json']);
      const mine = (JSON.parse(st.stdout) as Array<{ runId: string; runtime: string; hosts: Array<{ name: string; pids: number[] }> }>).find(
        (l) => l.runId === id,
      )!;
      expect(mine.runtime).toBe('rootless');
      expect(mine.hosts.map((h) => h.name).sort()).toEqual(['loadgen-1', 'server']);
      expect(mine.hosts.find((h) => h.name === 'server')!.pids.length).toBe(1);
    } finally {
      const d = await lab(['down', id]);
      expect(d.stderr.trim()).toBe(`lab down: removed 3 namespace(s) (rootless) of run ${id}`);
    }
    expect(userProcs()).toEqual([]);
    expect((await lab(['status'])).stdout).toBe('no labs running');
  }, 60_000);

  it('the CLI SIGKILLed mid-load: `lab status` still lists the lab and its processes, `lab down` removes every one', async () => {
    const child = spawn(asUser[0]!, [...asUser.slice(1), process.execPath, CLI, 'up', '--duration', '20'], { cwd: WORK, env, stdio: 'ignore' });
    // Wait until the load runs (autocannon in the loadgen), then kill the CLI only.
    const end = Date.now() + 20_000;
    while (!userProcs().some((l) => l.includes('autocannon-us.js')) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect(userProcs().some((l) => l.includes('autocannon-us.js'))).toBe(true);
    const cli = userProcs().find((l) => l.includes('dist/lab/bin.js up'))!;
    process.kill(Number(cli.split(' ')[0]), 'SIGKILL');
    await new Promise((r) => child.on('exit', r));

    const st = JSON.parse((await lab(['status', '--json'])).stdout) as Array<{ runId: string; hosts: Array<{ name: string; pids: number[] }> }>;
    expect(st).toHaveLength(1);
    expect(st[0]!.hosts.flatMap((h) => h.pids).length).toBeGreaterThanOrEqual(2); // the server, the load, the samplers
    const d = await lab(['down']);
    expect(d.exitCode).toBe(0);
    expect(d.stderr.trim()).toBe('lab down: removed 3 namespace(s) (rootless)');
    expect(userProcs()).toEqual([]);
  }, 60_000);

  it('the holder SIGKILLed: the processes left behind show as stray, and `lab down` (here as root) kills them', async () => {
    const r = await lab(['up', '--duration', '1', '--keep']);
    expect(r.exitCode).toBe(0);
    const unshare = userProcs().find((l) => / unshare /.test(` ${l.split(' ').slice(1).join(' ')} `) && l.includes('tcplab-rootless'))!;
    process.kill(Number(unshare.split(' ')[0]), 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    const st = JSON.parse((await execa(process.execPath, [CLI, 'status', '--json'])).stdout) as Array<{
      runtime: string;
      hosts: Array<{ name: string; pids: number[] }>;
    }>;
    const stray = st.filter((l) => l.runtime === 'rootless');
    expect(stray).toHaveLength(1);
    expect(stray[0]!.hosts.map((h) => h.name)).toEqual(['(stray)']);
    expect(await downLabs(CLI, (l) => l.runtime === 'rootless')).toContain('(rootless)');
    expect(userProcs()).toEqual([]);
  }, 60_000);

  it('--trace and --capture without root: one line each saying why not, the point runs', async () => {
    const r = await lab(['up', '--duration', '1', '--trace', '--capture', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('lab up: trace: the tracer needs root (bpftrace loads BPF programs): the point runs without it');
    const rec = JSON.parse(r.stdout) as PointRecord;
    expect(rec.trace).toEqual({ unavailable: 'the tracer needs root (bpftrace loads BPF programs): the point runs without it' });
    const noCapture =
      'tcpdump in loadgen-1 cannot set its user and groups (a user namespace denies setgroups; the rootless runtime has no capture): the point runs without the capture';
    expect(r.stderr).toContain(`lab up: capture: ${noCapture}`);
    expect(rec.capture).toEqual({ unavailable: noCapture });
    expect(rec.scenario.load?.result.requests).toBeGreaterThan(0);
    expect(userProcs()).toEqual([]);
  }, 60_000);

  // One point of each scenario as the unprivileged user: the runtime's wiring for every
  // scenario (the capabilities it needs inside the user namespace, sysctls read back, nothing
  // left), every verdict PASS. The rules themselves are proven on netns.
  it.each(ONE_POINT_PER_SCENARIO)(
    '%s runs rootless: every verdict PASS, the sysctls read back, nothing left',
    async (name, body) => {
      const file = join(WORK, `one-${name.replace(/\W+/g, '-')}.yaml`);
      writeFileSync(file, `runtime: rootless\n${body}\n`);
      chownSync(file, me.uid, me.gid);
      const r = await lab(['sweep', file]);
      expect(r.exitCode, r.stderr).toBe(0);
      const recs = readRecords(join(WORK, r.stdout.trim()));
      expect(recs).toHaveLength(1);
      expectAllPass(recs);
      const p = recs[0]!;
      for (const [k, v] of Object.entries(p.config.server.sysctls)) expect(p.hosts['server']!.sysctls.readBack[k], k).toBe(String(v));
      expect(userProcs()).toEqual([]);
    },
    120_000,
  );

  it('where user namespaces are refused: one line naming the cause, exit 2, nothing left', async () => {
    // A user namespace of root's own whose user.max_user_namespaces is 0 (a per-user-namespace
    // limit: the machine's own is untouched): unshare fails there as on a locked-down host.
    const r = await execa(
      'unshare',
      [
        '--user',
        '--map-root-user',
        '--fork',
        'sh',
        '-c',
        'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"',
        'sh',
        process.execPath,
        CLI,
        'up',
        '--runtime',
        'rootless',
      ],
      { reject: false, cwd: tmpdir() },
    );
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual([
      'lab up: the rootless runtime needs unprivileged user namespaces, and `unshare --user --map-root-user --net --mount true` failed here (unshare: unshare failed: No space left on device): check kernel.unprivileged_userns_clone and user.max_user_namespaces, or run as root',
    ]);
    expect(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8').trim()).not.toBe('0');
  });
});
