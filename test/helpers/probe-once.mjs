// Runs inside a test's namespace: one full sample from the sampler, with the native
// sock_diag dump ("diag") or the /proc/net/tcp fallback ("proc"). Usage: node probe-once.mjs diag|proc
const mode = process.argv[2];
const { Prober } = await import(new URL('../../dist/lab/in-host/sampler-probe.js', import.meta.url).href);
const diag = mode === 'diag' ? (await import(new URL('../../dist/native/index.js', import.meta.url).href)).sockDiag : null;
process.stdout.write(JSON.stringify(await new Prober(diag).sample()) + '\n');
