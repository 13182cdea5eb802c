// The raw state reports of one host at one moment, kept as the tools printed them
// (ss -tanoi, ss -ltn, netstat -s, netstat -tan, nstat -az) plus what the lab reads from them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Host } from '../runtime/runtime.js';
import { parseNstat, type Counters } from './nstat.js';
import { countStates, parseListeners, parseSockets, type Listener } from './ss.js';

export const REPORTS = [
  { file: 'ss-tanoi.txt', argv: ['ss', '-tanoi'], pkg: 'iproute2' },
  { file: 'ss-ltn.txt', argv: ['ss', '-ltn'], pkg: 'iproute2' },
  { file: 'netstat-s.txt', argv: ['netstat', '-s'], pkg: 'net-tools' },
  { file: 'netstat-tan.txt', argv: ['netstat', '-tan'], pkg: 'net-tools' },
  // -s: do not update nstat's history file; -a: absolute values; -z: zeros too.
  { file: 'nstat-az.txt', argv: ['nstat', '-asz'], pkg: 'iproute2' },
] as const;

export interface StateReport {
  /** Paths relative to dir. */
  files: string[];
  listeners: Listener[];
  states: Record<string, number>;
  counters: Counters;
}

/** Runs every report on the host and writes them to dir/<sub>/<host>-<phase>-<file>. */
export async function stateReport(host: Host, dir: string, phase: string, sub = 'raw'): Promise<StateReport> {
  const files: string[] = [];
  mkdirSync(join(dir, sub), { recursive: true });
  const text: Record<string, string> = {};
  // At once: the reports are one moment's state, and each is an exec round trip.
  const results = await Promise.all(REPORTS.map((r) => host.exec([...r.argv], { timeoutMs: 30_000 })));
  for (const [i, r] of REPORTS.entries()) {
    const res = results[i]!;
    const name = join(sub, `${host.name}-${phase}-${r.file}`);
    const body =
      res.exitCode === 0
        ? res.stdout
        : `# ${r.argv.join(' ')} failed (exit ${res.exitCode}${res.exitCode === 127 ? `; install ${r.pkg}` : ''}): ${res.stderr.trim()}\n`;
    writeFileSync(join(dir, name), body);
    files.push(name);
    text[r.file] = res.exitCode === 0 ? res.stdout : '';
  }
  const sockets = parseSockets(text['ss-tanoi.txt']!);
  const states = countStates(sockets) as Record<string, number>;
  return {
    files,
    listeners: parseListeners(text['ss-ltn.txt']!),
    states: Object.fromEntries(Object.entries(states).filter(([, v]) => v > 0)),
    counters: text['nstat-az.txt'] ? parseNstat(text['nstat-az.txt']) : {},
  };
}
