// The bad-input campaign (issue 11): every way a user can get a command wrong. Each case must
// give exit 2, nothing on stdout, exactly one line on stderr with its message and no stack
// trace, and must create nothing (the folder holds only what the case put there) and leave
// nothing running (no namespace, no labelled container or network, no lab process). Every
// case goes through the CLI's own entry, run(argv) (what dist/lab/bin.js calls), in its folder;
// one case of each command, and every case that makes a lab before it fails, also as a user
// runs it: `node dist/lab/bin.js` as a process of its own. HTTP requests the reactor and the
// control API must refuse are their own campaigns: test/native/malformed.test.ts and
// test/server/main.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { BAD_LAB_FILES } from '../helpers/bad-lab-files.js';
import { run } from '../../lab/commands/cli.js';

const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
const ROOT = mkdtempSync(join(tmpdir(), 'tcplab-campaign-'));

interface Case {
  /** argv after `lab`. */
  argv: string[];
  /** What the one stderr line must contain. */
  message: string;
  /** Files the case starts with, by path in its folder. */
  files?: Record<string, string>;
  /** The case makes a lab before it fails (and must remove it): it runs alone. */
  makesLab?: boolean;
}

const row = ([argv, message, makesLab]: [string[], string, boolean?]): Case => ({ argv, message, ...(makesLab ? { makesLab } : {}) });

/** Flags of every command. */
const FLAGS: Case[] = [
  [['up', '--connections', '0'], 'lab up: --connections: got 0: an integer from 1 to 100000'],
  [['up', '--duration', 'ten'], 'lab up: --duration: got "ten": an integer from 1 to 3600'],
  [['up', '--backlog', '1.5'], 'lab up: --backlog: got 1.5: an integer from -2147483648 to 2147483647'],
  [
    ['up', '--model', 'fast'],
    'lab up: --model: got "fast": one of single, reuseport, acceptor, workers, reactors+workers, reactor-procs, iterative, fork, thread, prethread, prefork',
  ],
  [['up', '--trigger', 'both'], 'lab up: --trigger: got "both": one of edge, level'],
  [['up', '--loadgen', 'siege'], 'lab up: --loadgen: got "siege": one of autocannon, ab, wrk, wrk2, arrivals, httperf'],
  [['up', '--share', 'herd'], 'lab up: --share: got "herd": one of accept, epoll, exclusive, reuseport'],
  [['up', '--work-us', '-1'], 'lab up: --work-us: got -1: an integer from 0 to 1000000'],
  [['up', '--work', 'spin'], 'lab up: --work: got "spin": one of cpu, sleep'],
  [['up', '--runtime', 'lxc'], 'lab up: --runtime: got "lxc": one of auto, netns, docker, rootless, swarm'],
  [['up', '--subnet', '10.0.0.0/16'], 'lab up: --subnet: got "10.0.0.0/16": an IPv4 /24 like 198.18.0.0/24'],
  [['up', '--subnet', '198.18.300.0/24'], 'lab up: --subnet: got "198.18.300.0/24": an IPv4 /24 like 198.18.0.0/24'],
  [['up', '--threads', '2'], 'lab up: --threads: got 2: 1 for model "single" (use reuseport, acceptor or workers for more)'],
  [['up', '--server-sysctl', 'net.core.somaxconx=5'], 'unknown sysctl `net.core.somaxconx`; did you mean `net.core.somaxconn`?'],
  [['up', '--server-sysctl', 'net.ipv4.tcp_syncookies=3'], 'net.ipv4.tcp_syncookies'],
  [['up', '--client-sysctl', 'net.ipv4.ip_local_port_range=60000 50000'], 'net.ipv4.ip_local_port_range'],
  [['up', '--server-sysctl', 'net.core.rmem_max=5'], 'net.core.rmem_max cannot be set per host'],
  [['up', '--server-sysctl', 'somaxconn'], 'expected NAME=VALUE'],
  [['up', '--port', '9090'], "lab up: --control-port: got 9090: a port other than the server's HTTP port (9090)"],
  [['up', '--requests', '10', '--duration', '2'], "option '--requests <n>' cannot be used with option '--duration <s>'"],
  [['up', '--no-keep-alive'], 'lab up: autocannon cannot turn keep-alive off; use --loadgen ab or wrk'],
  [['up', '--loadgen', 'wrk', '--requests', '100'], 'lab up: wrk runs for a duration, not a request count'],
  [['up', '--loadgen', 'wrk2'], 'lab up: wrk2 needs a request rate: give --rate'],
  [['up', '--loadgen', 'ab', '--pipelining', '4'], 'lab up: ab cannot pipeline requests'],
  [['up', '--bogus'], "unknown option '--bogus'"],
  [['up', '--output', '/dev/null/x'], 'cannot make the folder (ENOTDIR)'],
  [['up', '--results', 'x'], "lab up: unknown option '--results'"],
  // A missing tool is found on the loadgen host after it exists; the lab is removed again.
  [
    ['up', '--loadgen', 'wrk2', '--rate', '100', '--duration', '1'],
    'lab up: wrk2 is not installed on loadgen-1: wrk2 is not in Debian: build it from https://github.com/giltene/wrk2',
    true,
  ],
  [
    ['run', '--scenario', 'backlog', '--set', 'server.backlog'],
    'lab run: --set: expected path=value[,value…] (e.g. server.backlog=16,128), got "server.backlog"',
  ],
  [
    ['run', '--scenario', 'flood'],
    'lab run: --scenario: got "flood": one of throughput, backlog, overflow, synflood, timewait, herd, models, arrivals',
  ],
  [['run', '--set', 'server.backlog=1'], "lab run: required option '--scenario <name>' not specified"],
  [
    ['run', '--scenario', 'backlog', '--set', 'server.model=fast'],
    'lab run: sweep point p001 (server.model=fast): server.model: got "fast": one of single, reuseport, acceptor, workers, reactors+workers, reactor-procs, iterative, fork, thread, prethread, prefork',
  ],
  [
    ['run', '--scenario', 'backlog', '--set', 'output=x,y'],
    'lab run: --set: sweep: axis "output" is not a field a point can vary (server.*, loadgens.0.*, scenario.options.*)',
  ],
  [['run', '--scenario', 'backlog', '--repetitions', '0'], 'lab run: --repetitions: got 0: an integer from 1 to 100'],
  [
    ['run', '--scenario', 'backlog', '--set', 'server.backlog=1', '--set', 'server.backlog=2'],
    'lab run: --set: server.backlog is given twice; give its values once, comma-separated',
  ],
  [
    ['run', '--scenario', 'throughput', '--set', 'loadgens.0.tool=ab,wrk', '--set', 'loadgens.0.options.requests=100'],
    'lab run: wrk runs for a duration, not a request count; give --duration',
  ],
  [['sweep'], 'lab sweep: give a lab file, or --resume DIR (not both)'],
  [['sweep', 'no-such.yaml'], 'lab sweep: no-such.yaml: cannot read it (ENOENT)'],
  [['sweep', '--resume', '/tmp'], 'lab sweep: /tmp: not a sweep folder (no lab.json)'],
  [['report', '/tmp'], 'lab report: /tmp: not a sweep folder (no points/)'],
  // Found by this campaign: each was taken, or crashed, before.
  [['up', '--connections', '5', '--connections', '6'], 'lab up: --connections: given twice ("5" and "6"); give it once'],
  [
    ['up', '--server-sysctl', 'net.core.somaxconn=5', '--server-sysctl', 'net.core.somaxconn=6'],
    'lab up: --server-sysctl: net.core.somaxconn is given twice ("5" and "6"); give it once',
  ],
  [['run', '--scenario', 'backlog', '--scenario', 'overflow'], 'lab run: --scenario: given twice ("backlog" and "overflow"); give it once'],
  [['sweep', 'x.yaml', '--runtime', 'netns', '--runtime', 'docker'], 'lab sweep: --runtime: given twice ("netns" and "docker"); give it once'],
  [['down', 'bad id;rm -rf'], 'lab down: run-id: got "bad id;rm -rf": a run id like 20261202-024248-884c-p001-r1 (lab status lists them)'],
  [['images', '--base', ''], 'lab images: --base: got "": an image reference like debian:bookworm-slim'],
  [['images', '--base', 'Debian:12'], 'lab images: --base: got "Debian:12": an image reference like debian:bookworm-slim'],
  [['serve', '--control-host', '1.2.3'], 'lab serve: --control-host: got "1.2.3": an IPv4 or IPv6 address like 127.0.0.1'],
  [['serve', '--host', 'localhost'], 'lab serve: --host: got "localhost": an IPv4 or IPv6 address like 127.0.0.1'],
  [['serve', '--max-connections', '-1'], 'lab serve: --max-connections: got -1: an integer from 0 to 10000000'],
  [['serve', '--port', '8080', '--port', '8081'], 'lab serve: --port: given twice ("8080" and "8081"); give it once'],
  // The rest of the commands.
  [['sweep', 'a.yaml', '--resume', 'b'], 'lab sweep: give a lab file, or --resume DIR (not both)'],
  [['sweep', '--resume', 'x', '--runtime', 'netns'], 'lab sweep: --runtime cannot change a sweep being resumed (its points must run alike)'],
  [['sweep', 'a.yaml', '--output', ''], 'lab sweep: --output: got "": a folder path'],
  [['sweep', 'a.yaml', '--runtime', 'lxc'], 'lab sweep: --runtime: got "lxc": one of auto, netns, docker, rootless, swarm'],
  [['run', '--scenario', 'backlog', '--runtime', 'kvm'], 'lab run: --runtime: got "kvm": one of auto, netns, docker, rootless, swarm'],
  [
    ['run', '--scenario', 'backlog', '--set', 'server.threads=0'],
    'lab run: sweep point p001 (server.threads=0): server.threads: got 0: an integer from 1 to 256',
  ],
  [['report'], "lab report: missing required argument 'dir'"],
  [['predict'], "lab predict: missing required argument 'file'"],
  [['predict', 'no-such.yaml'], 'lab predict: no-such.yaml: cannot read it (ENOENT)'],
  [['manifests'], "lab manifests: missing required argument 'file'"],
  [['manifests', 'no-such.yaml'], 'lab manifests: no-such.yaml: cannot read it (ENOENT)'],
  [['manifests', 'a.yaml', '--point', 'one'], 'lab manifests: --point: got "one": a point id like p001 (`lab predict FILE` lists them)'],
  [
    ['manifests', 'a.yaml', '--registry', 'Reg Example'],
    'lab manifests: --registry: got "Reg Example": a registry and path like registry.example:5000/lab',
  ],
  [['compare', 'a'], "lab compare: missing required argument 'dirB'"],
  [['compare', 'a', 'b', '--threshold', '2'], 'lab compare: --threshold: got 2: a number from 0 to 1'],
  [['compare', 'a', 'b', '--threshold', 'x'], 'lab compare: --threshold: got "x": a number from 0 to 1'],
  [['compare', 'no-such-a', 'no-such-b'], 'lab compare: no-such-a: not a sweep folder (no points/)'],
  [['schema', 'extra'], "lab schema: too many arguments for 'schema'. Expected 0 arguments but got 1."],
  [['status', '--bogus'], "lab status: unknown option '--bogus'"],
  [['sysctls', '--format', 'xml'], "lab sysctls: unknown option '--format'"],
  [['frobnicate'], "lab frobnicate: unknown command 'frobnicate'"],
].map((r) => row(r as [string[], string, boolean?]));

/** Folders and files a user hands the lab: damaged, or not what they say. */
const DATA: Case[] = [
  {
    argv: ['report', 'run'],
    files: { 'run/points/p001-r1.json': '{"schema": "tcplab.point/2", "runId": ' },
    message: 'lab report: run/points/p001-r1.json: not valid JSON',
  },
  {
    argv: ['sweep', '--resume', 'run'],
    files: { 'run/lab.json': '{"runtime": ', 'run/points/.keep': '' },
    message: 'lab sweep: run/lab.json: not valid JSON',
  },
  {
    argv: ['sweep', '--resume', 'run'],
    files: { 'run/lab.json': '{"runtime": "netns", "scenario": {"name": "flood"}}' },
    message: 'lab sweep: run/lab.json: scenario.name: got "flood"',
  },
  {
    argv: ['compare', 'a', 'b'],
    files: { 'a/points/p001-r1.json': '[]', 'b/points/.keep': '' },
    message: 'lab compare: a/points/p001-r1.json:',
  },
  { argv: ['sweep', 'lab.yaml'], files: { 'lab.yaml': 'scenario: {name: backlog\n' }, message: 'lab sweep: lab.yaml: not valid YAML' },
  { argv: ['sweep', 'lab.yaml'], files: { 'lab.yaml': '' }, message: 'lab sweep: lab.yaml: scenario: got undefined' },
  { argv: ['sweep', 'lab.yaml'], files: { 'lab.yaml': '- a\n- b\n' }, message: 'lab sweep: lab.yaml:' },
  ...BAD_LAB_FILES.map(([name, text, message]) => {
    const f = `${name.replace(/\W+/g, '-')}.yaml`;
    return { argv: ['sweep', f], files: { [f]: text }, message: `lab sweep: ${f}: ${message}` };
  }),
];

const CASES = [...FLAGS, ...DATA];

/** Everything under a folder, as relative paths. */
function tree(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}
const lines = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' }).split('\n').filter(Boolean).sort();

/** The command lines of processes whose working folder is dir or under it (the lab's own, run there). */
function processesIn(dir: string): string[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)
    .flatMap((pid) => {
      try {
        const cwd = readlinkSync(`/proc/${pid}/cwd`);
        if (cwd !== dir && !cwd.startsWith(dir + '/')) return [];
        return [readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim()];
      } catch {
        return []; // gone meanwhile, or not ours to read
      }
    })
    .sort();
}

/**
 * The labs on this machine (their namespaces, labelled containers and networks) and the
 * processes running in this campaign's folder. A case's lab would not always be found by its
 * run id (a sweep that fails at its first point removes its folder), so the campaign compares
 * the whole machine before and after; the lab lane runs one file at a time.
 */
function labState(): string[] {
  return [
    ...lines('ip', ['netns', 'list']).filter((n) => n.startsWith('tcplab-lab.')),
    // By ID and name: the engine lists an object's labels in no fixed order.
    ...lines('docker', ['ps', '-a', '--format', 'container {{.ID}} {{.Names}}', '--filter', 'label=tcplab.run']),
    ...lines('docker', ['network', 'ls', '--format', 'network {{.ID}} {{.Name}}', '--filter', 'label=tcplab.run']),
    ...processesIn(ROOT),
  ];
}

let before: string[];
beforeAll(() => {
  before = labState();
});
afterAll(() => expect(labState()).toEqual(before));

/** A case's folder, with the files it starts with. */
function caseDir(i: number, c: Case, how: string): string {
  const dir = join(ROOT, `case-${i + 1}-${how}`);
  mkdirSync(dir);
  for (const [path, text] of Object.entries(c.files ?? {})) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

/** What a case must give, however it ran: exit 2, no stdout, its one line, its folder as it was. */
function expectRefused(c: Case, r: { exitCode: number; stdout: string; stderr: string }, dir: string, given: string[]): void {
  expect(r.exitCode, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  // A lab that was made before its tool was found missing prints its progress first.
  const progress = /^(lab up: \S+: \d+ point run|\[\d+\/\d+\] |lab up: hosts: |image (server|loadgen): |images built)/;
  const errs = r.stderr.split('\n').filter((l) => l && !progress.test(l));
  expect(errs, r.stderr).toHaveLength(1);
  expect(errs[0]).toContain(c.message);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(tree(dir)).toEqual(given);
  expect(processesIn(dir)).toEqual([]);
}

/** As a user runs it: a process of its own in the case's folder. */
async function runAsUser(i: number, c: Case): Promise<void> {
  const dir = caseDir(i, c, 'process');
  const given = tree(dir);
  const r = await execa(process.execPath, [CLI, ...c.argv], { reject: false, cwd: dir, timeout: 60_000 });
  expectRefused(c, { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr }, dir, given);
}

/** Through run(argv) in this process, its folder the working one, its output caught. */
async function runInProcess(i: number, c: Case): Promise<void> {
  const dir = caseDir(i, c, 'run');
  const given = tree(dir);
  const out: string[] = [];
  const err: string[] = [];
  const was = { cwd: process.cwd(), out: process.stdout.write, err: process.stderr.write };
  const catcher = (into: string[]) => ((chunk: string | Uint8Array) => (into.push(String(chunk)), true)) as typeof process.stdout.write;
  process.chdir(dir);
  process.stdout.write = catcher(out);
  process.stderr.write = catcher(err);
  let exitCode: number;
  try {
    exitCode = await run(c.argv);
  } finally {
    process.stdout.write = was.out;
    process.stderr.write = was.err;
    process.chdir(was.cwd);
  }
  expectRefused(c, { exitCode, stdout: out.join(''), stderr: err.join('') }, dir, given);
}

const numbered = CASES.map((c, i) => [c.argv.join(' '), i, c] as const);
/** The first case of each command, and every case that makes a lab: also as a process of their own. */
const asUser = numbered.filter(([, i, c]) => c.makesLab || CASES.findIndex((x) => x.argv[0] === c.argv[0]) === i);

describe('bad input: one line, exit 2, nothing created, nothing left running', () => {
  it('has at least 60 cases', () => expect(CASES.length).toBeGreaterThanOrEqual(60));

  // One at a time: each takes the process's working folder and output while it runs.
  it.each(numbered.filter(([, , c]) => !c.makesLab))('lab %s', async (_name, i, c) => {
    await runInProcess(i, c);
  });

  // A node process each, nothing shared: several at once (the machine is compared after all).
  it.concurrent.each(asUser.filter(([, , c]) => !c.makesLab))('lab %s, as a process of its own', async (_name, i, c) => {
    await runAsUser(i, c);
  });

  // Alone: nothing else makes or removes a lab meanwhile, so the machine must be as it was.
  it.each(asUser.filter(([, , c]) => c.makesLab))('lab %s (makes a lab, then removes it), as a process of its own', async (_name, i, c) => {
    const at = labState();
    await runAsUser(i, c);
    expect(labState()).toEqual(at);
  });
});
