// The registry: names, allowed values, and the one-line errors.
import { describe, expect, it } from 'vitest';
import { closeMatches, lookup, parseSetting, TUNABLES, validateValue } from '../../sysctl/registry.js';

describe('registry', () => {
  it('has every tunable the lab needs, each described', () => {
    for (const n of [
      'net.core.somaxconn',
      'net.ipv4.tcp_max_syn_backlog',
      'net.ipv4.tcp_syncookies',
      'net.ipv4.tcp_abort_on_overflow',
      'net.ipv4.tcp_tw_reuse',
      'net.ipv4.tcp_tw_reuse_delay',
      'net.ipv4.tcp_timestamps',
      'net.ipv4.tcp_fin_timeout',
      'net.ipv4.tcp_max_tw_buckets',
      'net.ipv4.ip_local_port_range',
      'net.ipv4.tcp_synack_retries',
      'net.ipv4.tcp_syn_retries',
      'net.ipv4.tcp_syn_linear_timeouts',
      'net.core.netdev_max_backlog',
      'net.core.rmem_max',
    ]) {
      expect(lookup(n).meaning.length).toBeGreaterThan(10);
    }
    for (const t of TUNABLES) {
      if (t.kernelDefault !== undefined) expect(validateValue(t, t.kernelDefault)).toBe(t.kernelDefault);
      if (t.scope === 'global') expect(t.whyGlobal).toBeTruthy();
    }
  });

  it('normalizes values to what the kernel prints', () => {
    expect(parseSetting('net.ipv4.ip_local_port_range=1024  2048').value).toBe('1024 2048');
    expect(parseSetting('net.ipv4.ip_local_port_range=1024-2048').value).toBe('1024 2048');
    expect(parseSetting('net/core/somaxconn= 0128').value).toBe('128');
    expect(parseSetting('net/core/somaxconn=128').name).toBe('net.core.somaxconn');
  });

  const bad: Array<[string, string]> = [
    [
      'net.ipv4.tcp_syncookies=7',
      'net.ipv4.tcp_syncookies: got "7": one of 0 (never send SYN cookies), 1 (send cookies when the SYN queue is full), 2 (answer every SYN with a cookie)',
    ],
    [
      'net.ipv4.tcp_abort_on_overflow=yes',
      'net.ipv4.tcp_abort_on_overflow: got "yes": one of 0 (drop the final ACK; the client retries), 1 (answer the final ACK with RST)',
    ],
    ['net.core.somaxconn=-1', 'net.core.somaxconn: got "-1": an integer >= 0'],
    ['net.core.somaxconn=1e3', 'net.core.somaxconn: got "1e3": an integer >= 0'],
    ['net.ipv4.tcp_synack_retries=300', 'net.ipv4.tcp_synack_retries: got "300": an integer from 0 to 255'],
    [
      'net.ipv4.ip_local_port_range=5000 4000',
      'net.ipv4.ip_local_port_range: got "5000 4000": two ports "LOW HIGH" from 1 to 65535 with LOW <= HIGH',
    ],
    ['net.ipv4.ip_local_port_range=5000', 'net.ipv4.ip_local_port_range: got "5000": two ports "LOW HIGH" from 1 to 65535 with LOW <= HIGH'],
    ['net.core.somaxcon=128', 'unknown sysctl `net.core.somaxcon`; did you mean `net.core.somaxconn`? (`lab sysctls` lists them)'],
    [
      'net.core.netdev_max_backlog=5000',
      "net.core.netdev_max_backlog cannot be set per host: it exists only in the initial network namespace; the lab never changes the machine's own sysctls",
    ],
    [
      'net.core.rmem_max=1000',
      "net.core.rmem_max cannot be set per host: it is read-only inside a network namespace; the lab never changes the machine's own sysctls",
    ],
    ['somaxconn', 'expected NAME=VALUE (e.g. net.core.somaxconn=128), got "somaxconn"'],
  ];
  for (const [input, message] of bad) {
    it(`rejects ${input}`, () => {
      expect(() => parseSetting(input)).toThrow(message);
    });
  }

  it('suggests close names, also from the last part alone', () => {
    expect(closeMatches('net.ipv4.tcp_tw_resue')).toContain('net.ipv4.tcp_tw_reuse');
    expect(closeMatches('net.core.tcp_syncookies')[0]).toBe('net.ipv4.tcp_syncookies');
  });
});
