// The server process's options: from flags, then TCPLAB_* environment variables, then defaults.
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Model, ServerOptions, Trigger } from '../native/index.js';

export interface ServeOptions extends Required<Pick<ServerOptions, 'host' | 'port' | 'backlog' | 'model' | 'threads' | 'trigger' | 'idleTimeoutMs'>> {
  controlHost: string;
  controlPort: number;
}

export const MODELS: readonly Model[] = ['single', 'reuseport', 'acceptor', 'workers'];
export const TRIGGERS: readonly Trigger[] = ['edge', 'level'];

/** Parses an integer flag value in [lo, hi]; the message names the flag and the range. */
export function intIn(name: string, lo: number, hi: number): (v: string) => number {
  return (v: string) => {
    if (!/^-?\d+$/.test(v.trim())) throw new InvalidArgumentError(`${name} must be an integer from ${lo} to ${hi}, got "${v}"`);
    const n = Number(v);
    if (n < lo || n > hi) throw new InvalidArgumentError(`${name} must be an integer from ${lo} to ${hi}, got ${v}`);
    return n;
  };
}

/** Parses a number flag value (fractions allowed) in [lo, hi]; the message names the flag and the range. */
export function numberIn(name: string, lo: number, hi: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < lo || n > hi) throw new InvalidArgumentError(`${name} must be a number from ${lo} to ${hi}, got "${v}"`);
    return n;
  };
}

export function oneOf<T extends string>(name: string, allowed: readonly T[]): (v: string) => T {
  return (v: string) => {
    if (!(allowed as readonly string[]).includes(v)) {
      throw new InvalidArgumentError(`${name} must be one of ${allowed.join(', ')}, got "${v}"`);
    }
    return v as T;
  };
}

export const SERVE_FLAGS = [
  { flag: '--host <addr>', env: 'TCPLAB_HOST', key: 'host', help: 'address to bind', def: '0.0.0.0', parse: (v: string) => v },
  { flag: '--port <n>', env: 'TCPLAB_PORT', key: 'port', help: 'HTTP port (0: ephemeral)', def: 8080, parse: intIn('--port', 0, 65535) },
  { flag: '--backlog <n>', env: 'TCPLAB_BACKLOG', key: 'backlog', help: 'listen() backlog, passed as is', def: 511, parse: intIn('--backlog', -2147483648, 2147483647) },
  { flag: '--model <name>', env: 'TCPLAB_MODEL', key: 'model', help: `reactor model: ${MODELS.join(', ')}`, def: 'single', parse: oneOf('--model', MODELS) },
  { flag: '--threads <n>', env: 'TCPLAB_THREADS', key: 'threads', help: 'loops/workers (single: 1)', def: 1, parse: intIn('--threads', 1, 256) },
  { flag: '--trigger <mode>', env: 'TCPLAB_TRIGGER', key: 'trigger', help: 'edge or level', def: 'edge', parse: oneOf('--trigger', TRIGGERS) },
  { flag: '--idle-timeout <ms>', env: 'TCPLAB_IDLE_TIMEOUT_MS', key: 'idleTimeoutMs', help: 'idle connection timeout in ms (0: never)', def: 60000, parse: intIn('--idle-timeout', 0, 86400000) },
  { flag: '--control-host <addr>', env: 'TCPLAB_CONTROL_HOST', key: 'controlHost', help: 'control API address', def: '0.0.0.0', parse: (v: string) => v },
  { flag: '--control-port <n>', env: 'TCPLAB_CONTROL_PORT', key: 'controlPort', help: 'control API port (0: ephemeral)', def: 9090, parse: intIn('--control-port', 0, 65535) },
] as const;

/** Adds the serve flags (with TCPLAB_* env fallbacks) to a command. */
export function addServeOptions(cmd: Command): Command {
  for (const f of SERVE_FLAGS) {
    cmd.addOption(new Option(f.flag, f.help).env(f.env).argParser(f.parse as (v: string) => unknown).default(f.def));
  }
  return cmd;
}
