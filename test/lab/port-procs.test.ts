// How the lab finds and pauses a server it did not build: the processes holding a listening
// socket (lab/in-host/port-procs), and the nginx configuration it writes (checked by nginx -t).
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { portProcs } from '../../lab/in-host/port-procs.js';
import { NGINX, nginxConf } from '../../lab/pipeline/server-host.js';
import { validateLab } from '../../lab/plan/labfile.js';

const SCRIPT = fileURLToPath(new URL('../../dist/lab/in-host/port-procs.js', import.meta.url));
const state = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[0];

describe('port-procs', () => {
  it('finds this process by the socket it listens on, and nothing on a port nobody listens on', async () => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as { port: number }).port;
    try {
      const p = portProcs(port);
      expect(p.pids).toEqual([process.pid]);
      expect(p.threads).toBeGreaterThan(1);
      expect(p.rssKb).toBeGreaterThan(1000);
      expect(p.cpu.userSec + p.cpu.systemSec).toBeGreaterThan(0);
    } finally {
      srv.close();
    }
    await once(srv, 'close');
    expect(portProcs(port).pids).toEqual([]);
  });

  it('STOP and CONT pause and resume the process that listens (a child here), and only it', async () => {
    const child = spawn(
      process.execPath,
      ['-e', "require('net').createServer().listen(0, '127.0.0.1', function () { console.log(this.address().port) })"],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      const [line] = (await once(child.stdout!, 'data')) as [Buffer];
      const port = Number(line.toString().trim());
      const stat = await execa(process.execPath, [SCRIPT, String(port), 'stat']);
      expect((JSON.parse(stat.stdout) as { pids: number[] }).pids).toEqual([child.pid]);
      expect((await execa(process.execPath, [SCRIPT, String(port), 'STOP'])).exitCode).toBe(0);
      expect(state(child.pid!)).toBe('T');
      expect(state(process.pid)).not.toBe('T');
      expect((await execa(process.execPath, [SCRIPT, String(port), 'CONT'])).exitCode).toBe(0);
      expect(state(child.pid!)).not.toBe('T');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('bad usage: exit 2 and one line; STOP with nobody listening: exit 1, says so', async () => {
    const bad = await execa(process.execPath, [SCRIPT, '0', 'stat'], { reject: false });
    expect([bad.exitCode, bad.stderr.trim()]).toEqual([2, 'usage: port-procs.js PORT stat|STOP|CONT']);
    const none = await execa(process.execPath, [SCRIPT, '1', 'STOP'], { reject: false });
    expect([none.exitCode, none.stderr.trim()]).toEqual([1, 'port-procs: no process listens on port 1']);
  });
});

describe('the nginx configuration', () => {
  it.each(['accept', 'exclusive', 'reuseport'] as const)(
    'share %s: nginx -t accepts it, with the workers, backlog and sharing asked for',
    async (share) => {
      const dir = mkdtempSync(join(tmpdir(), 'tcplab-nginx-'));
      const lab = validateLab({ scenario: { name: 'backlog' }, server: { kind: 'nginx', threads: 3, backlog: 77, share } }, { file: 'test.yaml' });
      const conf = nginxConf(lab.server, dir, true);
      expect(conf).toContain('user root;');
      expect(conf).toContain('worker_processes 3;');
      expect(conf).toContain(`listen 0.0.0.0:8080 backlog=77${share === 'reuseport' ? ' reuseport' : ''};`);
      expect(conf).toContain(`accept_mutex ${share === 'accept' ? 'on' : 'off'};`);
      writeFileSync(join(dir, 'nginx.conf'), conf);
      const t = await execa(NGINX, ['-t', '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], { reject: false });
      expect(t.stderr, t.stderr).toMatch(/test is successful/);
      expect(t.exitCode).toBe(0);
    },
  );
});
