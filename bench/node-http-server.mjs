// Reference server for the benchmark: node:http answering the same bytes as tcplab.
import { createServer } from 'node:http';

const [host, port] = process.argv.slice(2);
const body = 'hello\n';
const server = createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 6 });
  res.end(body);
});
server.keepAliveTimeout = 120_000;
server.listen(Number(port), host, () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
