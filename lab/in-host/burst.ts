#!/usr/bin/env node
// A burst of connections, all at once, held open for a while (the backlog scenario's
// client). Prints one JSON line: how many completed the handshake, how many were still
// waiting (SYN-SENT: their SYNs dropped by a full queue), how many were reset or refused.
// Usage: burst.js HOST PORT COUNT HOLD_MS
import { connect, type Socket } from 'node:net';

export interface BurstResult {
  connected: number;
  pending: number;
  reset: number;
  refused: number;
  other: number;
  /** ms from the burst's start to each completed handshake. */
  connectMs: number[];
}

async function main(): Promise<number> {
  const [host, port, count, hold] = process.argv.slice(2);
  if (!host || !port || !count || !hold) {
    process.stderr.write('usage: burst.js HOST PORT COUNT HOLD_MS\n');
    return 2;
  }
  const out: BurstResult = { connected: 0, pending: 0, reset: 0, refused: 0, other: 0, connectMs: [] };
  const socks: Socket[] = [];
  const state = new Map<Socket, 'pending' | 'connected' | 'failed'>();
  const t0 = Date.now();
  for (let i = 0; i < Number(count); i++) {
    const s = connect(Number(port), host);
    state.set(s, 'pending');
    s.on('connect', () => {
      state.set(s, 'connected');
      out.connectMs.push(Date.now() - t0);
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (state.get(s) === 'failed') return;
      state.set(s, 'failed');
      if (err.code === 'ECONNRESET') out.reset++;
      else if (err.code === 'ECONNREFUSED') out.refused++;
      else out.other++;
    });
    socks.push(s);
  }
  await new Promise((r) => setTimeout(r, Number(hold)));
  for (const s of socks) {
    const st = state.get(s);
    if (st === 'connected') out.connected++;
    else if (st === 'pending') out.pending++;
    s.destroy();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  return 0;
}

if (process.argv[1]?.endsWith('burst.js')) process.exitCode = await main();
