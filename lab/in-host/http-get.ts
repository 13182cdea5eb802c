#!/usr/bin/env node
// A tiny HTTP client the lab runs inside a host to reach the server's control API there
// (the lab network is not reachable from the machine's own namespace).
// Usage: http-get.js URL [METHOD=GET]. Prints the body; exit 0 on 2xx, 1 otherwise.
async function main(): Promise<number> {
  const [url, method = 'GET'] = process.argv.slice(2);
  if (!url) {
    process.stderr.write('usage: http-get.js URL [METHOD]\n');
    return 2;
  }
  try {
    const res = await fetch(url, { method, signal: AbortSignal.timeout(10_000) });
    process.stdout.write(await res.text());
    return res.ok ? 0 : 1;
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    process.stderr.write(`http-get: ${method} ${url}: ${e.cause?.code ?? e.message}\n`);
    return 1;
  }
}

if (process.argv[1]?.endsWith('http-get.js')) process.exitCode = await main();
