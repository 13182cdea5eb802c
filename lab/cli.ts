#!/usr/bin/env node
// The `lab` command. Each subcommand loads its heavy modules only when it runs, so
// `lab --help` is instant. Errors: one line on stderr, exit 2.
import { SCENARIOS } from './scenario-names.js';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { addServeOptions, intIn, MODELS, numberIn, oneOf, TRIGGERS } from '../server/options.js';
import { parseSetting, type SysctlSetting } from '../sysctl/registry.js';
import { TOOLS } from './loadgen/drivers.js';
import { RUNTIMES } from './runtime/index.js';
import type { UpHandle } from './up.js';

/** Errors that are the user's input or the machine's state: one line, exit 2. */
const EXPECTED = new Set(['UsageError', 'RuntimeUnavailable', 'UpError', 'LoadgenError', 'SysctlError', 'ImageBuildError', 'LabFileError', 'SweepError']);

/**
 * Progress of a sweep on stderr: on a terminal a bar (points done, the point running, ETA) with
 * the per-point lines printed above it; otherwise (a pipe, a log file, CI) the lines alone.
 */
async function sweepProgress(): Promise<Pick<import('./sweep.js').SweepOptions, 'progress' | 'bar'>> {
  if (!process.stderr.isTTY) return { progress: (l) => process.stderr.write(l + '\n') };
  const { MultiBar, Presets } = await import('cli-progress');
  const multi = new MultiBar({ stream: process.stderr, format: '{bar} {value}/{total} points | {eta_text} | {current}', hideCursor: true, clearOnComplete: true, autopadding: true }, Presets.shades_classic);
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

class CliUsageError extends Error {
  override name = 'UsageError';
}

function sysctlList(flag: string) {
  return (v: string, prev: SysctlSetting[] = []): SysctlSetting[] => {
    try {
      return [...prev, parseSetting(v)];
    } catch (err) {
      throw new InvalidArgumentError(`${flag}: ${(err as Error).message}`);
    }
  };
}

function subnet(v: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)\.0\/24$/.exec(v);
  if (!m || [m[1], m[2], m[3]].some((x) => Number(x) > 255)) throw new InvalidArgumentError(`--subnet must be an IPv4 /24 like 198.18.0.0/24, got "${v}"`);
  return v;
}

interface UpFlags {
  runtime: (typeof RUNTIMES)[number];
  subnet: string;
  model: (typeof MODELS)[number];
  threads: number;
  backlog: number;
  trigger: (typeof TRIGGERS)[number];
  idleTimeout: number;
  port: number;
  controlPort: number;
  loadgen: (typeof TOOLS)[number];
  connections: number;
  duration?: number;
  requests?: number;
  loadgenThreads?: number;
  rate?: number;
  keepAlive: boolean;
  pipelining?: number;
  serverSysctl?: SysctlSetting[];
  clientSysctl?: SysctlSetting[];
  sampleInterval: number;
  results: string;
  keep?: boolean;
  json?: boolean;
}

/** Ctrl-C (or SIGTERM) during `lab up`/`sweep`: tear the lab down, then exit 130. A second one exits at once. */
function interruptible(handle: UpHandle, cmd = 'lab up'): () => void {
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

const oneLine = { writeErr: (s: string) => process.stderr.write(s.split('\n')[0] + '\n') };

async function runtimes() {
  const { availableRuntimes } = await import('./runtime/index.js');
  return availableRuntimes();
}

export function buildProgram(): Command {
  // Subcommands made with .command() inherit exitOverride and the output settings.
  const program = new Command('lab')
    .description('tcplab: see and tune how the Linux TCP stack treats a busy server')
    .exitOverride()
    .configureOutput(oneLine)
    .showSuggestionAfterError(true);

  addServeOptions(program.command('serve'))
    .description('run the native reactor and its control API in this process (what the server host runs)')
    .action(async (opts) => {
      const { serve } = await import('../server/main.js');
      await serve(opts);
    });

  program
    .command('up')
    .description('create a lab (server host + loadgen host), apply sysctls, run the load, record and summarize what the kernel did')
    .addOption(new Option('--runtime <name>', `where hosts run: ${RUNTIMES.join(', ')} (auto: docker when an engine answers, else netns)`).argParser(oneOf('--runtime', RUNTIMES)).default('auto'))
    .addOption(new Option('--subnet <cidr>', 'the lab network (an IPv4 /24)').argParser(subnet).default('198.18.0.0/24'))
    .addOption(new Option('--model <name>', `reactor model: ${MODELS.join(', ')}`).argParser(oneOf('--model', MODELS)).default('single'))
    .addOption(new Option('--threads <n>', 'reactor loops/workers').argParser(intIn('--threads', 1, 256)).default(1))
    .addOption(new Option('--backlog <n>', 'listen() backlog, passed as is').argParser(intIn('--backlog', -2147483648, 2147483647)).default(511))
    .addOption(new Option('--trigger <mode>', 'edge or level').argParser(oneOf('--trigger', TRIGGERS)).default('edge'))
    .addOption(new Option('--idle-timeout <ms>', "server's idle connection timeout (0: never)").argParser(intIn('--idle-timeout', 0, 86400000)).default(60000))
    .addOption(new Option('--port <n>', 'server HTTP port on its host').argParser(intIn('--port', 1, 65535)).default(8080))
    .addOption(new Option('--control-port <n>', "server's control API port (loopback of its host)").argParser(intIn('--control-port', 1, 65535)).default(9090))
    .addOption(new Option('--loadgen <tool>', `load generator: ${TOOLS.join(', ')}`).argParser(oneOf('--loadgen', TOOLS)).default('autocannon'))
    .addOption(new Option('--connections <n>', 'concurrent connections').argParser(intIn('--connections', 1, 100000)).default(10))
    .addOption(new Option('--duration <s>', 'run the load this long (default 10 unless --requests)').argParser(intIn('--duration', 1, 3600)))
    .addOption(new Option('--requests <n>', 'send this many requests instead of running for a duration (autocannon, ab)').argParser(intIn('--requests', 1, 1000000000)).conflicts('duration'))
    .addOption(new Option('--loadgen-threads <n>', 'load generator threads (wrk, wrk2) or workers (autocannon)').argParser(intIn('--loadgen-threads', 1, 64)))
    .addOption(new Option('--rate <rps>', 'hold this many requests per second (autocannon, wrk2)').argParser(intIn('--rate', 1, 10000000)))
    .option('--no-keep-alive', 'a new connection per request (ab, wrk)')
    .addOption(new Option('--pipelining <n>', 'requests in flight per connection (autocannon, wrk)').argParser(intIn('--pipelining', 1, 1024)))
    .addOption(new Option('--server-sysctl <name=value>', 'a sysctl for the server host (repeatable)').argParser(sysctlList('--server-sysctl')))
    .addOption(new Option('--client-sysctl <name=value>', 'a sysctl for the loadgen host (repeatable)').argParser(sysctlList('--client-sysctl')))
    .addOption(new Option('--sample-interval <ms>', 'sampler interval (ss + counters on every host)').argParser(intIn('--sample-interval', 10, 10000)).default(50))
    .option('--results <dir>', 'where run folders go', 'results')
    .option('--keep', 'leave the lab (and the server) running; `lab down` removes it')
    .option('--json', 'print the run record as JSON and nothing else on stdout')
    .action(async (f: UpFlags, cmd: Command) => {
      if (f.port === f.controlPort) throw new CliUsageError(`--port and --control-port must differ, both are ${f.port}`);
      const { up } = await import('./up.js');
      const { validateLoad } = await import('./loadgen/drivers.js');
      const { loadOptions } = await import('./loadgen/result.js');
      const { url: _url, ...load } = loadOptions({ ...f, threads: f.loadgenThreads }, 'http://0.0.0.0/');
      validateLoad(f.loadgen, { ...load, url: _url });
      const handle: UpHandle = {};
      const release = interruptible(handle);
      try {
        const { record, dir } = await up(
          {
            runtime: f.runtime, subnet: f.subnet, subnetFallback: cmd.getOptionValueSource('subnet') === 'default', model: f.model, threads: f.threads, backlog: f.backlog, trigger: f.trigger,
            idleTimeoutMs: f.idleTimeout, port: f.port, controlPort: f.controlPort, loadgen: f.loadgen, load,
            serverSysctls: f.serverSysctl ?? [], clientSysctls: f.clientSysctl ?? [], sampleIntervalMs: f.sampleInterval,
            resultsDir: f.results, keep: f.keep ?? false, progress: (l) => process.stderr.write(l + '\n'),
          },
          handle,
        );
        if (f.json) process.stdout.write(JSON.stringify(record) + '\n');
        else process.stdout.write((await import('./summary.js')).formatSummary(record, dir));
        if (record.kept) process.stderr.write(`lab up: lab ${record.runId} left running (--keep); \`lab down ${record.runId}\` removes it\n`);
      } finally {
        release();
      }
    });

  const runSweep = async (source: { file: string; runtime?: (typeof RUNTIMES)[number] } | { resume: string } | { lab: import('./labfile.js').LabFile }, cmd = 'lab sweep') => {
    const { loadLabFile } = await import('./labfile.js');
    const { sweep } = await import('./sweep.js');
    const { writeReport } = await import('./report.js');
    const src = 'file' in source ? { file: source.file, lab: { ...loadLabFile(source.file), ...(source.runtime ? { runtime: source.runtime } : {}) } } : 'lab' in source ? { file: null, lab: source.lab } : source;
    const handle: UpHandle = {};
    const out = await sweepProgress();
    const release = interruptible(handle, cmd);
    try {
      const r = await sweep(src, { ...out, handle });
      const rep = writeReport(r.dir);
      process.stdout.write(`${r.dir}\n`);
      process.stderr.write(`${cmd}: ${r.ran} point run(s) done, ${r.failed} with a FAIL verdict; report: ${rep.md}, ${rep.html}\n`);
    } finally {
      release();
    }
  };

  program
    .command('sweep [file]')
    .description('run every point of a lab file (YAML) on fresh hosts and write point records and report.md; prints the run folder')
    .option('--resume <dir>', 'run only the points of this sweep folder that are not on disk yet')
    .addOption(new Option('--runtime <name>', `override the lab file's runtime: ${RUNTIMES.join(', ')}`).argParser(oneOf('--runtime', RUNTIMES)))
    .action(async (file: string | undefined, opts: { resume?: string; runtime?: (typeof RUNTIMES)[number] }) => {
      if (!file === !opts.resume) throw new CliUsageError('give a lab file, or --resume DIR (not both)');
      if (opts.resume && opts.runtime) throw new CliUsageError('--runtime cannot change a sweep being resumed (its points must run alike)');
      await runSweep(file ? { file, runtime: opts.runtime } : { resume: opts.resume! });
    });

  program
    .command('run')
    .description('the same sweep as a lab file, from flags: lab run --scenario backlog --set server.backlog=16,128 --set server.sysctls.net.core.somaxconn=64')
    .addOption(new Option('--scenario <name>', SCENARIOS.join(', ')).argParser(oneOf('--scenario', SCENARIOS)).makeOptionMandatory())
    .addOption(new Option('--set <path=values>', 'an axis: a field path and comma-separated values (repeatable)').argParser((v: string, prev: string[] = []) => [...prev, v]))
    .addOption(new Option('--runtime <name>', `where hosts run: ${RUNTIMES.join(', ')}`).argParser(oneOf('--runtime', RUNTIMES)))
    .addOption(new Option('--repetitions <n>', 'runs per point').argParser(intIn('--repetitions', 1, 100)))
    .option('--output <dir>', 'where run folders go')
    .action(async (f: { scenario: string; set?: string[]; runtime?: string; repetitions?: number; output?: string }) => {
      const { labFromFlags } = await import('./labfile.js');
      await runSweep({ lab: labFromFlags({ ...f, set: f.set ?? [] }) }, 'lab run');
    });

  program
    .command('report <dir>')
    .description('write report.md and report.html (self-contained, with charts) for a sweep folder from its point records; prints both paths')
    .action(async (dir: string) => {
      const { writeReport } = await import('./report.js');
      const r = writeReport(dir);
      process.stdout.write(`${r.md}\n${r.html}\n`);
    });

  program
    .command('compare <dirA> <dirB>')
    .description('compare two sweeps of one scenario point by point; flags changes beyond the noise (the spread over repetitions, at least --threshold of A). Exit 1 when there is a regression')
    .addOption(new Option('--threshold <fraction>', 'smallest relative change flagged (0–1)').argParser(numberIn('--threshold', 0, 1)).default(0.1))
    .option('--json', 'print the comparison as JSON')
    .action(async (dirA: string, dirB: string, opts: { threshold: number; json?: boolean }) => {
      const { compare, renderComparison } = await import('./compare.js');
      const c = compare(dirA, dirB, opts.threshold);
      process.stdout.write(opts.json ? JSON.stringify(c, null, 2) + '\n' : renderComparison(c, dirA, dirB));
      if (c.regressions > 0) process.exitCode = 1;
    });

  program
    .command('schema')
    .description('print the lab file schema (JSON Schema)')
    .action(async () => {
      const { LabFileSchema } = await import('./labfile.js');
      const { z } = await import('zod');
      process.stdout.write(JSON.stringify(z.toJSONSchema(LabFileSchema, { io: 'input' }), null, 2) + '\n');
    });

  program
    .command('images')
    .description('build the Docker images for the current sources when missing (tags tcplab-server/loadgen:<hash> and :latest)')
    .option('--base <image>', 'base image for every stage', 'debian:bookworm-slim')
    .option('--wrk2', 'also build wrk2 from its upstream source (needs internet)')
    .action(async (opts: { base: string; wrk2?: boolean }) => {
      const { DockerRuntime } = await import('./runtime/docker.js');
      const rt = new DockerRuntime({ base: opts.base, wrk2: opts.wrk2 ?? false, progress: (l) => process.stderr.write(l + '\n') });
      await rt.check();
      const im = await rt.prepare();
      process.stdout.write(`${im.server}\n${im.loadgen}\n`);
    });

  program
    .command('sysctls')
    .description('list the tunables the lab knows: allowed values, scope, side, default, meaning')
    .option('--json', 'print JSON only')
    .action(async (opts: { json?: boolean }) => {
      const { TUNABLES, describeAllowed } = await import('../sysctl/registry.js');
      if (opts.json) return void process.stdout.write(JSON.stringify(TUNABLES) + '\n');
      for (const t of TUNABLES) {
        const where = t.scope === 'global' ? `global (not settable per host: ${t.whyGlobal})` : `per host, acts on the ${t.side === 'both' ? 'server and client' : t.side}`;
        const def = t.kernelDefault !== undefined ? `kernel default ${t.kernelDefault}` : 'default depends on the machine';
        process.stdout.write(`${t.name}\n  ${t.meaning}\n  allowed: ${describeAllowed(t.value)}; ${where}; ${def}\n`);
      }
    });

  program
    .command('down [run-id]')
    .description('remove every namespace, bridge, container, network and process a lab created (all labs, or one run id), even after a crash')
    .action(async (runId?: string) => {
      let total = 0;
      for (const rt of await runtimes()) {
        const n = await rt.destroy(runId);
        total += n;
        if (n) process.stderr.write(`lab down: removed ${n} ${rt.name === 'netns' ? 'namespace(s)' : 'container(s) and network(s)'}${runId ? ` of run ${runId}` : ''}\n`);
      }
      if (!total) process.stderr.write('lab down: nothing to remove\n');
    });

  program
    .command('status')
    .description('list running labs and their hosts')
    .option('--json', 'print JSON only')
    .action(async (opts: { json?: boolean }) => {
      const labs = (await Promise.all((await runtimes()).map((rt) => rt.list()))).flat();
      if (opts.json) return void process.stdout.write(JSON.stringify(labs) + '\n');
      if (!labs.length) process.stdout.write('no labs running\n');
      for (const l of labs) {
        process.stdout.write(`${l.runId} (${l.runtime})\n`);
        for (const h of l.hosts) process.stdout.write(`  ${h.name.padEnd(12)} ${h.pids.length} process(es)\n`);
      }
    });
  return program;
}

/** Runs the CLI; returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  if (argv.length <= 2) {
    program.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync(argv);
    // A command may end with a verdict of its own (lab compare: 1 when it found a regression).
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code) ? 0 : 2;
    }
    const e = err as Error;
    if (EXPECTED.has(e.name)) {
      const cmd = argv[2] && !argv[2].startsWith('-') ? `lab ${argv[2]}` : 'lab';
      process.stderr.write(`${cmd}: ${e.message.split('\n')[0]}\n`);
      return 2;
    }
    if (e.name === 'PointError') {
      process.stderr.write(`lab ${argv[2]}: ${e.message}\n`);
      return 1;
    }
    throw err;
  }
}

// `lab sysctls | head`: a closed pipe ends the output quietly, like other CLI tools.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
process.exitCode = await run(process.argv);
