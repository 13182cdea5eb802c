// Runs inside a test's network namespace: nstat before, a paused listener with
// backlog B and N clients, then raw `ss -ltn`, `ss -tanoi` and `nstat -az` output.
// Usage: node observe-probe.mjs DIST_NATIVE_INDEX BACKLOG CLIENTS
import { connect } from 'node:net';
import { execFileSync } from 'node:child_process';

const [indexPath, backlog, clients] = process.argv.slice(2);
const { Server } = await import(indexPath);
const run = (argv) => execFileSync(argv[0], argv.slice(1), { encoding: 'utf8' });
const nstatBefore = run(['nstat', '-az']);
const server = new Server({ host: '127.0.0.1', port: 7100, backlog: Number(backlog) });
await server.listen();
server.pause();
const socks = [];
for (let i = 0; i < Number(clients); i++) {
  const s = connect(7100, '127.0.0.1');
  s.on('error', () => {});
  socks.push(s);
}
await new Promise((r) => setTimeout(r, 1300)); // past the first SYN retransmit (1 s)
const out = { ssLtn: run(['ss', '-ltn']), ssTanoi: run(['ss', '-tanoi']), nstatBefore, nstatAfter: run(['nstat', '-az']) };
for (const s of socks) s.destroy();
await server.close();
console.log(JSON.stringify(out));
