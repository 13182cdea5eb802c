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
    throw err;
  }
}

process.exitCode = await run(process.argv);
