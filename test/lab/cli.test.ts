// The CLI's argv parser (a pure function: no process, no host, no file) and the one-message
// rule: a bad value gets the same words from a flag as from the lab-file field it sets.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommand } from '../../lab/commands/cli.js';
import { InputError } from '../../core/errors.js';
import { loadLabFile } from '../../lab/plan/labfile.js';
import { loadOptions } from '../../lab/loadgen/result.js';

const dir = mkdtempSync(join(tmpdir(), 'tcplab-cli-'));
const labFile = (name: string, text: string) => {
  const f = join(dir, `${name.replace(/\W+/g, '-')}.yaml`);
  writeFileSync(f, text);
  return f;
};
const errorOf = (f: () => unknown): InputError => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error('no error thrown');
};

describe('the same bad value: one message from a flag and from a lab file', () => {
  // [flags of `lab up`, the flag the message names, lab file text, the field path it names, what both say after it]
  it.each([
    [['--threads', '0'], '--threads', 'server: {threads: 0}', 'server.threads', 'got 0: an integer from 1 to 256'],
    [['--threads', '1.5'], '--threads', 'server: {threads: 1.5}', 'server.threads', 'got 1.5: an integer from 1 to 256'],
    [['--backlog', 'many'], '--backlog', 'server: {backlog: many}', 'server.backlog', 'got "many": an integer from -2147483648 to 2147483647'],
    [
      ['--backlog', '2147483648'],
      '--backlog',
      'server: {backlog: 2147483648}',
      'server.backlog',
      'got 2147483648: an integer from -2147483648 to 2147483647',
    ],
    [
      ['--model', 'fast'],
      '--model',
      'server: {model: fast}',
      'server.model',
      'got "fast": one of single, reuseport, acceptor, workers, reactors+workers, reactor-procs, iterative, fork, thread, prethread, prefork',
    ],
    [['--trigger', 'both'], '--trigger', 'server: {trigger: both}', 'server.trigger', 'got "both": one of edge, level'],
    [['--idle-timeout', '-1'], '--idle-timeout', 'server: {idleTimeoutMs: -1}', 'server.idleTimeoutMs', 'got -1: an integer from 0 to 86400000'],
    [['--port', '0'], '--port', 'server: {port: 0}', 'server.port', 'got 0: an integer from 1 to 65535'],
    [['--control-port', '70000'], '--control-port', 'server: {controlPort: 70000}', 'server.controlPort', 'got 70000: an integer from 1 to 65535'],
    [['--port', '9090'], '--control-port', 'server: {port: 9090}', 'server.controlPort', "got 9090: a port other than the server's HTTP port (9090)"],
    [['--runtime', 'lxc'], '--runtime', 'runtime: lxc', 'runtime', 'got "lxc": one of auto, netns, docker, rootless, swarm'],
    [['--subnet', '10.0.0.0/16'], '--subnet', 'subnet: 10.0.0.0/16', 'subnet', 'got "10.0.0.0/16": an IPv4 /24 like 198.18.0.0/24'],
    [['--subnet', '198.300.0.0/24'], '--subnet', 'subnet: 198.300.0.0/24', 'subnet', 'got "198.300.0.0/24": an IPv4 /24 like 198.18.0.0/24'],
    [['--sample-interval', '5'], '--sample-interval', 'sampleIntervalMs: 5', 'sampleIntervalMs', 'got 5: an integer from 10 to 10000'],
    [
      ['--loadgen', 'siege'],
      '--loadgen',
      'loadgens: [{tool: siege}]',
      'loadgens.0.tool',
      'got "siege": one of autocannon, ab, wrk, wrk2, arrivals, httperf',
    ],
    [
      ['--connections', '0'],
      '--connections',
      'loadgens: [{options: {connections: 0}}]',
      'loadgens.0.options.connections',
      'got 0: an integer from 1 to 100000',
    ],
    [
      ['--duration', 'ten'],
      '--duration',
      'loadgens: [{options: {duration: ten}}]',
      'loadgens.0.options.duration',
      'got "ten": an integer from 1 to 3600',
    ],
    [['--rate', '0'], '--rate', 'loadgens: [{options: {rate: 0}}]', 'loadgens.0.options.rate', 'got 0: an integer from 1 to 10000000'],
    [
      ['--pipelining', '2000'],
      '--pipelining',
      'loadgens: [{options: {pipelining: 2000}}]',
      'loadgens.0.options.pipelining',
      'got 2000: an integer from 1 to 1024',
    ],
    [
      ['--loadgen-threads', '65'],
      '--loadgen-threads',
      'loadgens: [{options: {threads: 65}}]',
      'loadgens.0.options.threads',
      'got 65: an integer from 1 to 64',
    ],
    [
      ['--server-sysctl', 'net.ipv4.tcp_syncookies=3'],
      '--server-sysctl net.ipv4.tcp_syncookies',
      'server: {sysctls: {net.ipv4.tcp_syncookies: 3}}',
      'server.sysctls.net.ipv4.tcp_syncookies',
      'got 3: one of 0 (never send SYN cookies), 1 (send cookies when the SYN queue is full), 2 (answer every SYN with a cookie)',
    ],
    [
      ['--server-sysctl', 'net.core.somaxconx=5'],
      '--server-sysctl net.core.somaxconx',
      'server: {sysctls: {net.core.somaxconx: 5}}',
      'server.sysctls.net.core.somaxconx',
      'unknown sysctl `net.core.somaxconx`; did you mean `net.core.somaxconn`? (`lab sysctls` lists them)',
    ],
    [
      ['--server-sysctl', 'net.core.rmem_max=5'],
      '--server-sysctl net.core.rmem_max',
      'server: {sysctls: {net.core.rmem_max: 5}}',
      'server.sysctls.net.core.rmem_max',
      'net.core.rmem_max cannot be set per host: it is read-only inside a network namespace',
    ],
    [
      ['--client-sysctl', 'net.ipv4.ip_local_port_range=60000 50000'],
      '--client-sysctl net.ipv4.ip_local_port_range',
      'loadgens: [{sysctls: {net.ipv4.ip_local_port_range: "60000 50000"}}]',
      'loadgens.0.sysctls.net.ipv4.ip_local_port_range',
      'got "60000 50000": two ports "LOW HIGH" from 1 to 65535 with LOW <= HIGH',
    ],
  ])('%j', (flags, flag, text, path, what) => {
    const cli = errorOf(() => parseCommand(['up', ...flags]));
    expect(cli.message).toBe(`${flag}: ${what}`);
    const f = labFile(flags.join(' '), `scenario: {name: throughput}\n${text}\n`);
    const file = errorOf(() => loadLabFile(f));
    expect(file.message).toBe(`${f}: ${path}: ${what}`);
    expect(cli.exitCode).toBe(2);
  });

  it('a tool option the tool cannot honour: the same words from flags and from a lab file', () => {
    const cli = errorOf(() => parseCommand(['up', '--loadgen', 'wrk', '--requests', '100']));
    const f = labFile('wrk-requests', 'scenario: {name: throughput}\nloadgens: [{tool: wrk, options: {requests: 100}}]\n');
    const file = errorOf(() => loadLabFile(f));
    expect(cli.message).toBe('wrk runs for a duration, not a request count; give --duration');
    expect(file.message).toBe(`${f}: loadgens.0: ${cli.message}`);
  });

  it('lab run: --repetitions and --scenario say what repetitions: and scenario.name: say', () => {
    const f1 = labFile('reps', 'scenario: {name: backlog}\nrepetitions: 0\n');
    expect(errorOf(() => parseCommand(['run', '--scenario', 'backlog', '--repetitions', '0'])).message).toBe(
      '--repetitions: got 0: an integer from 1 to 100',
    );
    expect(errorOf(() => loadLabFile(f1)).message).toBe(`${f1}: repetitions: got 0: an integer from 1 to 100`);
    const f2 = labFile('scen', 'scenario: {name: flood}\n');
    const what = 'got "flood": one of throughput, backlog, overflow, synflood, timewait, herd, models, arrivals';
    expect(errorOf(() => parseCommand(['run', '--scenario', 'flood'])).message).toBe(`--scenario: ${what}`);
    expect(errorOf(() => loadLabFile(f2)).message).toBe(`${f2}: scenario.name: ${what}`);
  });
});

describe('parseCommand', () => {
  it('lab up without flags: the default one-point throughput lab', () => {
    const inv = parseCommand(['up']);
    expect(inv.cmd).toBe('up');
    if (inv.cmd !== 'up') return;
    expect(inv.lab.scenario.name).toBe('throughput');
    expect(inv.lab.server).toMatchObject({
      model: 'single',
      threads: 1,
      backlog: 511,
      trigger: 'edge',
      idleTimeoutMs: 60000,
      port: 8080,
      controlPort: 9090,
      sysctls: {},
    });
    expect(inv.lab.loadgens[0]).toMatchObject({ tool: 'autocannon', options: { connections: 10, keepAlive: true }, sysctls: {} });
    // As the load tool gets them: 10 s, the default duration.
    expect(loadOptions(inv.lab.loadgens[0]!.options, 'http://x/')).toMatchObject({ connections: 10, durationSec: 10 });
    expect(inv.lab).toMatchObject({ runtime: 'auto', subnet: '198.18.0.0/24', sampleIntervalMs: 50, output: 'results', repetitions: 1 });
    expect(inv.lab.sweep).toEqual({ matrix: {}, zip: {} });
    expect([inv.json, inv.keep]).toEqual([false, false]);
  });

  it('lab up flags land in their lab-file fields', () => {
    const inv = parseCommand([
      'up',
      '--model',
      'reuseport',
      '--threads',
      '2',
      '--loadgen',
      'ab',
      '--no-keep-alive',
      '--requests',
      '500',
      '--server-sysctl',
      'net.core.somaxconn=64',
      '--client-sysctl',
      'net.ipv4.ip_local_port_range=40000 40999',
      '--json',
      '--keep',
      '--output',
      'out',
    ]);
    if (inv.cmd !== 'up') throw new Error(inv.cmd);
    expect(inv.lab.server).toMatchObject({ model: 'reuseport', threads: 2, sysctls: { 'net.core.somaxconn': 64 } });
    expect(inv.lab.loadgens[0]).toMatchObject({
      tool: 'ab',
      options: { keepAlive: false, requests: 500 },
      sysctls: { 'net.ipv4.ip_local_port_range': '40000 40999' },
    });
    expect([inv.lab.output, inv.json, inv.keep]).toEqual(['out', true, true]);
  });

  it('other commands and their errors', () => {
    expect(parseCommand(['sweep', 'a.yaml', '--runtime', 'netns'])).toEqual({ cmd: 'sweep', file: 'a.yaml', runtime: 'netns' });
    expect(parseCommand(['sweep', '--resume', 'results/x'])).toEqual({ cmd: 'resume', dir: 'results/x' });
    expect(parseCommand(['compare', 'a', 'b', '--threshold', '0.2'])).toEqual({ cmd: 'compare', a: 'a', b: 'b', threshold: 0.2, json: false });
    expect(parseCommand(['down', 'x1'])).toEqual({ cmd: 'down', runId: 'x1' });
    expect(parseCommand(['--help']).cmd).toBe('help');
    expect(parseCommand([]).cmd).toBe('help');
    expect(errorOf(() => parseCommand(['up', '--bogus'])).message).toBe("unknown option '--bogus'");
    expect(errorOf(() => parseCommand(['sweep'])).message).toBe('give a lab file, or --resume DIR (not both)');
    expect(errorOf(() => parseCommand(['sweep', '--resume', 'x', '--runtime', 'netns'])).message).toBe(
      '--runtime cannot change a sweep being resumed (its points must run alike)',
    );
    expect(errorOf(() => parseCommand(['sweep', 'a.yaml', '--runtime', 'lxc'])).message).toBe(
      '--runtime: got "lxc": one of auto, netns, docker, rootless, swarm',
    );
    expect(errorOf(() => parseCommand(['compare', 'a', 'b', '--threshold', '2'])).message).toBe('--threshold: got 2: a number from 0 to 1');
    expect(errorOf(() => parseCommand(['up', '--server-sysctl', 'somaxconn'])).message).toBe(
      '--server-sysctl: expected NAME=VALUE (e.g. net.core.somaxconn=128), got "somaxconn"',
    );
    expect(errorOf(() => parseCommand(['run', '--scenario', 'backlog', '--set', 'server.backlog=1', '--set', 'server.backlog=2'])).message).toBe(
      '--set: server.backlog is given twice; give its values once, comma-separated',
    );
    expect(errorOf(() => parseCommand(['frobnicate'])).message).toMatch(/^unknown command 'frobnicate'/);
  });
});
