// The soak's client: opens N keep-alive connections to 127.0.0.1:PORT (500 at a time), holds
// them HOLD_MS without a byte, then sends one request on each and waits for every answer.
// Prints one JSON line. Usage: node soak-client.mjs PORT N HOLD_MS
import { connect } from 'node:net';

const [port, n, hold] = process.argv.slice(2).map(Number);
const socks = [];
let connected = 0;
let closedEarly = 0;
for (let i = 0; i < n; i += 500) {
  await Promise.all(
    Array.from(
      { length: Math.min(500, n - i) },
      () =>
        new Promise((resolve, reject) => {
          const c = connect(port, '127.0.0.1', () => {
            connected++;
            resolve();
          });
          c.once('error', reject);
          c.once('close', () => closedEarly++);
          socks.push(c);
        }),
    ),
  );
}
await new Promise((r) => setTimeout(r, hold));
const stillOpen = socks.filter((c) => !c.destroyed).length;
const t0 = performance.now();
let answered = 0;
await Promise.all(
  socks.map(
    (c) =>
      new Promise((resolve) => {
        let buf = '';
        const timer = setTimeout(resolve, 30_000);
        c.on('data', (b) => {
          buf += b.toString('latin1');
          if (buf.includes('hello\n')) {
            answered += buf.startsWith('HTTP/1.1 200 OK') ? 1 : 0;
            clearTimeout(timer);
            resolve();
          }
        });
        c.write('GET / HTTP/1.1\r\nHost: soak\r\n\r\n');
      }),
  ),
);
const serveMs = performance.now() - t0;
for (const c of socks) c.destroy();
process.stdout.write(
  JSON.stringify({ connected, stillOpen, closedEarly, answered, serveMs: Math.round(serveMs), rps: Math.round(answered / (serveMs / 1000)) }) + '\n',
);
