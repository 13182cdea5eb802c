#!/usr/bin/env node
// The `lab` command. Each subcommand loads its heavy modules only when it runs, so
// `lab --help` is instant. Errors: one line on stderr, exit 2.
import { Command, CommanderError } from 'commander';
import { addServeOptions } from '../server/options.js';

const oneLine = { writeErr: (s: string) => process.stderr.write(s.split('\n')[0] + '\n') };

async function netns() {
  const { NetnsRuntime } = await import('./runtime/netns.js');
  const rt = new NetnsRuntime();
  await rt.check();
  return rt;
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
    .command('down [run-id]')
    .description('remove every namespace, bridge and process a lab created (all labs, or one run id), even after a crash')
    .action(async (runId?: string) => {
      const n = await (await netns()).destroy(runId);
      process.stderr.write(n ? `lab down: removed ${n} namespace(s)${runId ? ` of run ${runId}` : ''}\n` : 'lab down: nothing to remove\n');
    });

  program
    .command('status')
    .description('list running labs and their hosts')
    .option('--json', 'print JSON only')
    .action(async (opts: { json?: boolean }) => {
      const labs = await (await netns()).list();
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
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code) ? 0 : 2;
    }
    const e = err as Error;
    if (e.name === 'UsageError') {
      process.stderr.write(`lab serve: ${e.message}\n`);
      return 2;
    }
    if (e.name === 'RuntimeUnavailable') {
      process.stderr.write(`lab: ${e.message}\n`);
      return 2;
    }
    throw err;
  }
}

process.exitCode = await run(process.argv);
