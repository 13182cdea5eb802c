// A machine without liburing-dev: the addon builds with epoll only and says so in one line;
// io "io_uring" is then refused in one line (exit 2) by the reactor, the server process and
// the lab, before anything is made. The build runs in a mount namespace where liburing's
// files are not there (test/helpers/without-liburing.sh); the machine keeps its own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HIDE = fileURLToPath(new URL('../helpers/without-liburing.sh', import.meta.url));
const NO_URING =
  'the addon was built without liburing-dev (add it: sudo apt-get install liburing-dev && npm run rebuild:native)';

describe.skipIf(process.getuid?.() !== 0)('without liburing-dev (needs root: a mount namespace hides it)', () => {
  // A copy of what the build and the lab read: the sources, the built JavaScript, and the
  // dependencies (linked). Its own build/ folder: the checkout's addon is not touched.
  const dir = mkdtempSync(join(tmpdir(), 'tcplab-no-uring-'));
  for (const f of ['CMakeLists.txt', 'package.json', 'native', 'dist']) cpSync(join(ROOT, f), join(dir, f), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  mkdirSync(join(dir, 'results'));
  let build: { exitCode?: number; all?: string };
  beforeAll(async () => {
    build = await execa('unshare', ['-m', '--propagation', 'private', 'bash', HIDE, 'npm', 'run', 'build:native'], { cwd: dir, all: true, reject: false });
  }, 240_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const lab = (args: string[]) => execa(process.execPath, [join(dir, 'dist/lab/bin.js'), ...args], { cwd: dir, reject: false });

  it('the build says in one line what is missing and how to add it; the addon has epoll only', async () => {
    expect(build.exitCode, build.all).toBe(0);
    expect(build.all!.split('\n').filter((l) => l.startsWith('tcplab:'))).toEqual([
      `tcplab: building without the io_uring backend: liburing-dev is missing (add it: sudo apt-get install liburing-dev && npm run rebuild:native)`,
    ]);
    const probe = await execa(process.execPath, [
      '-e',
      `const a = require(${JSON.stringify(join(dir, 'build/Release/tcplab_native.node'))});
       let msg = null; try { new a.Server({ io: 'io_uring' }); } catch (e) { msg = e.message; }
       console.log(JSON.stringify({ backends: a.ioBackends, msg }));`,
    ]);
    expect(JSON.parse(probe.stdout)).toEqual({ backends: ['epoll'], msg: `option \`io\` must be "epoll" in this build, got "io_uring": ${NO_URING}` });
  });

  it('lab up --io io_uring: one line, exit 2, no run folder; lab up on epoll reaches its summary', async () => {
    const r = await lab(['up', '--runtime', 'netns', '--io', 'io_uring', '--duration', '1']);
    expect([r.exitCode, r.stdout, r.stderr.trim().split('\n')]).toEqual([
      2,
      '',
      [`lab up: server.io must be "epoll" on netns with this build, got "io_uring": ${NO_URING}`],
    ]);
    const up = await lab(['up', '--runtime', 'netns', '--duration', '1', '--connections', '2']);
    expect(up.exitCode, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/^verdicts \(throughput\)$/m);
  }, 120_000);

  it('the server process: --io io_uring is one line and exit 2', async () => {
    const r = await execa(process.execPath, [join(dir, 'dist/server/main.js'), '--io', 'io_uring', '--port', '0', '--control-port', '0'], { reject: false });
    expect([r.exitCode, r.stderr.trim().split('\n').length]).toEqual([2, 1]);
    expect(r.stderr).toContain(NO_URING);
  });
});
