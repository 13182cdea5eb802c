#!/usr/bin/env node
// The overflow scenario's client, run in the loadgen's network namespace (as root there,
// with NET_ADMIN for nft). Against a server that does not accept():
//   1. held: HELD handshakes whose final ACK is held back by an nft rule in this namespace
//      (the rule drops every non-SYN packet from local ports 61000-61999 to the server), so
//      the server keeps them as requests in SYN-RECV while the client believes it is connected;
//   2. fill: FILL connections, one after the other, complete, send their request and fill the
//      accept queue (the request queues them on a listener that defers accept, too);
//   3. late: LATE connections whose SYNs meet the full queue;
//   4. release: the rule goes, each held client sends its request at once, so its ACK meets the
//      full queue now: tcp_abort_on_overflow=1 answers RST, 0 drops it.
// Prints {"event":"released"} when the rule is gone (the orchestrator may then let the server
// accept), and after HOLD_MS one JSON line with every client's outcome and timings, and the
// late clients' SYN retransmission times (from ss's retransmit timer, sampled every 200 ms:
// each sample says when the next retransmission goes out).
// Usage: overflow-client.js HOST PORT HELD FILL LATE HOLD_MS
import { execFile, spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { parseSockets, splitAddress } from '../observe/ss.js';

import { RESERVED_PORTS } from '../../core/fields.js';

export const HELD_PORTS = RESERVED_PORTS.overflow;
const TABLE = 'tcplab_hold';

interface Client {
  sock: Socket;
  startedAt: number;
  connectMs?: number;
  /** ms after release (held) or after start (others). */
  answeredMs?: number;
  resetMs?: number;
  error?: string;
  errorAt?: number;
}

export interface GroupOutcome {
  count: number;
  connected: number;
  answered: number;
  reset: number;
  /** Neither answered nor reset nor failed otherwise at the end. */
  waiting: number;
  /** Still in SYN-SENT at the end (never connected). */
  pending: number;
  otherErrors: Record<string, number>;
  connectMs: number[];
  resetMs: number[];
  answeredMs: number[];
  /** ms after its start that each client failed otherwise (ETIMEDOUT: connect() gave up). */
  failedMs: number[];
}

function nft(script: string): void {
  const r = spawnSync('nft', ['-f', '-'], { input: script, encoding: 'utf8' });
  if (r.error) throw new Error(`nft: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`nft: ${r.stderr.trim()}`);
}

const REQUEST = 'GET / HTTP/1.1\r\nHost: lab\r\n\r\n';

/**
 * Watches the SYN-SENT sockets toward the server (the held ports aside) until stop(): for each
 * local port, when its SYN retransmissions went out, s after T0 (index k: retransmission k + 1).
 */
function watchSynSent(
  port: number,
  t0: number,
): { stop(): Promise<Array<{ port: number; retransmitsAt: Array<number | null>; readWithinSec: Array<number | null> }>> } {
  const seen = new Map<number, number[]>();
  // How long each time's ss took to run (s): the timer was read somewhere in it, so the time is
  // this much later at most (ss is slow to start on a busy machine).
  const within = new Map<number, number[]>();
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now();
      const r = await promisify(execFile)('ss', ['-Htano', `( dport = :${port} )`]).catch(() => null);
      const took = Math.ceil((Date.now() - at) / 10) / 100;
      for (const row of r ? parseSockets(r.stdout) : []) {
        const local = splitAddress(row.local).port;
        if (row.state !== 'SYN-SENT' || !row.timer || (local >= HELD_PORTS.first && local <= HELD_PORTS.last)) continue;
        const list = seen.get(local) ?? [];
        const spread = within.get(local) ?? [];
        if (list[row.timer.count] === undefined) {
          list[row.timer.count] = Math.round((at - t0 + Math.max(0, row.timer.seconds) * 1000) / 10) / 100;
          spread[row.timer.count] = took;
        }
        seen.set(local, list);
        within.set(local, spread);
      }
      await new Promise((res) => setTimeout(res, 200));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return [...seen]
        .sort(([a], [b]) => a - b)
        .map(([p, at]) => ({
          port: p,
          retransmitsAt: Array.from(at, (x) => x ?? null),
          readWithinSec: Array.from(within.get(p) ?? [], (x) => x ?? null),
        }));
    },
  };
}

function open(host: string, port: number, localPort?: number): Client {
  const c: Client = { sock: connect({ host, port, ...(localPort ? { localPort } : {}) }), startedAt: Date.now() };
  c.sock.on('connect', () => (c.connectMs = Date.now() - c.startedAt));
  c.sock.on('data', (d) => {
    if (c.answeredMs === undefined && d.toString('latin1').startsWith('HTTP/1.1 ')) c.answeredMs = Date.now();
  });
  c.sock.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') c.resetMs ??= Date.now();
    else {
      c.error ??= err.code ?? err.message;
      c.errorAt ??= Date.now();
    }
  });
  return c;
}

const connected = (c: Client, ms: number) =>
  new Promise<boolean>((resolve) => {
    if (c.connectMs !== undefined) return resolve(true);
    const t = setTimeout(() => resolve(false), ms);
    c.sock.once('connect', () => (clearTimeout(t), resolve(true)));
    c.sock.once('error', () => (clearTimeout(t), resolve(false)));
  });

function outcome(cs: Client[], since: (c: Client) => number): GroupOutcome {
  const o: GroupOutcome = {
    count: cs.length,
    connected: 0,
    answered: 0,
    reset: 0,
    waiting: 0,
    pending: 0,
    otherErrors: {},
    connectMs: [],
    resetMs: [],
    answeredMs: [],
    failedMs: [],
  };
  for (const c of cs) {
    if (c.connectMs !== undefined) {
      o.connected++;
      o.connectMs.push(c.connectMs);
    }
    if (c.answeredMs !== undefined) {
      o.answered++;
      o.answeredMs.push(c.answeredMs - since(c));
    } else if (c.resetMs !== undefined) {
      o.reset++;
      o.resetMs.push(c.resetMs - since(c));
    } else if (c.error) {
      o.otherErrors[c.error] = (o.otherErrors[c.error] ?? 0) + 1;
      o.failedMs.push(c.errorAt! - c.startedAt);
    } else if (c.connectMs === undefined) o.pending++;
    else o.waiting++;
  }
  return o;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.length !== 6 || args.slice(1).some((a) => !/^\d+$/.test(a))) {
    process.stderr.write('usage: overflow-client.js HOST PORT HELD FILL LATE HOLD_MS\n');
    return 2;
  }
  const [host, port, held, fill, late, holdMs] = [args[0]!, ...args.slice(1).map(Number)] as [string, number, number, number, number, number];
  if (held > HELD_PORTS.last - HELD_PORTS.first + 1) throw new Error(`at most ${HELD_PORTS.last - HELD_PORTS.first + 1} held clients`);
  nft(
    `table inet ${TABLE} {\n chain out {\n  type filter hook output priority 0;\n  ip daddr ${host} tcp dport ${port} tcp sport ${HELD_PORTS.first}-${HELD_PORTS.last} tcp flags & syn == 0 drop\n }\n}\n`,
  );
  let released = false;
  const cleanup = () => {
    if (!released) spawnSync('nft', ['delete', 'table', 'inet', TABLE]);
  };
  process.on('exit', cleanup);
  const all: Client[] = [];
  try {
    const heldC = Array.from({ length: held }, (_, i) => open(host, port, HELD_PORTS.first + i));
    all.push(...heldC);
    const heldOk = await Promise.all(heldC.map((c) => connected(c, 5000)));
    const fillC: Client[] = [];
    for (let i = 0; i < fill; i++) {
      const c = open(host, port);
      fillC.push(c);
      all.push(c);
      // Each sends its request once connected, as a client does: a listener that defers accept
      // (TCP_DEFER_ACCEPT) queues a connection only when its first data arrives.
      if (await connected(c, 5000)) await new Promise<void>((r) => c.sock.write(REQUEST, () => r()));
    }
    const lateC = Array.from({ length: late }, () => open(host, port));
    all.push(...lateC);
    const synWatch = watchSynSent(port, Math.min(...lateC.map((c) => c.startedAt), Date.now()));
    await new Promise((r) => setTimeout(r, 300));
    const lateBeforeRelease = outcome(lateC, (c) => c.startedAt);
    nft(`delete table inet ${TABLE}\n`);
    released = true;
    const releasedAt = Date.now();
    for (const c of heldC) c.sock.write(REQUEST);
    process.stdout.write(JSON.stringify({ event: 'released', heldConnected: heldOk.filter(Boolean).length }) + '\n');
    await new Promise((r) => setTimeout(r, holdMs));
    const lateSyn = await synWatch.stop();
    const result = {
      lateSyn,
      event: 'result',
      held: outcome(heldC, () => releasedAt),
      // How long before the release the held handshakes began: their requests' SYN-ACK timer runs from then.
      heldForMs: releasedAt - Math.min(...heldC.map((c) => c.startedAt)),
      fill: outcome(fillC, (c) => c.startedAt),
      late: outcome(lateC, (c) => c.startedAt),
      lateBeforeRelease,
    };
    process.stdout.write(JSON.stringify(result) + '\n');
    return 0;
  } finally {
    for (const c of all) c.sock.destroy();
  }
}

if (process.argv[1]?.endsWith('overflow-client.js')) {
  main().then(
    (code) => (process.exitCode = code),
    (err: Error) => {
      process.stderr.write(`overflow-client.js: ${err.message}\n`);
      process.exitCode = 1;
    },
  );
}
