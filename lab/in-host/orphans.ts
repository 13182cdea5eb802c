#!/usr/bin/env node
// The timewait scenario's orphan maker: opens N connections to a peer that never closes, sends
// each a FIN, waits for the FINs to be acknowledged (FIN-WAIT-2) and exits: the sockets are then
// orphans the kernel keeps for tcp_fin_timeout. Prints {"closed":N,"at":ms since the epoch}.
// Usage: orphans.js HOST PORT N
import { connect, type Socket } from 'node:net';

async function main(): Promise<number> {
  const [host, port, n] = process.argv.slice(2);
  if (!host || !/^\d+$/.test(port ?? '') || !/^\d+$/.test(n ?? '')) {
    process.stderr.write('usage: orphans.js HOST PORT N\n');
    return 2;
  }
  const socks: Socket[] = [];
  await Promise.all(
    Array.from(
      { length: Number(n) },
      () =>
        new Promise<void>((resolve, reject) => {
          const s = connect({ host, port: Number(port) }, () => resolve());
          s.on('error', reject);
          socks.push(s);
        }),
    ),
  );
  for (const s of socks) s.end();
  // The peer's kernel ACKs each FIN at once: then the sockets sit in FIN-WAIT-2.
  await new Promise((r) => setTimeout(r, 200));
  process.stdout.write(JSON.stringify({ closed: socks.length, at: Date.now() }) + '\n');
  // Exit without destroying them: the kernel keeps them as orphans.
  process.exit(0);
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`orphans.js: ${err.message}\n`);
    process.exit(1);
  },
);
