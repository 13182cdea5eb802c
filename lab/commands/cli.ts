// The `lab` command: parseCommand() turns argv into what to do (pure: no process, no file,
// no host; tests call it directly), run() does it. lab/bin.ts is the executable around run().
// Every error a user can cause or meet is a LabError: one line on stderr, its exit code.
import { Command, CommanderError, Option } from 'commander';
import { addServeOptions, refuseRepeats, serveOptions, type ServeOptions } from '../../server/options.js';
import { CleanupError, InputError, isLabError } from '../../core/errors.js';
import {
  badValue,
  DEFAULT_DURATION_SEC,
  defaultOf,
  F,
  MODELS,
  NAME_RE,
  RUNTIMES,
  SHARES,
  show,
  textFlag,
  TOOLS,
  typed,
  type RuntimeName,
} from '../../core/fields.js';
import { labFromFlags, setAt, validateLab, type LabFile } from '../plan/labfile.js';
import type { LabHandle } from '../pipeline/point.js';
import { SCENARIO_NAMES } from '../scenarios/index.js';
import type { SweepOptions } from '../pipeline/sweep.js';

export type Invocation =
  | { cmd: 'help'; text: string }
  | { cmd: 'serve'; options: ServeOptions }
  | { cmd: 'up'; lab: LabFile; json: boolean; keep: boolean }
  | { cmd: 'sweep'; file: string; runtime?: RuntimeName; output?: string; trace?: boolean; capture?: boolean }
  | { cmd: 'resume'; dir: string }
  | { cmd: 'run'; lab: LabFile }
  | { cmd: 'report'; dir: string }
  | { cmd: 'compare'; a: string; b: string; threshold: number; json: boolean }
  | { cmd: 'schema' }
  | { cmd: 'predict'; file: string; json: boolean }
  | { cmd: 'manifests'; file: string; point?: string; registry?: string }
  | { cmd: 'images'; base: string; wrk2: boolean }
  | { cmd: 'sysctls'; json: boolean }
  | { cmd: 'down'; runId?: string }
  | { cmd: 'status'; json: boolean };

const def = defaultOf;

const TRACE_HELP =
  "trace the kernel's TCP events on the lab's hosts (bpftrace, as root): state changes, retransmissions, resets, drops with their reason";
const CAPTURE_HELP = "capture the lab port's packets in the loadgen host (tcpdump) and turn them into per-connection timelines (tshark)";

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
    help: 'send this many requests instead of running for a duration (autocannon, ab)',
    conflicts: 'duration',
  },
  {
    flags: '--loadgen-threads <n>',
    path: 'loadgens.0.options.threads',
    kind: 'int',
    help: 'load generator threads (wrk, wrk2) or workers (autocannon)',
  },
  { flags: '--rate <rps>', path: 'loadgens.0.options.rate', kind: 'int', help: 'hold this many requests per second (autocannon, wrk2)' },
  { flags: '--no-keep-alive', path: 'loadgens.0.options.keepAlive', kind: 'off', help: 'a new connection per request (ab, wrk)' },
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
export function labFromUpFlags(f: UpFlags): LabFile {
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

function buildProgram(done: (inv: Invocation) => void, output: { writeOut(s: string): void; writeErr(s: string): void }): Command {
  // Subcommands made with .command() inherit exitOverride and the output settings.
  const program = new Command('lab')
    .description('tcplab: see and tune how the Linux TCP stack treats a busy server')
    .exitOverride()
    .configureOutput(output)
    .showSuggestionAfterError(true);

  addServeOptions(program.command('serve'))
    .description('run the native reactor and its control API in this process (what the server host runs)')
    .action((parsed: Record<string, unknown>) => done({ cmd: 'serve', options: serveOptions(parsed) }));

  const opt = (flags: string, help: string) => new Option(flags, help);
  const up = program.command('up');
  for (const u of UP) {
    const o = opt(u.flags, u.help);
    up.addOption(u.conflicts ? o.conflicts(u.conflicts) : o);
  }
  up.description(
    'one point of the throughput scenario on fresh hosts (server + loadgen): apply sysctls, run the load, record and summarize what the kernel did',
  )
    .addOption(
      opt('--server-sysctl <name=value>', 'a sysctl for the server host (repeatable)').argParser((v: string, prev: string[] = []) => [...prev, v]),
    )
    .addOption(
      opt('--client-sysctl <name=value>', 'a sysctl for the loadgen host (repeatable)').argParser((v: string, prev: string[] = []) => [...prev, v]),
    )
    .option('--keep', 'leave the lab (and the server) running; `lab down` removes it')
    .option('--json', 'print the point record as JSON and nothing else on stdout')
    .action((f: UpFlags) => done({ cmd: 'up', lab: labFromUpFlags(f), json: f.json ?? false, keep: f.keep ?? false }));

  const runtimeFlag = textFlag('--runtime', F.runtime);
  program
    .command('sweep [file]')
    .description('run every point of a lab file (YAML) on fresh hosts; write point records, report.md and report.html; prints the run folder')
    .option('--resume <dir>', 'run only the points of this sweep folder that are not on disk yet')
    .addOption(opt('--runtime <name>', `override the lab file's runtime: ${RUNTIMES.join(', ')}`).argParser(runtimeFlag))
    .addOption(opt('--output <dir>', "override the lab file's output: where run folders go").argParser(textFlag('--output', F.output)))
    .option('--trace', 'turn the kernel event tracer on for every point (trace: true)')
    .option('--capture', 'turn the packet capture on for every point (capture: true)')
    .action((file: string | undefined, o: { resume?: string; runtime?: RuntimeName; output?: string; trace?: boolean; capture?: boolean }) => {
      if (!file === !o.resume) throw new InputError('give a lab file, or --resume DIR (not both)');
      if (o.resume && o.runtime) throw new InputError('--runtime cannot change a sweep being resumed (its points must run alike)');
      if (o.resume && o.output) throw new InputError('--output cannot move a sweep being resumed (it goes on in its own folder)');
      if (o.resume && (o.trace || o.capture))
        throw new InputError('--trace and --capture cannot change a sweep being resumed (its points must run alike)');
      done(
        file
          ? {
              cmd: 'sweep',
              file,
              ...(o.runtime ? { runtime: o.runtime } : {}),
              ...(o.output ? { output: o.output } : {}),
              ...(o.trace ? { trace: true } : {}),
              ...(o.capture ? { capture: true } : {}),
            }
          : { cmd: 'resume', dir: o.resume! },
      );
    });

  program
    .command('run')
    .description(
      'the same sweep as a lab file, from flags: lab run --scenario backlog --set server.backlog=16,128 --set server.sysctls.net.core.somaxconn=64',
    )
    .addOption(opt('--scenario <name>', SCENARIO_NAMES.join(', ')).makeOptionMandatory())
    .addOption(
      opt('--set <path=values>', 'an axis: a field path and comma-separated values (repeatable)').argParser((v: string, prev: string[] = []) => [
        ...prev,
        v,
      ]),
    )
    .addOption(opt('--runtime <name>', `where hosts run: ${RUNTIMES.join(', ')}`))
    .addOption(opt('--repetitions <n>', 'runs per point'))
    .option('--trace', TRACE_HELP)
    .option('--capture', CAPTURE_HELP)
    .option('--output <dir>', 'where run folders go')
    .action(
      (f: { scenario: string; set?: string[]; runtime?: string; repetitions?: string; output?: string; trace?: boolean; capture?: boolean }) => {
        done({ cmd: 'run', lab: labFromFlags({ ...f, set: f.set ?? [] }) });
      },
    );

  program
    .command('report <dir>')
    .description('write report.md and report.html (self-contained, with charts) for a sweep folder from its point records; prints both paths')
    .action((dir: string) => done({ cmd: 'report', dir }));

  program
    .command('compare <dirA> <dirB>')
    .description(
      'compare two sweeps of one scenario point by point; flags changes beyond the noise (the spread over repetitions, at least --threshold of A). Exit 1 when there is a regression',
    )
    .addOption(opt('--threshold <fraction>', 'smallest relative change flagged, 0 to 1 (default 0.1)'))
    .option('--json', 'print the comparison as JSON')
    .action((a: string, b: string, o: { threshold?: string; json?: boolean }) =>
      done({ cmd: 'compare', a, b, threshold: o.threshold === undefined ? 0.1 : threshold(o.threshold), json: o.json ?? false }),
    );

  program
    .command('predict <file>')
    .description('what the kernel model says each point of a lab file will do, and why, before anything runs (needs no root)')
    .option('--json', 'print the predictions as JSON')
    .action((file: string, o: { json?: boolean }) => done({ cmd: 'predict', file, json: o.json ?? false }));

  program
    .command('manifests <file>')
    .description(
      'a point of a lab file as Kubernetes manifests (pods with their sysctls, a headless service), checked against the Kubernetes API schema offline; applies nothing',
    )
    .addOption(opt('--point <id>', 'which point (default p001; `lab predict FILE` lists them)'))
    .addOption(opt('--registry <prefix>', 'where the cluster pulls the lab images from, e.g. registry.example:5000/lab (default: the local names)'))
    .action((file: string, o: { point?: string; registry?: string }) =>
      done({
        cmd: 'manifests',
        file,
        ...(o.point !== undefined ? { point: pointId(o.point) } : {}),
        ...(o.registry !== undefined ? { registry: registry(o.registry) } : {}),
      }),
    );

  program
    .command('schema')
    .description('print the lab file schema (JSON Schema)')
    .action(() => done({ cmd: 'schema' }));

  program
    .command('images')
    .description('build the Docker images for the current sources when missing (tags tcplab-server/loadgen:<hash> and :latest)')
    .option('--base <image>', 'base image for every stage', 'debian:bookworm-slim')
    .option('--wrk2', 'also build wrk2 from its upstream source (needs internet)')
    .action((o: { base: string; wrk2?: boolean }) => done({ cmd: 'images', base: imageRef('--base', o.base), wrk2: o.wrk2 ?? false }));

  program
    .command('sysctls')
    .description('list the tunables the lab knows: allowed values, scope, side, default, meaning')
    .option('--json', 'print JSON only')
    .action((o: { json?: boolean }) => done({ cmd: 'sysctls', json: o.json ?? false }));

  program
    .command('down [run-id]')
    .description('remove every namespace, bridge, container, network and process a lab created (all labs, or one run id), even after a crash')
    .action((runId?: string) => {
      if (runId !== undefined && !NAME_RE.test(runId))
        throw new InputError(badValue('run-id', runId, 'a run id like 20261202-024248-884c-p001-r1 (lab status lists them)'));
      done({ cmd: 'down', ...(runId ? { runId } : {}) });
    });

  program
    .command('status')
    .description('list running labs and their hosts')
    .option('--json', 'print JSON only')
    .action((o: { json?: boolean }) => done({ cmd: 'status', json: o.json ?? false }));
  for (const c of program.commands) refuseRepeats(c, ['--server-sysctl', '--client-sysctl', '--set']);
  return program;
}

/** A Docker image reference: [registry[:port]/]name[/name…][:tag] in lower case (Docker's own grammar, without digests). */
const IMAGE_REF =
  /^(?:[a-z0-9][a-z0-9.-]*(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::\w[\w.-]{0,127})?$/;
function imageRef(flag: string, v: string): string {
  if (!IMAGE_REF.test(v)) throw new InputError(badValue(flag, v, 'an image reference like debian:bookworm-slim'));
  return v;
}

function pointId(v: string): string {
  if (!/^p\d{3,}$/.test(v)) throw new InputError(badValue('--point', v, 'a point id like p001 (`lab predict FILE` lists them)'));
  return v;
}

/** A registry and path the lab's image names go under: host[:port][/path]. */
function registry(v: string): string {
  if (!/^[a-z0-9][a-z0-9.-]*(?::\d+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(v))
    throw new InputError(badValue('--registry', v, 'a registry and path like registry.example:5000/lab'));
  return v;
}

function threshold(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1)
    throw new InputError(`--threshold: got ${JSON.stringify(typed(v))}: a number from 0 to 1`);
  return n;
}

/**
 * The command reference of docs/commands.md: `lab --help` and each command's `--help`, from the
 * CLI's own definitions, 80 columns wide whatever the terminal (scripts/commands-doc.mjs writes
 * it; test/docs checks the page has it as it is now).
 */
export function commandReference(): string {
  const program = buildProgram(() => {}, { writeOut: () => {}, writeErr: () => {} });
  const block = (title: string, c: Command) => {
    c.configureHelp({ helpWidth: 80 });
    return `### ${title}\n\n\`\`\`text\n${c.helpInformation().trimEnd()}\n\`\`\`\n`;
  };
  return [block('`lab --help`', program), ...program.commands.map((c) => block(`\`lab ${c.name()} --help\``, c))].join('\n');
}

/** What argv (without node and the script) asks for; throws InputError for anything wrong. */
export function parseCommand(args: string[]): Invocation {
  let inv: Invocation | undefined;
  let out = '';
  let err = '';
  const program = buildProgram((i) => (inv = i), { writeOut: (s) => (out += s), writeErr: (s) => (err += s) });
  if (!args.length) return { cmd: 'help', text: program.helpInformation() };
  try {
    program.parse(args, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(e.code)) return { cmd: 'help', text: out };
      throw new InputError((err || e.message).split('\n')[0]!.replace(/^error: /, ''));
    }
    throw e;
  }
  if (!inv) throw new InputError('no command given (see lab --help)');
  return inv;
}

/**
 * Progress of a sweep on stderr: on a terminal a bar (points done, the point running, ETA) with
 * the per-point lines printed above it; otherwise (a pipe, a log file, CI) the lines alone.
 */
async function sweepProgress(): Promise<Pick<SweepOptions, 'progress' | 'bar'>> {
  if (!process.stderr.isTTY) return { progress: (l) => process.stderr.write(l + '\n') };
  const { MultiBar, Presets } = await import('cli-progress');
  const multi = new MultiBar(
    {
      stream: process.stderr,
      format: '{bar} {value}/{total} points | {eta_text} | {current}',
      hideCursor: true,
      clearOnComplete: true,
      autopadding: true,
    },
    Presets.shades_classic,
  );
  let bar: ReturnType<typeof multi.create> | null = null;
  const stop = () => multi.stop();
  process.once('SIGINT', stop);
  return {
    progress: (l) => (bar ? multi.log(l + '\n') : process.stderr.write(l + '\n')),
    bar: {
      start: (total, done) => (bar = multi.create(total, done, { current: 'starting', eta_text: 'ETA –' })),
      update: (done, current, etaSec) => bar?.update(done, { current, eta_text: etaSec === null ? 'ETA –' : `ETA ${etaSec} s` }),
      stop: () => {
        process.removeListener('SIGINT', stop);
        stop();
        bar = null;
      },
    },
  };
}

/** Ctrl-C (or SIGTERM) during a lab: tear the lab down, then exit 130. A second one exits at once. */
function interruptible(handle: LabHandle, cmd: string): () => void {
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`${cmd}: interrupted again; run \`lab down\` to remove what is left\n`);
      process.exit(130);
    }
    stopping = true;
    process.stderr.write(`${cmd}: ${sig}: removing the lab${handle.runId ? ` ${handle.runId}` : ''} …\n`);
    void (async () => {
      try {
        await handle.creating;
        if (handle.runtime && handle.runId) await handle.runtime.destroy(handle.runId);
        process.stderr.write(`${cmd}: interrupted; nothing left running\n`);
      } catch (err) {
        process.stderr.write(`${cmd}: clean-up failed (${(err as Error).message}); run \`lab down\`\n`);
      }
      process.exit(130);
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

async function runtimes() {
  const { availableRuntimes } = await import('../runtime/index.js');
  return availableRuntimes();
}

/** A sweep (of a file, of flags, of `lab up`'s one point, or resumed), with progress and its report. */
async function runSweep(source: { file: string | null; lab: LabFile } | { resume: string }, cmd: string, o: { keep?: boolean; bar?: boolean } = {}) {
  const { sweep } = await import('../pipeline/sweep.js');
  const { writeReport } = await import('../report/report.js');
  const handle: LabHandle = {};
  const out = o.bar === false ? { progress: (l: string) => process.stderr.write(l + '\n') } : await sweepProgress();
  const release = interruptible(handle, cmd);
  try {
    const r = await sweep(source, { ...out, handle, cmd, keep: o.keep ?? false });
    const rep = writeReport(r.dir);
    return { ...r, report: rep };
  } finally {
    release();
  }
}

/** Does what an invocation asks; returns the exit code. */
export async function execute(inv: Invocation): Promise<number> {
  const say = (s: string) => process.stdout.write(s);
  switch (inv.cmd) {
    case 'help':
      say(inv.text);
      return 0;
    case 'serve': {
      const { serve } = await import('../../server/main.js');
      await serve(inv.options);
      return 0;
    }
    case 'up': {
      const r = await runSweep({ file: null, lab: inv.lab }, 'lab up', { keep: inv.keep, bar: false });
      const rec = r.records[0]!;
      if (inv.json) say(JSON.stringify(rec) + '\n');
      else say((await import('../report/summary.js')).formatSummary(rec, r.dir));
      if (rec.kept) process.stderr.write(`lab up: lab ${rec.runId} left running (--keep); \`lab down ${rec.runId}\` removes it\n`);
      return 0;
    }
    case 'sweep':
    case 'resume':
    case 'run': {
      const { loadLabFile } = await import('../plan/labfile.js');
      const cmd = inv.cmd === 'run' ? 'lab run' : 'lab sweep';
      const source =
        inv.cmd === 'resume'
          ? { resume: inv.dir }
          : inv.cmd === 'run'
            ? { file: null, lab: inv.lab }
            : {
                file: inv.file,
                lab: {
                  ...loadLabFile(inv.file),
                  ...(inv.runtime ? { runtime: inv.runtime } : {}),
                  ...(inv.output ? { output: inv.output } : {}),
                  ...(inv.trace ? { trace: true } : {}),
                  ...(inv.capture ? { capture: true } : {}),
                },
              };
      const r = await runSweep(source, cmd);
      say(`${r.dir}\n`);
      process.stderr.write(`${cmd}: ${r.ran} point run(s) done, ${r.failed} with a FAIL verdict; report: ${r.report.md}, ${r.report.html}\n`);
      return 0;
    }
    case 'report': {
      const { writeReport } = await import('../report/report.js');
      const r = writeReport(inv.dir);
      say(`${r.md}\n${r.html}\n`);
      return 0;
    }
    case 'compare': {
      const { compare, renderComparison } = await import('../report/compare.js');
      const c = compare(inv.a, inv.b, inv.threshold);
      say(inv.json ? JSON.stringify(c, null, 2) + '\n' : renderComparison(c, inv.a, inv.b));
      return c.regressions > 0 ? 1 : 0;
    }
    case 'predict': {
      const { loadLabFile } = await import('../plan/labfile.js');
      const { predictLab, renderPredictions } = await import('../plan/predict.js');
      const points = predictLab(loadLabFile(inv.file));
      say(inv.json ? JSON.stringify(points, null, 2) + '\n' : renderPredictions(inv.file, points));
      return 0;
    }
    case 'manifests': {
      const { loadLabFile, expandSweep } = await import('../plan/labfile.js');
      const { manifestsFor, renderManifests, validateManifests } = await import('../plan/k8s.js');
      const { contextEntries, contextHash, IMAGE_NAMES } = await import('../runtime/images.js');
      const points = expandSweep(loadLabFile(inv.file));
      const id = inv.point ?? points[0]!.id;
      const point = points.find((p) => p.id === id);
      if (!point) throw new InputError(badValue('--point', id, `one of ${points.map((p) => p.id).join(', ')} (the points of ${inv.file})`));
      // The tags `lab images` builds for these sources.
      const hash = contextHash(await contextEntries(), { base: 'debian:bookworm-slim', wrk2: false });
      const at = (n: string) => `${inv.registry ? `${inv.registry}/` : ''}${n}:${hash}`;
      const m = manifestsFor(point, { server: at(IMAGE_NAMES.server), loadgen: at(IMAGE_NAMES.loadgen) });
      validateManifests(m.objects);
      say(renderManifests(m, inv.file));
      process.stderr.write(
        `lab manifests: ${inv.file} ${m.point}: ${m.objects.length} objects, valid against the Kubernetes API schema; ${m.unsafe.length ? `unsafe sysctls each node must allow: ${m.unsafe.join(', ')}` : 'no unsafe sysctl'}\n`,
      );
      return 0;
    }
    case 'schema': {
      const { LabFileSchema } = await import('../plan/labfile.js');
      const { z } = await import('zod');
      say(JSON.stringify(z.toJSONSchema(LabFileSchema, { io: 'input' }), null, 2) + '\n');
      return 0;
    }
    case 'images': {
      const { DockerRuntime } = await import('../runtime/docker.js');
      const rt = new DockerRuntime({ base: inv.base, wrk2: inv.wrk2, progress: (l) => process.stderr.write(l + '\n') });
      await rt.check();
      const im = await rt.prepare();
      say(`${im.server}\n${im.loadgen}\n`);
      return 0;
    }
    case 'sysctls': {
      const { TUNABLES, describeAllowed } = await import('../../sysctl/registry.js');
      if (inv.json) return (say(JSON.stringify(TUNABLES) + '\n'), 0);
      for (const t of TUNABLES) {
        const where =
          t.scope === 'global'
            ? `global (not settable per host: ${t.whyGlobal})`
            : `per host, acts on the ${t.side === 'both' ? 'server and client' : t.side}`;
        const d = t.kernelDefault !== undefined ? `kernel default ${t.kernelDefault}` : 'default depends on the machine';
        say(`${t.name}\n  ${t.meaning}\n  allowed: ${describeAllowed(t.value)}; ${where}; ${d}\n`);
      }
      return 0;
    }
    case 'down': {
      // Every runtime is cleaned, whatever another one could not remove; each thing left is
      // named on a line of its own, and then the exit code is 1.
      let total = 0;
      const left: string[] = [];
      for (const rt of await runtimes()) {
        let n: number;
        try {
          n = await rt.destroy(inv.runId);
        } catch (err) {
          if (!(err instanceof CleanupError)) throw err;
          n = err.removed;
          left.push(...err.left);
        }
        total += n;
        if (n) process.stderr.write(`lab down: removed ${n} ${rt.removes}${inv.runId ? ` of run ${inv.runId}` : ''}\n`);
      }
      for (const l of left) process.stderr.write(`lab down: could not remove ${l}\n`);
      if (!total && !left.length) process.stderr.write('lab down: nothing to remove\n');
      return left.length ? 1 : 0;
    }
    case 'status': {
      const labs = (await Promise.all((await runtimes()).map((rt) => rt.list()))).flat();
      if (inv.json) return (say(JSON.stringify(labs) + '\n'), 0);
      if (!labs.length) say('no labs running\n');
      for (const l of labs) {
        say(`${l.runId} (${l.runtime})\n`);
        for (const h of l.hosts) say(`  ${h.name.padEnd(12)} ${h.pids.length} process(es)\n`);
      }
      return 0;
    }
  }
}

/** Runs the CLI on argv (without node and the script); returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const name = args[0] && !args[0].startsWith('-') ? `lab ${args[0]}` : 'lab';
  try {
    return await execute(parseCommand(args));
  } catch (err) {
    if (isLabError(err)) {
      process.stderr.write(`${name}: ${err.message.split('\n')[0]}\n`);
      return err.exitCode;
    }
    throw err;
  }
}
