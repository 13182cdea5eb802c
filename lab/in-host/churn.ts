#!/usr/bin/env node
// The timewait scenario's client: short connections, one request each, for DURATION_MS with
// CONCURRENCY of them at a time. CLOSER says who closes first: "server" sends
// `Connection: close` (the server answers and closes, so TIME_WAIT lands on the server);
// "client" keeps the connection alive and closes it itself once the answer is in (TIME_WAIT on
// the client). Connect errors are counted by code (EADDRNOTAVAIL: no free local port for this
// destination). Prints one JSON line.
// Usage: churn.js HOST PORT CLOSER DURATION_MS CONCURRENCY
import { requestOnce } from './request-once.js';

export interface ChurnResult {
  closer: 'client' | 'server';
  attempts: number;
  ok: number;
  errors: Record<string, number>;
  /** ms from the start to the first connect error, null when none. */
  firstErrorMs: number | null;
  durationMs: number;
  rps: number;
  /** Successful connections per 250 ms slice. */
  okPerSlice: number[];
  /** When the last successful connection closed (ms since the epoch), null when none did. */
  lastOkAt: number | null;
}

const SLICE_MS = 250;

async function main(): Promise<number> {
  const [host, port, closer, duration, conc] = process.argv.slice(2);
  if (
    !host ||
    !/^\d+$/.test(port ?? '') ||
    (closer !== 'client' && closer !== 'server') ||
    !/^\d+$/.test(duration ?? '') ||
    !/^\d+$/.test(conc ?? '')
  ) {
    process.stderr.write('usage: churn.js HOST PORT client|server DURATION_MS CONCURRENCY\n');
    return 2;
  }
  const r: ChurnResult = { closer, attempts: 0, ok: 0, errors: {}, firstErrorMs: null, durationMs: 0, rps: 0, okPerSlice: [], lastOkAt: null };
  const t0 = Date.now();
  const until = t0 + Number(duration);
  const worker = async () => {
    while (Date.now() < until) {
      r.attempts++;
      const err = await requestOnce(host, Number(port), closer);
      const at = Date.now() - t0;
      if (err === null) {
        r.ok++;
        r.lastOkAt = Date.now();
        const slice = Math.floor(at / SLICE_MS);
        while (r.okPerSlice.length <= slice) r.okPerSlice.push(0);
        r.okPerSlice[slice]!++;
      } else {
        r.errors[err] = (r.errors[err] ?? 0) + 1;
        r.firstErrorMs ??= at;
        // A failed connect returns at once; do not spin the CPU on it.
        await new Promise((res) => setTimeout(res, 1));
      }
    }
  };
  await Promise.all(Array.from({ length: Number(conc) }, worker));
  r.durationMs = Date.now() - t0;
  r.rps = Math.round((r.ok / r.durationMs) * 1000);
  process.stdout.write(JSON.stringify(r) + '\n');
  return 0;
}

if (process.argv[1]?.endsWith('churn.js')) process.exitCode = await main();
