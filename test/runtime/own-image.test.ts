// A user's own image as the Docker server host (server.kind command, server.image), on a real
// engine: the image is one static binary FROM scratch (test/fixtures/own-server), so nothing
// of the lab is in it. The lab's tools join it from a container of their own (its network
// and process namespaces): its sysctls read back, its listener's processes found, SIGSTOP'd
// for the backlog rule, its CPU counted; bad input is one line, exit 2, nothing made.
import { expectAllPass } from '../helpers/verdicts.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { PointRecord } from '../../lab/pipeline/record.js';
import { baseline } from '../helpers/leftovers.js';

const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../fixtures/own-server/', import.meta.url));
const WORK = mkdtempSync(join(tmpdir(), 'tcplab-own-image-'));
const IMAGE = `tcplab-test-own:${process.pid}`;
const EXAMPLE_IMAGE = 'tcplab-own-hello';
let hadExampleImage = false;

let docker: Awaited<ReturnType<typeof baseline>>;
beforeAll(async () => {
  docker = await baseline();
});
const labContainers = async () => (await docker.made()).join('\n');

async function sweep(name: string, text: string) {
  writeFileSync(join(WORK, name), text);
  return execa(process.execPath, [CLI, 'sweep', join(WORK, name)], { reject: false, cwd: WORK });
}

function records(stdout: string): PointRecord[] {
  const dir = join(WORK, stdout.trim());
  return readdirSync(join(dir, 'points'))
    .sort()
    .map((x) => JSON.parse(readFileSync(join(dir, 'points', x), 'utf8')) as PointRecord);
}

beforeAll(async () => {
  // The user's build: a static binary, then an image holding nothing else.
  const ctx = mkdtempSync(join(tmpdir(), 'tcplab-own-ctx-'));
  await execa('cc', ['-static', '-O2', '-o', join(ctx, 'hello'), join(FIXTURE, 'hello.c')]);
  copyFileSync(join(FIXTURE, 'Dockerfile'), join(ctx, 'Dockerfile'));
  await execa('docker', ['build', '-q', '-t', IMAGE, ctx]);
  // The name examples/own-image.yaml uses, as its comment builds it (kept if it was there).
  hadExampleImage = (await execa('docker', ['image', 'inspect', EXAMPLE_IMAGE], { reject: false })).exitCode === 0;
  if (!hadExampleImage) await execa('docker', ['tag', IMAGE, EXAMPLE_IMAGE]);
}, 120_000);

afterAll(async () => {
  await execa('docker', ['rmi', '-f', IMAGE], { reject: false });
  if (!hadExampleImage) await execa('docker', ['rmi', EXAMPLE_IMAGE], { reject: false });
});

describe('server.image on the docker runtime', () => {
  it('throughput: the requests wrk made, the image server CPU counted; server.command becomes its CMD', async () => {
    // The image's entrypoint is /hello: a CMD is its arguments, which it ignores; {port} is filled in.
    const r = await sweep(
      'own-load.yaml',
      `runtime: docker\nscenario: {name: throughput}\nserver: {kind: command, image: ${IMAGE}, command: ['--port', '{port}']}\nloadgens: [{tool: wrk, options: {connections: 8, duration: 2}}]\n`,
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const [p] = records(r.stdout);
    const load = p!.scenario.load!.result;
    expect(load.requests).toBeGreaterThan(1000);
    expect(Object.values(load.errors).reduce((a, b) => a + b, 0)).toBe(0);
    expect(p!.server.cpuSec).toBeGreaterThan(0);
    expect(p!.server.processes!.pids).toHaveLength(1);
    const log = readFileSync(join(WORK, r.stdout.trim(), 'logs', p!.id, 'server-server.log'), 'utf8');
    expect(log).toContain('hello: listening on 8080, backlog 511, args: --port 8080');
    expect(await labContainers()).toBe('');
  }, 120_000);

  // The backlog rule on a server from an image with none of the lab in it (paused by SIGSTOP).
  it("examples/own-image.yaml, its backlog below somaxconn and above: every verdict PASS, Send-Q = min(backlog, somaxconn) on the image's own listener, its one process found", async () => {
    // The example's two axes zipped to 2 of its 4 points: 16 under 1024, and 100 capped at 64.
    const lab = parseYaml(readFileSync(fileURLToPath(new URL('../../examples/own-image.yaml', import.meta.url)), 'utf8')) as {
      sweep: { matrix: Record<string, number[]> };
    };
    expect(lab.sweep.matrix).toEqual({ 'server.backlog': [16, 100], 'server.sysctls.net.core.somaxconn': [64, 1024] });
    const f = join(WORK, 'own-image.yaml');
    writeFileSync(f, stringifyYaml({ ...lab, sweep: { zip: { 'server.backlog': [16, 100], 'server.sysctls.net.core.somaxconn': [1024, 64] } } }));
    const r = await execa(process.execPath, [CLI, 'sweep', f], {
      reject: false,
      cwd: WORK,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr.trim().split('\n').pop()).toMatch(/^lab sweep: 2 point run\(s\) done, 0 with a FAIL verdict; report: /);
    const recs = records(r.stdout);
    expect(recs.map((p) => [p.config.server.backlog, p.hosts['server']!.sysctls.readBack['net.core.somaxconn'], p.server.listener?.sendQ])).toEqual([
      [16, '1024', 16],
      [100, '64', 64],
    ]);
    expectAllPass(recs);
    // The backlog the image's server passed, read from its listen() call as the container started (bpftrace, root).
    expect(recs.map((p) => [p.server.listen?.method, p.server.listen?.backlog])).toEqual(
      [16, 100].map((b) => ['listen() syscall', { value: b, exact: true }]),
    );
    for (const p of recs) {
      expect(p.server.kind).toBe('command');
      // One process (the binary; the engine's init is not the listener's) found across the shared pid namespace.
      expect(p.server.processes!.processes).toBe(1);
      const log = readFileSync(join(WORK, r.stdout.trim(), 'logs', p.id, 'server-server.log'), 'utf8');
      expect(log).toContain(`hello: listening on 8080, backlog ${p.config.server.backlog}`);
    }
    expect(await labContainers()).toBe('');
  }, 180_000);

  it('bad input: an image the engine lacks, or an image on netns, is one line naming server.image, exit 2, nothing made', async () => {
    const missing = await sweep(
      'own-missing.yaml',
      'runtime: docker\nscenario: {name: throughput}\nserver: {kind: command, image: tcplab-no-such-image:0}\noutput: missing-out\n',
    );
    expect([missing.exitCode, missing.stderr.trim()]).toEqual([
      2,
      'lab sweep: server.image: no image tcplab-no-such-image:0 on the Docker engine: build it there (docker build -t tcplab-no-such-image:0 …) or docker load it; the lab pulls nothing',
    ]);
    expect(existsSync(join(WORK, 'missing-out'))).toBe(false);
    const netns = await sweep(
      'own-netns.yaml',
      `runtime: netns\nscenario: {name: throughput}\nserver: {kind: command, image: ${IMAGE}}\noutput: netns-out\n`,
    );
    expect(netns.exitCode).toBe(2);
    expect(netns.stderr.trim().split('\n')).toHaveLength(1);
    expect(netns.stderr).toMatch(
      /server\.image: got ".*": runtime docker \(the netns runtime runs no image: give server\.command, an argv, instead\)/,
    );
    const bad = await sweep('own-bad.yaml', 'runtime: docker\nscenario: {name: throughput}\nserver: {kind: command, image: "Not An Image"}\n');
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/server\.image: got "Not An Image": a Docker image reference like my-server:1\.0/);
    expect(existsSync(join(WORK, 'netns-out'))).toBe(false);
    expect(await labContainers()).toBe('');
  }, 60_000);
});
