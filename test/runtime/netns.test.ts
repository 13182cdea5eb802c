// The netns runtime on real namespaces: topology, sysctls per host, processes, and
// clean-up from names alone (also after the creating process was SIGKILLed).
import { describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { alive, NetnsRuntime, PREFIX } from '../../lab/runtime/netns.js';
import { hostAddress } from '../../lab/runtime/runtime.js';
import { parseListeners } from '../../lab/observe/ss.js';
import { parseSetting, TUNABLES } from '../../sysctl/registry.js';
import { readSysctl } from '../../sysctl/apply.js';

const MAIN = fileURLToPath(new URL('../../dist/server/main.js', import.meta.url));
const rootLinks = () =>
  execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(':')[1]?.trim())
    .filter(Boolean)
    .sort();
const labNamespaces = (runId: string) =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith(`${PREFIX}.${runId}.`));
const runId = (tag: string) => `t${process.pid}-${tag}`;

describe('netns runtime', () => {
  const rt = new NetnsRuntime();

  it('addresses', () => {
    expect(hostAddress('198.18.0.0/24', 0)).toBe('198.18.0.1');
    expect(() => hostAddress('198.18.0.0/16', 0)).toThrow('subnet: got "198.18.0.0/16": an IPv4 /24 like 198.18.0.0/24');
  });

  it('a server and a loadgen host: HTTP across the bridge, sysctls only where asked, nothing in the root namespace', async () => {
    await rt.check();
    const before = rootLinks();
    const id = runId('up');
    const logDir = mkdtempSync(join(tmpdir(), 'tcplab-rt-'));
    const lab = await rt.create({
      runId: id,
      subnet: '198.18.5.0/24',
      logDir,
      hosts: [
        { name: 'server', role: 'server', sysctls: [parseSetting('net.core.somaxconn=128')] },
        { name: 'loadgen-1', role: 'loadgen', sysctls: [parseSetting('net.ipv4.tcp_tw_reuse=1')] },
      ],
    });
    try {
      const server = lab.host('server');
      const loadgen = lab.host('loadgen-1');
      expect([server.address, loadgen.address]).toEqual(['198.18.5.1', '198.18.5.2']);
      expect(rootLinks()).toEqual(before);
      expect(await readSysctl(server, 'net.core.somaxconn')).toBe('128');
      expect(await readSysctl(loadgen, 'net.core.somaxconn')).toBe('4096');
      expect(await readSysctl(loadgen, 'net.ipv4.tcp_tw_reuse')).toBe('1');
      expect(await readSysctl(server, 'net.ipv4.tcp_tw_reuse')).toBe('2');

      const proc = server.start([process.execPath, MAIN, '--host', server.address, '--port', '8080', '--control-port', '9090'], 'server');
      let body = '';
      for (let i = 0; i < 100 && body !== 'hello\n'; i++) {
        const r = await loadgen.exec([
          process.execPath,
          '-e',
          `fetch('http://${server.address}:8080/').then(r => r.text()).then(t => process.stdout.write(t), () => {})`,
        ]);
        body = r.stdout;
        if (body !== 'hello\n') await new Promise((r) => setTimeout(r, 50));
      }
      expect(body).toBe('hello\n');
      // Send-Q = min(511, somaxconn 128) on the server host.
      const ss = await server.exec(['ss', '-ltn']);
      expect(parseListeners(ss.stdout).find((l) => l.port === 8080)).toMatchObject({ sendQ: 128 });
      expect(readFileSync(join(logDir, 'server-server.log'), 'utf8')).toMatch(/"event":"listening"/);

      const listed = (await rt.list()).find((l) => l.runId === id);
      expect(listed?.hosts.map((h) => h.name).sort()).toEqual(['loadgen-1', 'server']);
      expect(listed?.hosts.find((h) => h.name === 'server')?.pids.length).toBeGreaterThan(0);

      await proc.stop();
      expect(await proc.exited).toBe(0);
    } finally {
      await lab.destroy();
    }
    expect(labNamespaces(id)).toEqual([]);
    expect(rootLinks()).toEqual(before);
  });

  it('a sysctl the kernel ignores fails the creation and leaves nothing', async () => {
    const id = runId('bad');
    const rmem = TUNABLES.find((t) => t.name === 'net.core.rmem_max')!;
    await expect(
      rt.create({
        runId: id,
        subnet: '198.18.6.0/24',
        logDir: tmpdir(),
        hosts: [{ name: 'server', role: 'server', sysctls: [{ name: rmem.name, value: '1000', tunable: rmem }] }],
      }),
    ).rejects.toThrow(/server: net.core.rmem_max reads back/);
    expect(labNamespaces(id)).toEqual([]);
  });

  it('`lab status` lists a lab and `lab down` removes it', async () => {
    const id = runId('cli');
    const lab = await rt.create({ runId: id, subnet: '198.18.8.0/24', logDir: tmpdir(), hosts: [{ name: 'server', role: 'server', sysctls: [] }] });
    const LAB = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
    const status = JSON.parse(execFileSync(process.execPath, [LAB, 'status', '--json'], { encoding: 'utf8' })) as Array<{ runId: string }>;
    expect(status.map((l) => l.runId)).toContain(id);
    const down = spawn(process.execPath, [LAB, 'down', id], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    down.stderr!.on('data', (b) => (err += b));
    expect((await once(down, 'exit'))[0]).toBe(0);
    expect(err).toBe(`lab down: removed 2 namespace(s) of run ${id}\n`);
    expect(labNamespaces(id)).toEqual([]);
    expect(lab.runId).toBe(id);
  });

  it('`lab down` that cannot remove a namespace names it and exits 1; the rest still goes, and a second `lab down` finishes', async () => {
    const id = runId('stuck');
    await rt.create({ runId: id, subnet: '198.18.9.0/24', logDir: tmpdir(), hosts: [{ name: 'server', role: 'server', sysctls: [] }] });
    const [stuck] = labNamespaces(id).filter((n) => n.endsWith('.server'));
    // A second mount on the namespace's file: `ip netns del` detaches one, then unlink() meets
    // the other (EBUSY), as with a namespace file some other tool bind-mounted.
    const file = `/run/netns/${stuck}`;
    execFileSync('mount', ['--bind', file, file]);
    const LAB = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
    const run = async () => {
      const down = spawn(process.execPath, [LAB, 'down', id], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      down.stderr!.on('data', (b) => (err += b));
      return { code: (await once(down, 'exit'))[0] as number, err };
    };
    try {
      const first = await run();
      expect(first.code).toBe(1);
      expect(first.err.split('\n')).toEqual([
        `lab down: removed 1 namespace(s) of run ${id}`,
        expect.stringMatching(new RegExp(`^lab down: could not remove namespace ${stuck!.replace(/\./g, '\\.')} \\(ip netns del .*busy`, 'i')),
        '',
      ]);
      expect(labNamespaces(id)).toEqual([stuck]);
    } finally {
      execFileSync('umount', ['-l', file]);
    }
    expect(await run()).toEqual({ code: 0, err: `lab down: removed 1 namespace(s) of run ${id}\n` });
    expect(labNamespaces(id)).toEqual([]);
  });

  it('destroy() finds a lab from its names after its creator was SIGKILLed', async () => {
    const id = runId('crash');
    const mod = fileURLToPath(new URL('../../dist/lab/runtime/netns.js', import.meta.url));
    const helper = fileURLToPath(new URL('../helpers/lab-crash.mjs', import.meta.url));
    const child = spawn(process.execPath, [helper, mod, id, mkdtempSync(join(tmpdir(), 'tcplab-rt-'))], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
    const { pid } = JSON.parse(line) as { pid: number };
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(labNamespaces(id)).toHaveLength(3);
    expect(alive(pid)).toBe(true); // the lab's process outlived its creator
    expect(await rt.destroy(id)).toBe(3);
    expect(labNamespaces(id)).toEqual([]);
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
  });
});
