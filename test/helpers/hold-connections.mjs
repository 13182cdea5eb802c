// Opens N connections to HOST:PORT at once, holds them MS milliseconds, then closes them.
// Prints how many connected. Usage: node hold-connections.mjs HOST PORT N MS
import { connect } from 'node:net';

const [host, port, n, ms] = process.argv.slice(2);
let connected = 0;
const socks = [];
for (let i = 0; i < Number(n); i++) {
  const s = connect(Number(port), host, () => connected++);
  s.on('error', () => {});
  socks.push(s);
}
await new Promise((r) => setTimeout(r, Number(ms)));
for (const s of socks) s.destroy();
process.stdout.write(`${connected}\n`);
