// lab up: one point of the throughput scenario from flags, each flag a lab-file field (UP).
import { Option, type Command } from 'commander';
import { InputError } from '../../core/errors.js';
import { badValue, DEFAULT_DURATION_SEC, defaultOf as def, F, MODELS, RUNTIMES, SHARES, show, TOOLS, typed } from '../../core/fields.js';
import { setAt, validateLab, type LabFile } from '../plan/labfile.js';
import { CAPTURE_HELP, opt, repeatable, say, TRACE_HELP, type LabCommand } from './command.js';
import { runSweep } from './run-sweep.js';

export type UpInvocation = { cmd: 'up'; lab: LabFile; json: boolean; keep: boolean };

/**
 * `lab up`'s flags, each once: the flag, the lab-file field it sets, its help. `int` and `text`
 * take a value (an int given as text is typed as the lab file would type it); `on` and `off`
 * set true or false when given. --server-sysctl, --client-sysctl, --keep and --json are not
 * fields of one kind: they follow the table.
 */
const UP: Array<{ flags: string; path: string; kind: 'int' | 'text' | 'on' | 'off'; help: string; conflicts?: string }> = [
  {
    flags: '--runtime <name>',
    path: 'runtime',
    kind: 'text',
    help: `where hosts run: ${RUNTIMES.join(', ')} (default auto: docker when an engine answers, else netns as root, else rootless)`,
  },
  { flags: '--subnet <cidr>', path: 'subnet', kind: 'text', help: `the lab network, an IPv4 /24 (default ${def(F.subnet)})` },
  {
    flags: '--kind <kind>',
    path: 'server.kind',
    kind: 'text',
    help: `the server: tcplab (the reactor) or nginx (Debian's, --threads worker processes); command needs a lab file (server.command) (default ${def(F.kind)})`,
  },
  { flags: '--model <name>', path: 'server.model', kind: 'text', help: `reactor model: ${MODELS.join(', ')} (default ${def(F.model)})` },
  { flags: '--threads <n>', path: 'server.threads', kind: 'int', help: `reactor loops/workers (default ${def(F.threads)})` },
  { flags: '--backlog <n>', path: 'server.backlog', kind: 'int', help: `listen() backlog, passed as is (default ${def(F.backlog)})` },
  { flags: '--trigger <mode>', path: 'server.trigger', kind: 'text', help: `edge or level (default ${def(F.trigger)})` },
  {
    flags: '--io <backend>',
    path: 'server.io',
    kind: 'text',
    help: `the reactor's I/O: epoll or io_uring (models single and reuseport) (default ${def(F.io)})`,
  },
  { flags: '--work-us <us>', path: 'server.workUs', kind: 'int', help: `simulated work per request, µs (default ${def(F.workUs)})` },
  { flags: '--work <kind>', path: 'server.work', kind: 'text', help: `the work: cpu or sleep (default ${def(F.work)})` },
  {
    flags: '--share <how>',
    path: 'server.share',
    kind: 'text',
    help: `how prethread's waiters share the port: ${SHARES.join(', ')} (default ${def(F.share)})`,
  },
  {
    flags: '--idle-timeout <ms>',
    path: 'server.idleTimeoutMs',
    kind: 'int',
    help: `server's idle connection timeout, 0: never (default ${def(F.idleTimeoutMs)})`,
  },
  { flags: '--port <n>', path: 'server.port', kind: 'int', help: `server HTTP port on its host (default ${def(F.port)})` },
  {
    flags: '--control-port <n>',
    path: 'server.controlPort',
    kind: 'int',
    help: `server's control API port, on its host's loopback (default ${def(F.controlPort)})`,
  },
  { flags: '--loadgen <tool>', path: 'loadgens.0.tool', kind: 'text', help: `load generator: ${TOOLS.join(', ')} (default ${def(F.tool)})` },
  {
    flags: '--loadgens <n>',
    path: 'loadgens.0.count',
    kind: 'int',
    help: 'load generators, each a host of its own running the same load; their results merged (default 1)',
  },
  {
    flags: '--connections <n>',
    path: 'loadgens.0.options.connections',
    kind: 'int',
    help: `concurrent connections (default ${def(F.connections)}; each load generator's)`,
  },
  {
    flags: '--duration <s>',
    path: 'loadgens.0.options.duration',
    kind: 'int',
    help: `run the load this long (default ${DEFAULT_DURATION_SEC} unless --requests)`,
  },
  {
    flags: '--requests <n>',
    path: 'loadgens.0.options.requests',
    kind: 'int',
    help: 'send this many requests instead of running for a duration (autocannon, ab, arrivals, httperf)',
    conflicts: 'duration',
  },
  {
    flags: '--loadgen-threads <n>',
    path: 'loadgens.0.options.threads',
    kind: 'int',
    help: 'load generator threads (wrk, wrk2) or workers (autocannon)',
  },
  {
    flags: '--rate <rps>',
    path: 'loadgens.0.options.rate',
    kind: 'int',
    help: 'hold this many requests per second (autocannon, wrk2; arrivals and httperf: new connections)',
  },
  { flags: '--no-keep-alive', path: 'loadgens.0.options.keepAlive', kind: 'off', help: 'a new connection per request (ab, wrk, arrivals, httperf)' },
  { flags: '--pipelining <n>', path: 'loadgens.0.options.pipelining', kind: 'int', help: 'requests in flight per connection (autocannon, wrk)' },
  {
    flags: '--sample-interval <ms>',
    path: 'sampleIntervalMs',
    kind: 'int',
    help: `sampler interval, ss + counters on every host (default ${def(F.sampleIntervalMs)})`,
  },
  { flags: '--output <dir>', path: 'output', kind: 'text', help: `where run folders go (default ${def(F.output)})` },
  { flags: '--trace', path: 'trace', kind: 'on', help: TRACE_HELP },
  { flags: '--capture', path: 'capture', kind: 'on', help: CAPTURE_HELP },
];

/** The flag that set a field of `lab up`'s lab (for its errors), a sysctl's with its name. */

const upFlag = (path: string): string | undefined => {
  const sysctl = /^(server|loadgens\.0)\.sysctls\.(.+)$/.exec(path);
  if (sysctl) return `${sysctl[1] === 'server' ? '--server-sysctl' : '--client-sysctl'} ${sysctl[2]}`;
  return UP.find((u) => u.path === path)?.flags.split(' ')[0];
};

interface UpFlags {
  [k: string]: string | boolean | string[] | undefined;
  serverSysctl?: string[];
  clientSysctl?: string[];
  keep?: boolean;
  json?: boolean;
}

function sysctlMap(flag: string, list: string[] = []): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  const given: Record<string, string> = {};
  for (const a of list) {
    const i = a.indexOf('=');
    if (i <= 0) throw new InputError(`${flag}: expected NAME=VALUE (e.g. net.core.somaxconn=128), got "${a}"`);
    const name = a.slice(0, i).trim();
    const value = a.slice(i + 1);
    if (name in given) throw new InputError(`${flag}: ${name} is given twice (${show(given[name])} and ${show(value)}); give it once`);
    given[name] = value;
    const t = typed(value);
    out[name] = typeof t === 'number' ? t : value;
  }
  return out;
}

/** `lab up`'s flags as the one-point throughput lab they stand for, validated like a lab file. */
function labFromUpFlags(f: UpFlags): LabFile {
  if (f['kind'] === 'command')
    throw new InputError(
      badValue(
        '--kind',
        'command',
        'tcplab or nginx for lab up (kind command needs server.command: give it in a lab file, then lab run or lab sweep)',
      ),
    );
  const loadgen = { options: {} as Record<string, unknown>, sysctls: sysctlMap('--client-sysctl', f.clientSysctl) };
  const raw: Record<string, unknown> = {
    server: { sysctls: sysctlMap('--server-sysctl', f.serverSysctl) },
    loadgens: [loadgen],
    scenario: { name: 'throughput' },
  };
  for (const u of UP) {
    const v = f[new Option(u.flags).attributeName()];
    const value =
      u.kind === 'int'
        ? typeof v === 'string'
          ? typed(v)
          : undefined
        : u.kind === 'text'
          ? typeof v === 'string'
            ? v
            : undefined
          : u.kind === 'on'
            ? v === true
              ? true
              : undefined
            : v === false
              ? false
              : undefined;
    if (value === undefined) continue;
    setAt(raw, u.path.split('.'), value);
  }
  return validateLab(raw, { flags: upFlag, label: 'lab up' });
}

export const up: LabCommand<UpInvocation> = {
  define(program: Command, done) {
    const c = program.command('up');
    for (const u of UP) {
      const o = opt(u.flags, u.help);
      c.addOption(u.conflicts ? o.conflicts(u.conflicts) : o);
    }
    c.description(
      'one point of the throughput scenario on fresh hosts (server + loadgen): apply sysctls, run the load, record and summarize what the kernel did',
    )
      .addOption(opt('--server-sysctl <name=value>', 'a sysctl for the server host (repeatable)').argParser(repeatable))
      .addOption(opt('--client-sysctl <name=value>', 'a sysctl for the loadgen host (repeatable)').argParser(repeatable))
      .option('--keep', 'leave the lab (and the server) running; `lab down` removes it')
      .option('--json', 'print the point record as JSON and nothing else on stdout')
      .action((f: UpFlags) => done({ cmd: 'up', lab: labFromUpFlags(f), json: f.json ?? false, keep: f.keep ?? false }));
  },
  async run(inv) {
    const r = await runSweep({ file: null, lab: inv.lab }, 'lab up', { keep: inv.keep, bar: false });
    const rec = r.records[0]!;
    if (inv.json) say(JSON.stringify(rec) + '\n');
    else say((await import('../report/summary.js')).formatSummary(rec, r.dir));
    if (rec.kept) process.stderr.write(`lab up: lab ${rec.runId} left running (--keep); \`lab down ${rec.runId}\` removes it\n`);
    return 0;
  },
};
