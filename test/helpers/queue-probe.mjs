// Runs inside a test's network namespace: a paused server with backlog B, more
// clients than the queue holds, then what `ss -ltn` shows paused and after resume.
// Usage: node queue-probe.mjs DIST_NATIVE_INDEX BACKLOG [IO]
import { connect } from 'node:net';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const [indexPath, backlogArg, io = 'epoll'] = process.argv.slice(2);
const { Server } = await import(indexPath);
const backlog = Number(backlogArg);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function listener(port) {
  // State Recv-Q Send-Q Local:Port Peer:Port
  const line = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' }).trim();
  const [, recvQ, sendQ] = line.split(/\s+/);
  return { recvQ: Number(recvQ), sendQ: Number(sendQ), line };
}

const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
const server = new Server({ host: '127.0.0.1', port: 0, backlog, io });
const { port } = await server.listen();
server.pause();
const limit = Math.min(backlog >>> 0, somaxconn);
const clients = limit + 8;
let connected = 0;
const socks = [];
for (let i = 0; i < clients; i++) {
  const s = connect({ host: '127.0.0.1', port });
  s.on('connect', () => connected++);
  s.on('error', () => {});
  socks.push(s);
}
await sleep(400);
const paused = listener(port);
const connectedPaused = connected;
const acceptedPaused = server.stats().total.accepted;
server.resume();
const deadline = Date.now() + 3000;
while (server.stats().total.accepted < paused.recvQ && Date.now() < deadline) await sleep(10);
await sleep(50);
const resumed = listener(port);
const acceptedAfter = server.stats().total.accepted;
for (const s of socks) s.destroy();
await server.close();
console.log(JSON.stringify({ port, somaxconn, backlog, limit, clients, paused, connectedPaused, acceptedPaused, resumed, acceptedAfter }));
