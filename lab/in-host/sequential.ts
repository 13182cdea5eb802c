#!/usr/bin/env node
// The herd scenario's client: COUNT connections one after another, each with one
// `Connection: close` request whose answer and close it waits for, then GAP_MS of quiet, so
// that every waiter of the server is idle when the next connection arrives. Prints one
// JSON line. Usage: sequential.js HOST PORT COUNT GAP_MS
import { connect } from 'node:net';

export interface SequentialResult {
  attempts: number;
  ok: number;
  errors: Record<string, number>;
  durationMs: number;
}

const REQUEST = 'GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n';

function once(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let got = '';
    const timer = setTimeout(() => (s.destroy(), resolve('ETIMEDOUT')), 10_000);
    s.on('connect', () => s.write(REQUEST));
    s.on('data', (b: Buffer) => (got += b.toString('latin1')));
    s.on('error', (e: NodeJS.ErrnoException) => (clearTimeout(timer), resolve(e.code ?? 'error')));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(/^HTTP\/1\.1 200 /.test(got) ? null : 'no answer');
    });
  });
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
  const err = await once(host, port);
  if (err === null) out.ok++;
  else out.errors[err] = (out.errors[err] ?? 0) + 1;
  if (gap) await new Promise((r) => setTimeout(r, gap));
}
out.durationMs = Date.now() - t0;
process.stdout.write(JSON.stringify(out) + '\n');
