#!/usr/bin/env node
// Ends a hold.js that holds past its HOLD_MS: sends SIGUSR2 to the processes of this host whose
// command line is Node running hold.js with TOKEN among its arguments. Prints how many it signalled (0 when
// the hold had already ended: not an error).
// Usage: release.js TOKEN
import { readdirSync, readFileSync } from 'node:fs';

const token = process.argv[2];
if (!token) {
  process.stderr.write('usage: release.js TOKEN\n');
  process.exit(2);
}
let signalled = 0;
for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    continue; // gone meanwhile
  }
  // Node running hold.js itself, not a wrapper around it (coreutils timeout dies of SIGUSR2).
  if (!/(^|\/)node$/.test(argv[0] ?? '') || !argv[1]?.endsWith('/hold.js') || !argv.includes(token)) continue;
  try {
    process.kill(Number(pid), 'SIGUSR2');
    signalled++;
  } catch {
    // it ended meanwhile
  }
}
process.stdout.write(JSON.stringify({ signalled }) + '\n');
