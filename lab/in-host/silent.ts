#!/usr/bin/env node
// A peer that never closes: it accepts on PORT, reads nothing, answers nothing and never sends
// its FIN, so a client that closes leaves an orphaned FIN-WAIT-2 socket behind it (the timewait
// scenario's `orphans`). Prints {"event":"listening"} when it listens; runs until killed.
// Usage: silent.js PORT
import { createServer, type Socket } from 'node:net';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write('usage: silent.js PORT\n');
  process.exit(2);
}
const held: Socket[] = [];
createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => held.push(s))
  .on('error', (err) => {
    process.stderr.write(`silent.js: ${err.message}\n`);
    process.exit(1);
  })
  .listen(port, '0.0.0.0', () => process.stdout.write(JSON.stringify({ event: 'listening', port }) + '\n'));
