// The server process's options: from flags, then TCPLAB_* environment variables, then defaults.
// Ranges, enums and defaults are core/fields.ts's: the same bad value gets the same message
// here, in `lab up` and in a lab file.
import { Option, type Command } from 'commander';
import { isIP } from 'node:net';
import { InputError } from '../core/errors.js';
import {
  badValue,
  defaultOf,
  F,
  intFlag,
  MODELS,
  SHARES,
  textFlag,
  type Model,
  type Io,
  type Share,
  type Trigger,
  type Work,
} from '../core/fields.js';

export interface ServeOptions {
  host: string;
  port: number;
  backlog: number;
  model: Model;
  threads: number;
  trigger: Trigger;
  io: Io;
  uringBatchUs: number;
  share: Share;
  workUs: number;
  work: Work;
  idleTimeoutMs: number;
  maxBodyBytes: number;
  headerTimeoutMs: number;
  bodyTimeoutMs: number;
  maxConnections: number;
  controlHost: string;
  controlPort: number;
}

const def = defaultOf;

/** An address flag: an IPv4 or IPv6 address as written (1.2.3 is not 1.2.0.3). */
const addressFlag = (flag: string) => (v: string) => {
  if (!isIP(v)) throw new InputError(badValue(flag, v, 'an IPv4 or IPv6 address like 127.0.0.1'));
  return v;
};

export const SERVE_FLAGS = [
  { flag: '--host <addr>', key: 'host', env: 'TCPLAB_HOST', help: 'address to bind', def: '0.0.0.0', parse: addressFlag('--host') },
  { flag: '--port <n>', key: 'port', env: 'TCPLAB_PORT', help: 'HTTP port (0: ephemeral)', def: def(F.port), parse: intFlag('--port', F.listenPort) },
  {
    flag: '--backlog <n>',
    key: 'backlog',
    env: 'TCPLAB_BACKLOG',
    help: 'listen() backlog, passed as is',
    def: def(F.backlog),
    parse: intFlag('--backlog', F.backlog),
  },
  {
    flag: '--model <name>',
    key: 'model',
    env: 'TCPLAB_MODEL',
    help: `reactor model: ${MODELS.join(', ')}`,
    def: def(F.model),
    parse: textFlag('--model', F.model),
  },
  {
    flag: '--threads <n>',
    key: 'threads',
    env: 'TCPLAB_THREADS',
    help: 'loops/workers (single: 1)',
    def: def(F.threads),
    parse: intFlag('--threads', F.threads),
  },
  {
    flag: '--trigger <mode>',
    key: 'trigger',
    env: 'TCPLAB_TRIGGER',
    help: 'edge or level',
    def: def(F.trigger),
    parse: textFlag('--trigger', F.trigger),
  },
  {
    flag: '--io <backend>',
    key: 'io',
    env: 'TCPLAB_IO',
    help: "the loops' I/O: epoll or io_uring (models single and reuseport)",
    def: def(F.io),
    parse: textFlag('--io', F.io),
  },
  {
    flag: '--uring-batch-us <us>',
    key: 'uringBatchUs',
    env: 'TCPLAB_URING_BATCH_US',
    help: 'io_uring: how long an enter may gather completions once one has come, µs (0: not at all; Linux 6.12+)',
    def: def(F.uringBatchUs),
    parse: intFlag('--uring-batch-us', F.uringBatchUs),
  },
  {
    flag: '--share <how>',
    key: 'share',
    env: 'TCPLAB_SHARE',
    help: `how prethread's waiters share the port: ${SHARES.join(', ')}`,
    def: def(F.share),
    parse: textFlag('--share', F.share),
  },
  {
    flag: '--work-us <us>',
    key: 'workUs',
    env: 'TCPLAB_WORK_US',
    help: 'simulated work per request, µs (0: none), done by the thread that answers it',
    def: def(F.workUs),
    parse: intFlag('--work-us', F.workUs),
  },
  {
    flag: '--work <kind>',
    key: 'work',
    env: 'TCPLAB_WORK',
    help: 'what the work is: cpu (a spin on the thread CPU clock) or sleep',
    def: def(F.work),
    parse: textFlag('--work', F.work),
  },
  {
    flag: '--idle-timeout <ms>',
    key: 'idleTimeoutMs',
    env: 'TCPLAB_IDLE_TIMEOUT_MS',
    help: 'idle connection timeout in ms (0: never)',
    def: def(F.idleTimeoutMs),
    parse: intFlag('--idle-timeout', F.idleTimeoutMs),
  },
  {
    flag: '--max-body-bytes <n>',
    key: 'maxBodyBytes',
    env: 'TCPLAB_MAX_BODY_BYTES',
    help: 'a request whose Content-Length is above this gets 413',
    def: def(F.maxBodyBytes),
    parse: intFlag('--max-body-bytes', F.maxBodyBytes),
  },
  {
    flag: '--header-timeout <ms>',
    key: 'headerTimeoutMs',
    env: 'TCPLAB_HEADER_TIMEOUT_MS',
    help: 'a request head not whole this long after its first byte gets 408 (0: never)',
    def: def(F.headerTimeoutMs),
    parse: intFlag('--header-timeout', F.headerTimeoutMs),
  },
  {
    flag: '--body-timeout <ms>',
    key: 'bodyTimeoutMs',
    env: 'TCPLAB_BODY_TIMEOUT_MS',
    help: 'a body not whole this long after its head gets 408 (0: never)',
    def: def(F.bodyTimeoutMs),
    parse: intFlag('--body-timeout', F.bodyTimeoutMs),
  },
  {
    flag: '--max-connections <n>',
    key: 'maxConnections',
    env: 'TCPLAB_MAX_CONNECTIONS',
    help: 'connections open at once; more are closed at once (0: no cap)',
    def: def(F.maxConnections),
    parse: intFlag('--max-connections', F.maxConnections),
  },
  {
    flag: '--control-host <addr>',
    key: 'controlHost',
    env: 'TCPLAB_CONTROL_HOST',
    help: 'control API address (loopback unless given)',
    def: '127.0.0.1',
    parse: addressFlag('--control-host'),
  },
  {
    flag: '--control-port <n>',
    key: 'controlPort',
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

/**
 * A flag that takes one value, given twice, is an error rather than "the last one wins"
 * (`--connections 5 --connections 6`). Flags in `repeatable` collect their values.
 */
export function refuseRepeats(cmd: Command, repeatable: readonly string[] = []): Command {
  const seen = new Map<string, string>();
  for (const o of cmd.options) {
    if (!o.required || !o.long || repeatable.includes(o.long)) continue;
    const flag = o.long;
    cmd.on(`option:${o.name()}`, (v: string) => {
      const prev = seen.get(flag);
      if (prev !== undefined) throw new InputError(`${flag}: given twice (${JSON.stringify(prev)} and ${JSON.stringify(v)}); give it once`);
      seen.set(flag, v);
    });
  }
  return cmd;
}

/**
 * The parsed flags as the server's options: `--idle-timeout` is commander's `idleTimeout`
 * but the reactor's `idleTimeoutMs` (each flag names its key, so none is dropped on the way).
 */
export function serveOptions(parsed: Record<string, unknown>): ServeOptions {
  // Each flag's parse gave its key's type; the object lists every key, so the compiler refuses a dropped one.
  const get = <K extends keyof ServeOptions>(key: K) =>
    parsed[new Option(SERVE_FLAGS.find((f) => f.key === key)!.flag).attributeName()] as ServeOptions[K];
  return {
    host: get('host'),
    port: get('port'),
    backlog: get('backlog'),
    model: get('model'),
    threads: get('threads'),
    trigger: get('trigger'),
    io: get('io'),
    uringBatchUs: get('uringBatchUs'),
    share: get('share'),
    workUs: get('workUs'),
    work: get('work'),
    idleTimeoutMs: get('idleTimeoutMs'),
    maxBodyBytes: get('maxBodyBytes'),
    headerTimeoutMs: get('headerTimeoutMs'),
    bodyTimeoutMs: get('bodyTimeoutMs'),
    maxConnections: get('maxConnections'),
    controlHost: get('controlHost'),
    controlPort: get('controlPort'),
  };
}
