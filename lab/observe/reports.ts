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

const MARK = '@@tcplab-report-exit';

/**
 * Every report in one exec, one after the other (an exec is a round trip, and on Docker each
 * costs a runc exec: five per host took 0.7 s a phase, one takes 0.15 s): each tool's output
 * and exit code, split on a marker line after each. The tools' stderr comes back as one.
 */
async function runReports(host: Host): Promise<Array<{ exitCode: number; stdout: string; stderr: string }>> {
  const script = REPORTS.map((r) => `${r.argv.join(' ')}; printf '\\n${MARK} %d\\n' "$?"`).join('; ');
  const res = await host.exec(['sh', '-c', script], { timeoutMs: 30_000 });
  const parts = res.stdout.split(new RegExp(`\\n${MARK} (\\d+)\\n`));
  return REPORTS.map((_, i) => {
    const code = parts[2 * i + 1];
    // A report cut off (the exec failed or timed out): its exit code is the exec's.
    if (code === undefined) return { exitCode: res.exitCode === 0 ? 1 : res.exitCode, stdout: '', stderr: res.stderr };
    return { exitCode: Number(code), stdout: parts[2 * i]!, stderr: Number(code) === 0 ? '' : res.stderr };
  });
}

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
  const results = await runReports(host);
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
