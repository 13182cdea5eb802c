// The io_uring backend's seccomp profile on Docker: the engine's default profile (Debian's,
// of docker.io's version, which scripts/install-docker.sh unpacks) with io_uring_setup,
// io_uring_enter and io_uring_register allowed on top. Checked as data, then on a real engine
// against a profile like engines' from 25.0 (the default without io_uring): under that
// profile alone the server refuses io_uring in one line; under the lab's it serves, and the
// rest of the default filter still holds. Then examples/io-backends.yaml's io_uring points.
import { expectAllPass } from '../helpers/verdicts.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { DockerRuntime } from '../../lab/runtime/docker.js';
import { defaultBase, profileAllowing, URING_SYSCALLS } from '../../lab/runtime/seccomp.js';
import type { Host } from '../../lab/runtime/runtime.js';
import type { PointRecord } from '../../lab/pipeline/record.js';
import { baseline } from '../helpers/leftovers.js';

const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
const WORK = mkdtempSync(join(tmpdir(), 'tcplab-seccomp-'));
const URING = new Set<string>(URING_SYSCALLS);

interface Rule {
  names: string[];
  action: string;
  args?: unknown[] | null;
  includes?: Record<string, unknown>;
  excludes?: Record<string, unknown>;
}
interface Profile {
  defaultAction: string;
  syscalls: Rule[];
}
const base = () => JSON.parse(readFileSync(defaultBase(), 'utf8')) as Profile;
const names = (p: Profile, action?: string) => p.syscalls.filter((r) => !action || r.action === action).flatMap((r) => r.names);

/** A profile like the default of engines from 25.0: the engine's, with the io_uring syscalls taken out. */
function withoutUring(): string {
  const p = base();
  p.syscalls = p.syscalls.map((r) => ({ ...r, names: r.names.filter((n) => !URING.has(n)) })).filter((r) => r.names.length);
  const f = join(WORK, 'no-uring.json');
  writeFileSync(f, JSON.stringify(p));
  return f;
}

describe('the io_uring seccomp profile, as data', () => {
  it("the base is the engine's own default profile, found where install-docker.sh put it", () => {
    expect(existsSync(defaultBase()), `${defaultBase()}: run scripts/install-docker.sh`).toBe(true);
    const p = base();
    expect(p.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(names(p, 'SCMP_ACT_ALLOW')).toEqual(expect.arrayContaining(['accept4', 'epoll_wait', 'read', 'write']));
  });

  it("on engine 20.10's profile, which allows io_uring already, nothing is added and nothing changes", () => {
    const out = profileAllowing(URING_SYSCALLS);
    expect(out.added).toEqual([]);
    expect(JSON.parse(out.json)).toEqual(base());
    expect(out.describe).toMatch(/allows io_uring_setup, io_uring_enter, io_uring_register already$/);
  });

  it('on a profile without them (engines from 25.0), one rule allows the three and every other rule is as it was', () => {
    const f = withoutUring();
    const before = JSON.parse(readFileSync(f, 'utf8')) as Profile;
    const out = profileAllowing(URING_SYSCALLS, f);
    const p = JSON.parse(out.json) as Profile;
    expect(out.added).toEqual([...URING_SYSCALLS]);
    expect(p.defaultAction).toBe(before.defaultAction);
    expect(p.syscalls.slice(0, -1)).toEqual(before.syscalls);
    expect(p.syscalls.at(-1)).toMatchObject({ names: [...URING_SYSCALLS], action: 'SCMP_ACT_ALLOW', args: [] });
    expect(out.describe).toBe(`Docker's default profile (${f}) + io_uring_setup, io_uring_enter, io_uring_register`);
  });

  it('a rule of the base that refuses one of them, or allows it only conditionally, loses that name and keeps the rest', () => {
    const f = join(WORK, 'errno.json');
    writeFileSync(
      f,
      JSON.stringify({
        defaultAction: 'SCMP_ACT_ERRNO',
        syscalls: [
          { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
          { names: ['io_uring_setup', 'keyctl'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
          { names: ['io_uring_enter'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
        ],
      }),
    );
    const p = JSON.parse(profileAllowing(URING_SYSCALLS, f).json) as Profile;
    expect(p.syscalls).toEqual([
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      { names: ['keyctl'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
      { names: [...URING_SYSCALLS], action: 'SCMP_ACT_ALLOW', args: [], comment: 'tcplab: the io_uring backend' },
    ]);
  });

  it('a missing base, one that is not JSON or not a profile: one line naming the file and what to do', () => {
    const gone = join(WORK, 'gone.json');
    expect(() => profileAllowing(URING_SYSCALLS, gone)).toThrow(
      `the lab allows io_uring_setup, io_uring_enter, io_uring_register on top of Docker's default seccomp profile, read from ${gone}: ENOENT (scripts/install-docker.sh puts Debian's there; or set TCPLAB_SECCOMP_BASE to your engine's profiles/seccomp/default.json)`,
    );
    const junk = join(WORK, 'junk.json');
    writeFileSync(junk, 'not json');
    expect(() => profileAllowing(URING_SYSCALLS, junk)).toThrow(/read from .*junk\.json: not JSON/);
    writeFileSync(junk, '{"syscalls": 3}');
    expect(() => profileAllowing(URING_SYSCALLS, junk)).toThrow(/: not a seccomp profile \(it needs defaultAction and a syscalls list/);
  });
});

describe('the io_uring backend under a seccomp profile on a real engine', () => {
  const rt = new DockerRuntime({ progress: () => {} });
  const runIds: string[] = [];
  afterAll(async () => {
    for (const id of runIds) await rt.destroy(id);
    expect((await execa('docker', ['ps', '-aq', '--filter', `label=tcplab.run=t${process.pid}-sc1`])).stdout.trim()).toBe('');
  });

  async function serverUnder(profile: string, n: number): Promise<Host> {
    const runId = `t${process.pid}-sc${n}`;
    runIds.push(runId);
    const lab = await rt.create({
      runId,
      subnet: `198.18.${20 + n}.0/24`,
      logDir: join(WORK, `logs-${n}`),
      hosts: [{ name: 'server', role: 'server', sysctls: [] }],
      seccomp: { server: profile },
    });
    const h = lab.host('server');
    expect((await execa('docker', ['inspect', '-f', '{{json .HostConfig.SecurityOpt}}', `tcplab-${runId}-server`])).stdout).toMatch(/^\["seccomp=\{/);
    // Filter mode (2) for the container's processes, not unconfined (0).
    expect((await h.exec(['grep', '^Seccomp:', '/proc/self/status'])).stdout).toMatch(/^Seccomp:\s+2\n$/);
    return h;
  }
  const serverArgv = (h: Host) => [...h.node('dist/server/main.js'), '--io', 'io_uring', '--port', '8080', '--control-port', '9090'];

  it('under the default without io_uring (as from engine 25.0) the server exits 2 with one line naming the seccomp filter', async () => {
    const h = await serverUnder(readFileSync(withoutUring(), 'utf8'), 1);
    const p = h.start(serverArgv(h), 'server');
    expect(await p.exited).toBe(2);
    const log = readFileSync(p.log, 'utf8').trim().split('\n');
    expect(log).toEqual([
      'tcplab-server: io_uring_setup EPERM: a seccomp filter refuses io_uring (Docker engines from 25.0 block it in their default profile); use io "epoll"',
    ]);
  }, 120_000);

  it("under the lab's profile made from it the server runs on io_uring and answers, and the default's other refusals stand", async () => {
    const h = await serverUnder(profileAllowing(URING_SYSCALLS, withoutUring()).json, 2);
    const p = h.start(serverArgv(h), 'server');
    try {
      let r;
      for (let i = 0; i < 100; i++) {
        r = await h.exec([...h.node('dist/lab/in-host/http-get.js'), 'http://127.0.0.1:8080/']);
        if (r.exitCode === 0) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      expect(r!.stdout).toBe('hello\n');
      const stats = await h.exec([...h.node('dist/lab/in-host/http-get.js'), 'http://127.0.0.1:9090/stats']);
      expect(JSON.parse(stats.stdout)).toMatchObject({ io: 'io_uring', state: 'listening' });
      // The default refuses unshare (CAP_SYS_ADMIN's); a new user namespace, which the kernel
      // alone would allow any user, is still refused: the profile is the default plus three.
      const un = await h.exec(['unshare', '--user', 'true']);
      expect([un.exitCode, un.stderr]).toEqual([1, expect.stringMatching(/unshare failed: Operation not permitted/)]);
    } finally {
      await p.stop();
    }
  }, 120_000);
});

describe('lab sweep with server.io io_uring on Docker', () => {
  let docker: Awaited<ReturnType<typeof baseline>>;
  beforeAll(async () => {
    docker = await baseline();
  });
  const labContainers = async () => (await docker.made()).join('\n');

  // examples/io-backends.yaml's io_uring half (its epoll points are Docker's every run), as it ships
  // (3 s loads: with 1 s, autocannon's start-up alone was 0.8 cores, and the rate its own limit).
  it("examples/io-backends.yaml's io_uring points: every verdict PASS, under the recorded profile", async () => {
    const lab = parseYaml(readFileSync(fileURLToPath(new URL('../../examples/io-backends.yaml', import.meta.url)), 'utf8')) as {
      sweep: { matrix: Record<string, unknown[]>; zip: Record<string, unknown[]> };
      server?: Record<string, unknown>;
    };
    expect(lab.sweep.matrix['server.io']).toEqual(['epoll', 'io_uring']);
    delete lab.sweep.matrix['server.io'];
    lab.server = { ...lab.server, io: 'io_uring' };
    const f = join(WORK, 'io-uring.yaml');
    writeFileSync(f, stringifyYaml({ ...lab, sweep: { zip: lab.sweep.zip } }));
    const r = await execa(process.execPath, [CLI, 'sweep', f, '--runtime', 'docker'], { reject: false, cwd: WORK });
    expect(r.exitCode, r.stderr).toBe(0);
    const dir = join(WORK, r.stdout.trim());
    const recs = readdirSync(join(dir, 'points'))
      .sort()
      .map((x) => JSON.parse(readFileSync(join(dir, 'points', x), 'utf8')) as PointRecord);
    expect(recs.map((p) => [p.config.server.io, p.config.server.model, p.server.stats?.io, p.hosts['server']!.seccomp ?? null])).toEqual(
      ['single', 'reuseport'].map((model) => ['io_uring', model, 'io_uring', expect.stringMatching(/^Docker's default profile \(.+\)/)]),
    );
    expectAllPass(recs);
    expect(await labContainers()).toBe('');
  }, 300_000);

  it('a base profile that is not there: one line, exit 2, no folder, nothing made', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'tcplab-seccomp-up-'));
    const r = await execa(process.execPath, [CLI, 'up', '--runtime', 'docker', '--io', 'io_uring', '--duration', '1'], {
      reject: false,
      cwd,
      env: { TCPLAB_SECCOMP_BASE: join(WORK, 'nowhere.json') },
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^lab up: the lab allows io_uring_setup.*nowhere\.json: ENOENT \(/)]);
    expect(readdirSync(cwd)).toEqual([]);
    expect(await labContainers()).toBe('');
  }, 60_000);
});
