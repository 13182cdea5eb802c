#!/usr/bin/env node
// A tiny HTTP client the lab runs inside a host to reach the server's control API there
// (the lab network is not reachable from the machine's own namespace).
// Usage: http-get.js URL [METHOD=GET]. Prints the body; exit 0 on 2xx, 1 otherwise.
// node:http, not fetch(): fetch loads undici, 0.25 s of every call's start, and a point makes
// several calls.
import { request } from 'node:http';

function call(url: string, method: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('no answer within 10 s'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<number> {
  const [url, method = 'GET'] = process.argv.slice(2);
  if (!url) {
    process.stderr.write('usage: http-get.js URL [METHOD]\n');
    return 2;
  }
  try {
    const res = await call(url, method);
    process.stdout.write(res.body);
    return res.status >= 200 && res.status < 300 ? 0 : 1;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`http-get: ${method} ${url}: ${e.code ?? e.message}\n`);
    return 1;
  }
}

if (process.argv[1]?.endsWith('http-get.js')) process.exitCode = await main();
