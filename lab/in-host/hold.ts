#!/usr/bin/env node
// The models scenario's client: CLIENTS keep-alive connections opened at once (in batches of
// 100), each sending one request as soon as it connects; it notes which are answered within
// ANSWER_MS, holds every connection open until HOLD_MS after the start, then closes them all.
// With UNTIL_MS and TOKEN, the hold goes on past HOLD_MS until SIGUSR2 comes (release.js TOKEN
// sends it: the lab has seen the server settle) or UNTIL_MS, whichever is first; a SIGUSR2
// before HOLD_MS ends the hold at HOLD_MS.
// A connection whose handshake has not completed (its SYN dropped: the accept queue is full)
// counts as not connected. Prints one JSON line.
// Usage: hold.js HOST PORT CLIENTS ANSWER_MS HOLD_MS [UNTIL_MS TOKEN]
import { connect, type Socket } from 'node:net';

export interface HoldResult {
  clients: number;
  /** Handshakes completed (the server's accept queue took them, accepted or not). */
  connected: number;
  /** Requests answered within ANSWER_MS of connecting. */
  answered: number;
  errors: Record<string, number>;
  durationMs: number;
}

const REQUEST = 'GET / HTTP/1.1\r\nHost: lab\r\n\r\n';

const [host, portText, clientsText, answerText, holdText, untilText] = process.argv.slice(2);
const port = Number(portText);
const clients = Number(clientsText);
const answerMs = Number(answerText);
const holdMs = Number(holdText);
const untilMs = untilText === undefined ? holdMs : Number(untilText);
if (!host || ![port, clients, answerMs, holdMs, untilMs].every((n) => Number.isInteger(n) && n > 0) || untilMs < holdMs) {
  process.stderr.write('usage: hold.js HOST PORT CLIENTS ANSWER_MS HOLD_MS [UNTIL_MS TOKEN]\n');
  process.exit(2);
}
const t0 = Date.now();
let release: () => void = () => {};
const released = new Promise<void>((resolve) => (release = resolve));
process.on('SIGUSR2', () => release());
const out: HoldResult = { clients, connected: 0, answered: 0, errors: {}, durationMs: 0 };
const socks: Socket[] = [];
function one(): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    socks.push(s);
    let settled = false;
    const settle = () => {
      if (!settled) {
        settled = true;
        resolve();
      }
    };
    s.on('connect', () => {
      out.connected++;
      s.write(REQUEST);
      const t = setTimeout(settle, answerMs);
      s.once('data', () => {
        out.answered++;
        clearTimeout(t);
        settle();
      });
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      out.errors[e.code ?? 'error'] = (out.errors[e.code ?? 'error'] ?? 0) + 1;
      settle();
    });
    // A connect that never completes (SYN dropped) settles when the hold ends.
    setTimeout(settle, Math.max(0, holdMs - (Date.now() - t0)));
  });
}
const pending: Array<Promise<void>> = [];
for (let i = 0; i < clients; i += 100) {
  const batch = Array.from({ length: Math.min(100, clients - i) }, one);
  pending.push(...batch);
  await new Promise((r) => setTimeout(r, 10));
}
await Promise.all(pending);
await new Promise((r) => setTimeout(r, Math.max(0, holdMs - (Date.now() - t0))));
if (untilMs > holdMs) {
  let bound: NodeJS.Timeout | undefined;
  await Promise.race([released, new Promise((r) => (bound = setTimeout(r, Math.max(0, untilMs - (Date.now() - t0)))))]);
  clearTimeout(bound); // else the process lives on until UNTIL_MS
}
process.removeAllListeners('SIGUSR2');
for (const s of socks) s.destroy();
out.durationMs = Date.now() - t0;
process.stdout.write(JSON.stringify(out) + '\n');
