// Apply, read back, snapshot and diff on real network namespaces; the machine's own
// sysctls stay byte-identical.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { applySettings, diffSnapshots, differsFromKernelDefault, netnsTarget, readSysctl, snapshot } from '../../sysctl/apply.js';
import { parseSetting, TUNABLES } from '../../sysctl/registry.js';
import { createNetns, type TestNetns } from '../helpers/netns.js';

const procPath = (name: string) => `/proc/sys/${name.replace(/\./g, '/')}`;
function rootValues(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of TUNABLES) {
    try {
      out[t.name] = readFileSync(procPath(t.name), 'utf8');
    } catch {
      out[t.name] = '<absent>';
    }
  }
  return out;
}

let serverNs: TestNetns;
let clientNs: TestNetns;
const rootBefore = rootValues();

beforeAll(() => {
  serverNs = createNetns('sysctl-srv');
  clientNs = createNetns('sysctl-cli');
});
afterAll(() => {
  serverNs.remove();
  clientNs.remove();
  // The machine's own values never changed.
  expect(rootValues()).toEqual(rootBefore);
});

describe('apply and read back', () => {
  it('applies server sysctls there, and only there', async () => {
    const server = netnsTarget(serverNs.name, 'server');
    const client = netnsTarget(clientNs.name, 'loadgen');
    const before = await snapshot(server);
    const applied = await applySettings(server, [
      parseSetting('net.core.somaxconn=128'),
      parseSetting('net.ipv4.tcp_syncookies=2'),
      parseSetting('net.ipv4.ip_local_port_range=20000 20100'),
    ]);
    expect(applied).toEqual([
      { name: 'net.core.somaxconn', requested: '128', readBack: '128' },
      { name: 'net.ipv4.tcp_syncookies', requested: '2', readBack: '2' },
      { name: 'net.ipv4.ip_local_port_range', requested: '20000 20100', readBack: '20000 20100' },
    ]);
    const after = await snapshot(server);
    expect(diffSnapshots(before, after)).toEqual([
      { name: 'net.core.somaxconn', before: '4096', after: '128' },
      { name: 'net.ipv4.tcp_syncookies', before: '1', after: '2' },
      { name: 'net.ipv4.ip_local_port_range', before: '32768 60999', after: '20000 20100' },
    ]);
    expect(differsFromKernelDefault(after).map((c) => c.name)).toEqual([
      'net.core.somaxconn',
      'net.ipv4.tcp_syncookies',
      'net.ipv4.ip_local_port_range',
    ]);
    // The loadgen's namespace still has the kernel defaults.
    expect(differsFromKernelDefault(await snapshot(client))).toEqual([]);
    expect(await readSysctl(client, 'net.core.somaxconn')).toBe('4096');
  });

  it('a fresh namespace starts from kernel defaults, and machine-dependent ones are read', async () => {
    const s = await snapshot(netnsTarget(clientNs.name));
    for (const t of TUNABLES.filter((x) => x.scope === 'netns')) {
      if (t.kernelDefault) expect(s[t.name], t.name).toBe(t.kernelDefault);
      else expect(s[t.name], t.name).toMatch(/^\d+$/);
    }
  });

  it('reports what the kernel lacks here as unsupported, without failing', async () => {
    const t = netnsTarget(clientNs.name);
    expect(await readSysctl(t, 'net.core.netdev_max_backlog')).toBeNull();
    await expect(
      applySettings(t, [
        { name: 'net.core.netdev_max_backlog', value: '5000', tunable: TUNABLES.find((x) => x.name === 'net.core.netdev_max_backlog')! },
      ]),
    ).rejects.toThrow(/net.core.netdev_max_backlog does not exist on this kernel \(unsupported\)/);
  });

  it('a write the kernel ignores while sysctl exits 0 is caught by the read-back', async () => {
    // On this kernel `sysctl -q -w net.core.rmem_max=1000` in a namespace exits 0 and
    // changes nothing (the entry is read-only there).
    const t = netnsTarget(clientNs.name, 'loadgen');
    const rmem = TUNABLES.find((x) => x.name === 'net.core.rmem_max')!;
    await expect(applySettings(t, [{ name: rmem.name, value: '1000', tunable: rmem }])).rejects.toThrow(
      /^loadgen: net.core.rmem_max reads back "\d+" after setting "1000"$/,
    );
  });

  it('refuses to write in the machine’s own namespace', async () => {
    // A target that runs commands right here, in our own namespace:
    const { execa } = await import('execa');
    const own = {
      label: 'root',
      exec: async (argv: string[]) => {
        const r = await execa(argv[0]!, argv.slice(1), { reject: false });
        return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode ?? -1 };
      },
    };
    await expect(applySettings(own, [parseSetting('net.core.somaxconn=64')])).rejects.toThrow(
      /refusing to write sysctls in the machine's own network namespace/,
    );
    expect(readFileSync('/proc/sys/net/core/somaxconn', 'utf8')).toBe(rootBefore['net.core.somaxconn']);
  });
});
