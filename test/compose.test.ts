// The shipped docker-compose.yml, with whichever Compose is here (v2 `docker compose`, or
// Debian's docker-compose 1.29): it serves requests and the containers show its sysctls.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { existsSync } from 'node:fs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const project = `tcplabtest${process.pid}`;
let compose: string[];
const run = (args: string[]) =>
  execa(compose[0]!, [...compose.slice(1), '-p', project, '-f', 'docker-compose.yml', ...args], { cwd: ROOT, reject: false });

beforeAll(async () => {
  const v2 = await execa('docker', ['compose', 'version'], { reject: false });
  compose = v2.exitCode === 0 ? ['docker', 'compose'] : ['docker-compose'];
  const v = await execa(compose[0]!, [...compose.slice(1), 'version'], { reject: false });
  if (v.exitCode !== 0) throw new Error("no Compose here: `sudo bash scripts/install-docker.sh` installs Debian's docker-compose");
  // A project this test left when its run was killed (its pid gone) holds the file's subnet.
  const nets = await execa('docker', [
    'network',
    'ls',
    '--filter',
    'label=com.docker.compose.project',
    '--format',
    '{{.Label "com.docker.compose.project"}}',
  ]);
  for (const p of new Set(nets.stdout.split('\n'))) {
    const pid = /^tcplabtest(\d+)$/.exec(p)?.[1];
    if (pid && Number(pid) !== process.pid && !existsSync(`/proc/${pid}`))
      await execa(compose[0]!, [...compose.slice(1), '-p', p, '-f', 'docker-compose.yml', 'down', '-t', '0', '--remove-orphans'], { cwd: ROOT });
  }
  // The file uses the images `lab images` tags :latest.
  const im = await execa(process.execPath, ['dist/lab/bin.js', 'images'], { cwd: ROOT, reject: false });
  expect(im.exitCode, im.stderr).toBe(0);
}, 600_000);

afterAll(async () => {
  // -t 0: the loadgen's sleep (PID 1) ignores SIGTERM, and the engine would wait 10 s for it.
  await run(['down', '-t', '0', '--remove-orphans']);
});

describe('docker-compose.yml', () => {
  it('up: the loadgen drives the server, each container shows its own sysctls', async () => {
    const up = await run(['up', '-d']);
    expect(up.exitCode, up.stderr).toBe(0);
    let logs = '';
    for (let i = 0; i < 60 && !/requests in/.test(logs); i++) {
      await new Promise((r) => setTimeout(r, 500));
      logs = String((await run(['logs', 'loadgen'])).stdout);
    }
    const m = /(\d+)k requests in ([\d.]+)s/.exec(logs);
    expect(m, logs).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(10);
    const sysctl = async (svc: string, name: string) => String((await run(['exec', '-T', svc, 'sysctl', '-n', name])).stdout).trim();
    expect(await sysctl('server', 'net.core.somaxconn')).toBe('1024');
    expect(await sysctl('loadgen', 'net.core.somaxconn')).toBe('4096');
    expect(await sysctl('loadgen', 'net.ipv4.tcp_tw_reuse')).toBe('1');
    expect((await sysctl('loadgen', 'net.ipv4.ip_local_port_range')).split(/\s+/)).toEqual(['20000', '60999']);
    expect(String((await run(['exec', '-T', 'server', 'id', '-u'])).stdout).trim()).toBe('10001');
  }, 120_000);
});
