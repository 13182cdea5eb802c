#!/usr/bin/env node
// The processes that hold a listening TCP socket on a port in this network namespace, and what
// /proc says of them: how a server the lab did not build (nginx, the user's own command) is
// watched and paused, and how any server's footprint is read during a load without a TCP
// connection to it. The listener's inode comes from /proc/net/tcp and tcp6 (this namespace's
// sockets); a process holds it when one of its fds links to socket:[inode]. The sums cover
// them and their descendants (a fork()ed child per connection holds no listener), each thread
// of each (/proc/<pid>/task/<tid>/status: a process's own status counts its main thread's
// context switches only).
// Usage: port-procs.js PORT stat      → one JSON line: pids, threads, RSS, context switches, CPU
//        port-procs.js PORT STOP|CONT → sends the signal to each of them (pause, resume)
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { sumProcesses, type ProcessSum } from '../../server/proc.js';

export interface PortProcs extends Omit<ProcessSum, 'processes'> {
  /** The processes holding the listener. */
  pids: number[];
  /** Them and their descendants. */
  processes: number;
}

/** Inodes of the sockets listening on port (state 0A) in this namespace. */
export function listenerInodes(port: number, tables: string[]): Set<string> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const out = new Set<string>();
  for (const t of tables) {
    for (const line of t.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[1]!.endsWith(`:${hex}`) && f[3] === '0A') out.add(f[9]!);
    }
  }
  return out;
}

function holders(inodes: Set<string>): number[] {
  const want = new Set([...inodes].map((i) => `socket:[${i}]`));
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${d}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      let link = '';
      try {
        link = readlinkSync(`/proc/${d}/fd/${fd}`);
      } catch {
        continue;
      }
      if (want.has(link)) {
        pids.push(Number(d));
        break;
      }
    }
  }
  return pids.sort((a, b) => a - b);
}

/** pids and every descendant of theirs (/proc/<pid>/task/<tid>/children). */
function withDescendants(pids: number[]): number[] {
  const seen = new Set<number>();
  const todo = [...pids];
  while (todo.length) {
    const pid = todo.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone
    }
    for (const tid of tids) {
      try {
        for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (c.trim()) todo.push(Number(c));
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return [...seen];
}

export function portProcs(port: number): PortProcs {
  const tables = ['/proc/net/tcp', '/proc/net/tcp6'].map((p) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  });
  const inodes = listenerInodes(port, tables);
  const pids = inodes.size ? holders(inodes) : [];
  // The listeners' holders reap their children: those children's CPU is in their cutime/cstime.
  return { pids, ...sumProcesses(withDescendants(pids), pids) };
}

function main(): number {
  const [portText, what] = process.argv.slice(2);
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535 || !['stat', 'STOP', 'CONT'].includes(what ?? '')) {
    process.stderr.write('usage: port-procs.js PORT stat|STOP|CONT\n');
    return 2;
  }
  const procs = portProcs(port);
  if (what === 'stat') {
    process.stdout.write(JSON.stringify(procs) + '\n');
    return 0;
  }
  if (procs.pids.length === 0) {
    process.stderr.write(`port-procs: no process listens on port ${port}\n`);
    return 1;
  }
  for (const pid of procs.pids) process.kill(pid, what === 'STOP' ? 'SIGSTOP' : 'SIGCONT');
  return 0;
}

if (process.argv[1]?.endsWith('port-procs.js')) process.exitCode = main();
