#!/usr/bin/env node
// autocannon with latencies at 1 µs resolution. autocannon's own histogram keeps whole
// milliseconds (a reactor answering in 60 µs reads "0 ms"), but each response event carries its
// time from send as a fraction of a millisecond (process.hrtime): this records those in µs in an
// HDR histogram of its own and prints autocannon's JSON result with `latencyUs` and the
// histogram itself (`histogramUs`: HdrHistogram's compressed base64) added. Not
// corrected for coordinated omission (measured from when each request was sent). With more than
// one worker, responses happen in worker threads: then only autocannon's ms figures exist.
// It reports its own CPU as cpu-wrap.js does for the other tools (the last stderr line,
// `tcplab-cpu {json}`, its whole life from start-up), so no wrapper process starts before it.
// Usage: autocannon-us.js OPTIONS_JSON   (autocannon's own option names: url, connections, …)
import autocannon from 'autocannon';
import * as hdr from 'hdr-histogram-js';
import { CPU_MARK } from './cpu-wrap.js';

/** This process's CPU since it started (every thread, workers included) and its wall time. */
function ownCpu(): string {
  const u = process.cpuUsage();
  return JSON.stringify({ userSec: u.user / 1e6, systemSec: u.system / 1e6, wallSec: process.uptime() });
}

async function main(): Promise<number> {
  let opts: autocannon.Options;
  try {
    opts = JSON.parse(process.argv[2] ?? '') as autocannon.Options;
  } catch {
    process.stderr.write('usage: autocannon-us.js OPTIONS_JSON\n');
    return 2;
  }
  // 1 µs to 1 h, 3 significant digits (HdrHistogram's usual).
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const inst = autocannon(opts, (err, r) => (err ? reject(err) : resolve(r)));
    inst.on('response', (_client, _status, _bytes, ms) => h.recordValue(Math.max(1, Math.round(ms * 1000))));
  });
  const latencyUs = h.totalCount
    ? { p50: h.getValueAtPercentile(50), p90: h.getValueAtPercentile(90), p99: h.getValueAtPercentile(99), max: h.maxValue, totalCount: h.totalCount }
    : null;
  // The histogram itself (compressed, base64): several loadgens' results merge from it.
  const histogramUs = h.totalCount ? hdr.encodeIntoCompressedBase64(h) : null;
  process.stdout.write(JSON.stringify({ ...result, latencyUs, histogramUs }) + '\n');
  return 0;
}

main().then(
  (code) => {
    process.stderr.write(`\n${CPU_MARK}${ownCpu()}\n`);
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`autocannon-us.js: ${err.message}\n`);
    process.exitCode = 1;
  },
);
