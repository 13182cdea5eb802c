// The server process's options: from flags, then TCPLAB_* environment variables, then defaults.
// Ranges, enums and defaults are lab/fields.ts's: the same bad value gets the same message
// here, in `lab up` and in a lab file.
import { Option, type Command } from 'commander';
import { F, intFlag, MODELS, textFlag, type Model, type Trigger } from '../lab/fields.js';

export interface ServeOptions {
  host: string;
  port: number;
  backlog: number;
  model: Model;
  threads: number;
  trigger: Trigger;
  idleTimeoutMs: number;
  maxBodyBytes: number;
  controlHost: string;
  controlPort: number;
}

const def = <T>(schema: { parse(v: undefined): T }) => schema.parse(undefined);

export const SERVE_FLAGS = [
  { flag: '--host <addr>', env: 'TCPLAB_HOST', help: 'address to bind', def: '0.0.0.0', parse: (v: string) => v },
  { flag: '--port <n>', env: 'TCPLAB_PORT', help: 'HTTP port (0: ephemeral)', def: def(F.port), parse: intFlag('--port', F.listenPort) },
  {
    flag: '--backlog <n>',
    env: 'TCPLAB_BACKLOG',
    help: 'listen() backlog, passed as is',
    def: def(F.backlog),
    parse: intFlag('--backlog', F.backlog),
  },
  {
    flag: '--model <name>',
    env: 'TCPLAB_MODEL',
    help: `reactor model: ${MODELS.join(', ')}`,
    def: def(F.model),
    parse: textFlag('--model', F.model),
  },
  { flag: '--threads <n>', env: 'TCPLAB_THREADS', help: 'loops/workers (single: 1)', def: def(F.threads), parse: intFlag('--threads', F.threads) },
  { flag: '--trigger <mode>', env: 'TCPLAB_TRIGGER', help: 'edge or level', def: def(F.trigger), parse: textFlag('--trigger', F.trigger) },
  {
    flag: '--idle-timeout <ms>',
    env: 'TCPLAB_IDLE_TIMEOUT_MS',
    help: 'idle connection timeout in ms (0: never)',
    def: def(F.idleTimeoutMs),
    parse: intFlag('--idle-timeout', F.idleTimeoutMs),
  },
  {
    flag: '--max-body-bytes <n>',
    env: 'TCPLAB_MAX_BODY_BYTES',
    help: 'a request whose Content-Length is above this gets 413',
    def: def(F.maxBodyBytes),
    parse: intFlag('--max-body-bytes', F.maxBodyBytes),
  },
  {
    flag: '--control-host <addr>',
    env: 'TCPLAB_CONTROL_HOST',
    help: 'control API address (loopback unless given)',
    def: '127.0.0.1',
    parse: (v: string) => v,
  },
  {
    flag: '--control-port <n>',
    env: 'TCPLAB_CONTROL_PORT',
    help: 'control API port (0: ephemeral)',
    def: def(F.controlPort),
    parse: intFlag('--control-port', F.listenPort),
  },
] as const;

/** Adds the serve flags (with TCPLAB_* env fallbacks) to a command. */
export function addServeOptions(cmd: Command): Command {
  for (const f of SERVE_FLAGS) {
    cmd.addOption(
      new Option(f.flag, f.help)
        .env(f.env)
        .argParser(f.parse as (v: string) => unknown)
        .default(f.def),
    );
  }
  return cmd;
}
