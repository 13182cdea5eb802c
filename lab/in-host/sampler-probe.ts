#!/usr/bin/env node
// The sampler process: runs inside one host (netns or container) and prints one JSON line
// per tick. It starts no process per tick (an `ss` per tick on every host cost a third of
// the load's throughput on a 2-core machine) and keeps the kernel's work small:
//  - every tick: listeners with their accept queue (Recv-Q) and its limit (Send-Q) over
//    NETLINK_SOCK_DIAG asking for listeners only (~80 µs); TIME-WAIT from /proc/net/sockstat
//    (a per-namespace counter); the kernel counters from /proc/net/netstat and /proc/net/snmp;
//  - every `full` ms (default 500): sockets in every state, a dump that walks the whole
//    established hash (~4 ms here even in an empty namespace: the hash has 262,144 buckets
//    shared by all namespaces). Samples in between repeat those counts; `full: true` marks
//    a fresh one.
// Without the native addon (a host image without it) both come from /proc/net/tcp{,6}
// every `full` ms. A tick still running when the next is due is skipped.
// Usage: sampler-probe.js [interval-ms=50] [max-seconds=3600] [full-ms=500]. Stops on SIGTERM/SIGINT.
import { readFile } from 'node:fs/promises';
import { parseProcNet, WATCHED } from '../observe/nstat.js';
import { KERNEL_STATES, parseProcTcp, TCP_STATES, type TcpState } from '../observe/ss.js';

export interface Sample {
  /** Milliseconds since the epoch. */
  t: number;
  listeners: Array<{ port: number; recvQ: number; sendQ: number }>;
  /** Sockets per state; TIME-WAIT fresh every sample, the others from the last full dump. */
  states: Record<string, number>;
  /** This sample holds a fresh dump of every state. */
  full: boolean;
  counters: Record<string, number>;
}

type Diag = (all: boolean) => { states: Record<number, number>; listeners: Sample['listeners'] };

const read = (f: string) => readFile(f, 'utf8').catch(() => ''); // tcp6 is absent without IPv6

/** "TCP: inuse 5 orphan 0 tw 12 alloc 9 mem 3" → 12 (tw is per namespace; the others are not all). */
export function sockstatTimeWait(text: string): number {
  const m = /^TCP: .*\btw (\d+)/m.exec(text);
  if (!m) throw new Error('no "TCP: … tw N" line in /proc/net/sockstat');
  return Number(m[1]);
}

export class Prober {
  private states: Record<string, number> = {};
  private listeners: Sample['listeners'] = [];
  private lastFull = -Infinity;

  constructor(
    private readonly diag: Diag | null,
    private readonly fullMs = 500,
  ) {}

  async sample(): Promise<Sample> {
    const t = Date.now();
    const full = t - this.lastFull >= this.fullMs;
    const [netstat, snmp, sockstat, tcp, tcp6] = await Promise.all([
      read('/proc/net/netstat'),
      read('/proc/net/snmp'),
      read('/proc/net/sockstat'),
      ...(full && !this.diag ? [read('/proc/net/tcp'), read('/proc/net/tcp6')] : []),
    ]);
    if (full) {
      this.lastFull = t;
      const counts = Object.fromEntries(TCP_STATES.filter((s) => s !== 'UNCONN' && s !== 'CLOSE').map((s) => [s, 0])) as Record<string, number>;
      if (this.diag) {
        for (const [k, v] of Object.entries(this.diag(true).states)) {
          const name = KERNEL_STATES[Number(k)];
          if (name && name in counts) counts[name] = (counts[name] ?? 0) + v;
        }
      } else {
        const p = parseProcTcp(tcp!, tcp6!);
        for (const k of Object.keys(counts)) counts[k] = p.states[k as TcpState];
        this.listeners = p.listeners.map((l) => ({ ...l, sendQ: -1 }));
      }
      this.states = counts;
    }
    if (this.diag) this.listeners = this.diag(false).listeners;
    const all = parseProcNet(netstat!, snmp!);
    return {
      t,
      listeners: this.listeners,
      states: { ...this.states, 'TIME-WAIT': sockstatTimeWait(sockstat!) },
      full,
      counters: Object.fromEntries(WATCHED.map((k) => [k, all[k] ?? 0])),
    };
  }
}

async function loadDiag(): Promise<Diag | null> {
  try {
    return (await import('../../native/index.js')).sockDiag;
  } catch (err) {
    process.stderr.write(`probe: no native addon (${(err as Error).message.split('\n')[0]}); reading /proc/net/tcp instead\n`);
    return null;
  }
}

async function main(): Promise<void> {
  const interval = Number(process.argv[2] ?? 50);
  const maxMs = Number(process.argv[3] ?? 3600) * 1000;
  const prober = new Prober(await loadDiag(), Number(process.argv[4] ?? 500));
  const start = Date.now();
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      process.stdout.write(JSON.stringify(await prober.sample()) + '\n');
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

if (process.argv[1]?.endsWith('sampler-probe.js')) await main();
