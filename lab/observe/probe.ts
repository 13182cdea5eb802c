#!/usr/bin/env node
// The sampler process: runs inside one host (netns or container) and prints one JSON line
// per tick: time, listeners (Recv-Q = accept queue, Send-Q = its limit), sockets per TCP
// state, and the watched kernel counters. One `ss -Htan` per tick (netlink: cheaper than
// /proc/net/tcp with many TIME_WAIT sockets) and two /proc reads. A tick that is still
// running when the next is due is skipped, so a slow ss does not pile up processes.
// Usage: probe.js [interval-ms=50] [max-seconds=3600]. Stops on SIGTERM/SIGINT or after max-seconds.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { parseProcNet, WATCHED } from './nstat.js';
import { countStates, parseListeners, parseSockets } from './ss.js';

const run = promisify(execFile);

export interface Sample {
  /** Milliseconds since the epoch. */
  t: number;
  listeners: Array<{ port: number; recvQ: number; sendQ: number }>;
  states: Record<string, number>;
  counters: Record<string, number>;
}

export async function sample(): Promise<Sample> {
  const t = Date.now();
  const { stdout } = await run('ss', ['-Htan'], { maxBuffer: 512 * 1024 * 1024 });
  const all = parseProcNet(readFileSync('/proc/net/netstat', 'utf8'), readFileSync('/proc/net/snmp', 'utf8'));
  const states = countStates(parseSockets(stdout));
  return {
    t,
    listeners: parseListeners(stdout).map((l) => ({ port: l.port, recvQ: l.recvQ, sendQ: l.sendQ })),
    states: Object.fromEntries(Object.entries(states).filter(([k]) => k !== 'UNCONN' && k !== 'CLOSE')),
    counters: Object.fromEntries(WATCHED.map((k) => [k, all[k] ?? 0])),
  };
}

async function main(): Promise<void> {
  const interval = Number(process.argv[2] ?? 50);
  const maxMs = Number(process.argv[3] ?? 3600) * 1000;
  const start = Date.now();
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      process.stdout.write(JSON.stringify(await sample()) + '\n');
    } catch (err) {
      process.stderr.write(`probe: ${(err as Error).message.split('\n')[0]}\n`);
    } finally {
      busy = false;
    }
  };
  await tick();
  const timer = setInterval(() => {
    if (Date.now() - start > maxMs) return stop();
    void tick();
  }, interval);
  const stop = () => {
    clearInterval(timer);
    // One last sample so the series ends at the stop, then exit.
    void tick().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1]?.endsWith('probe.js')) await main();
