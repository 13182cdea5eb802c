#!/usr/bin/env node
// The `lab` command. Subcommands load their modules lazily so `lab --help` is instant.
import { Command, CommanderError } from 'commander';

export function buildProgram(): Command {
  const program = new Command('lab')
    .description('tcplab: see and tune how the Linux TCP stack treats a busy server')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s.split('\n')[0] + '\n') })
    .showSuggestionAfterError(true);

  const serveCmd = new Command('serve')
    .description('run the native reactor and its control API in this process (what the server host runs)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s.split('\n')[0] + '\n') });
  program.addCommand(serveCmd);
  program.addCommand(
    new Command('down')
      .description('remove every namespace, bridge and process a lab created (all labs, or one run id), even after a crash')
      .argument('[run-id]', 'only this run')
      .exitOverride(),
  );
  program.addCommand(
    new Command('status')
      .description('list running labs and their hosts')
      .option('--json', 'print JSON only')
      .exitOverride(),
  );
  return program;
}

export async function run(argv: string[]): Promise<number> {
  const { addServeOptions, serve, UsageError } = await import('../server/main.js');
  const program = buildProgram();
  const serveCmd = program.commands.find((c) => c.name() === 'serve')!;
  addServeOptions(serveCmd);
  let action: (() => Promise<void>) | undefined;
  serveCmd.action(() => {
    action = () => serve(serveCmd.opts());
  });
  const runtime = async () => {
    const { NetnsRuntime } = await import('./runtime/netns.js');
    const rt = new NetnsRuntime();
    await rt.check();
    return rt;
  };
  program.commands.find((c) => c.name() === 'down')!.action((runId?: string) => {
    action = async () => {
      const n = await (await runtime()).destroy(runId);
      process.stderr.write(n ? `lab down: removed ${n} namespace(s)${runId ? ` of run ${runId}` : ''}\n` : 'lab down: nothing to remove\n');
    };
  });
  const statusCmd = program.commands.find((c) => c.name() === 'status')!;
  statusCmd.action(() => {
    action = async () => {
      const labs = await (await runtime()).list();
      if (statusCmd.opts().json) {
        process.stdout.write(JSON.stringify(labs) + '\n');
        return;
      }
      if (!labs.length) process.stdout.write('no labs running\n');
      for (const l of labs) {
        process.stdout.write(`${l.runId} (${l.runtime})\n`);
        for (const h of l.hosts) process.stdout.write(`  ${h.name.padEnd(12)} ${h.pids.length} process(es)\n`);
      }
    };
  });
  try {
    program.parse(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? 0 : 2;
    }
    throw err;
  }
  if (!action) {
    program.outputHelp();
    return 0;
  }
  try {
    await action();
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`lab serve: ${err.message}\n`);
      return 2;
    }
    if ((err as Error).name === 'RuntimeUnavailable') {
      process.stderr.write(`lab: ${(err as Error).message}\n`);
      return 2;
    }
    throw err;
  }
}

process.exitCode = await run(process.argv);
