// The `lab` command: parseCommand() turns argv into what to do (pure: no process, no file,
// no host; tests call it directly), run() does it. Each command is a file of this folder
// (define: its flags and checks; run: what it does); COMMANDS lists them in --help's order.
// lab/bin.ts is the executable around run(). Every error a user can cause or meet is a
// LabError: one line on stderr, its exit code.
import { Command, CommanderError } from 'commander';
import { refuseRepeats } from '../../server/options.js';
import { InputError, isLabError } from '../../core/errors.js';
import type { LabCommand } from './command.js';
import { serve } from './serve.js';
import { up } from './up.js';
import { sweep } from './sweep.js';
import { run as runCmd } from './run.js';
import { report } from './report.js';
import { compare } from './compare.js';
import { tuneCmd } from './tune.js';
import { predict } from './predict.js';
import { manifests } from './manifests.js';
import { schema } from './schema.js';
import { images } from './images.js';
import { sysctls } from './sysctls.js';
import { down } from './down.js';
import { status } from './status.js';

const COMMANDS = [serve, up, sweep, runCmd, tuneCmd, report, compare, predict, manifests, schema, images, sysctls, down, status] as const;

type InvocationOf<C> = C extends LabCommand<infer I> ? I : never;
/** What argv asks for: help, or one command's invocation. */
type CommandInvocation = InvocationOf<(typeof COMMANDS)[number]>;
export type Invocation = { cmd: 'help'; text: string } | CommandInvocation;

interface Parsed {
  inv: Invocation;
  run: () => Promise<number>;
}

function buildProgram(done: (p: Parsed) => void, output: { writeOut(s: string): void; writeErr(s: string): void }): Command {
  // Subcommands made with .command() inherit exitOverride and the output settings.
  const program = new Command('lab')
    .description('tcplab: see and tune how the Linux TCP stack treats a busy server')
    .exitOverride()
    .configureOutput(output)
    .showSuggestionAfterError(true);
  for (const c of COMMANDS as readonly LabCommand<CommandInvocation>[]) c.define(program, (inv) => done({ inv, run: () => c.run(inv) }));
  for (const c of program.commands) refuseRepeats(c, ['--server-sysctl', '--client-sysctl', '--set']);
  return program;
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

function parse(args: string[]): Parsed {
  let parsed: Parsed | undefined;
  let out = '';
  let err = '';
  const program = buildProgram((p) => (parsed = p), { writeOut: (s) => (out += s), writeErr: (s) => (err += s) });
  const help = (text: string): Parsed => ({ inv: { cmd: 'help', text }, run: async () => (process.stdout.write(text), 0) });
  if (!args.length) return help(program.helpInformation());
  try {
    program.parse(args, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(e.code)) return help(out);
      throw new InputError((err || e.message).split('\n')[0]!.replace(/^error: /, ''));
    }
    throw e;
  }
  if (!parsed) throw new InputError('no command given (see lab --help)');
  return parsed;
}

/** What argv (without node and the script) asks for; throws InputError for anything wrong. */
export function parseCommand(args: string[]): Invocation {
  return parse(args).inv;
}

/** Runs the CLI on argv (without node and the script); returns the exit code. */
export async function run(args: string[]): Promise<number> {
  const name = args[0] && !args[0].startsWith('-') ? `lab ${args[0]}` : 'lab';
  try {
    return await parse(args).run();
  } catch (err) {
    if (isLabError(err)) {
      process.stderr.write(`${name}: ${err.message.split('\n')[0]}\n`);
      return err.exitCode;
    }
    throw err;
  }
}
