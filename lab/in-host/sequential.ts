#!/usr/bin/env node
// The herd scenario's client: COUNT connections one after another, each with one
// `Connection: close` request whose answer and close it waits for, then GAP_MS of quiet, so
// that every waiter of the server is idle when the next connection arrives. Prints one
// JSON line. Usage: sequential.js HOST PORT COUNT GAP_MS
import { requestOnce } from './request-once.js';

export interface SequentialResult {
  attempts: number;
  ok: number;
  errors: Record<string, number>;
  durationMs: number;
}

const [host, portText, countText, gapText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const gap = Number(gapText);
if (!host || !Number.isInteger(port) || !Number.isInteger(count) || count < 1 || !Number.isInteger(gap) || gap < 0) {
  process.stderr.write('usage: sequential.js HOST PORT COUNT GAP_MS\n');
  process.exit(2);
}
const t0 = Date.now();
const out: SequentialResult = { attempts: 0, ok: 0, errors: {}, durationMs: 0 };
for (let i = 0; i < count; i++) {
  out.attempts++;
  const err = await requestOnce(host, port, 'server');
  if (err === null) out.ok++;
  else out.errors[err] = (out.errors[err] ?? 0) + 1;
  if (gap) await new Promise((r) => setTimeout(r, gap));
}
out.durationMs = Date.now() - t0;
process.stdout.write(JSON.stringify(out) + '\n');
