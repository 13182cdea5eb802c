// Whether this kernel and process may run the io_uring backend. Where they may not (no
// io_uring in the kernel, kernel.io_uring_disabled, a seccomp filter), the suites leave the
// io_uring cases out and print one line with the cause; never silently.
import { describe, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const DIST = fileURLToPath(new URL('../../dist/native/index.js', import.meta.url));

function probe(): string | null {
  const script = `const { Server } = await import(${JSON.stringify(DIST)}); const s = new Server({ host: '127.0.0.1', io: 'io_uring' }); await s.listen().then(() => s.close(), (e) => { console.log(e.message); return s.close(); });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the io_uring probe failed: ${r.stderr.trim()}`);
  return r.stdout.trim() || null;
}

/** null where io_uring runs; otherwise the reactor's own message naming the cause. */
export const URING_REFUSED = probe();
if (URING_REFUSED) process.stderr.write(`io_uring cases skipped here: ${URING_REFUSED}\n`);

/**
 * `it`, or `it.skip` for an io_uring case where io_uring is refused: such a case is counted as
 * skipped in the closing line, and the reason is the line above.
 */
export const itUring = (isUring: boolean): typeof it => (isUring && URING_REFUSED ? it.skip : it);
/** `describe`, or `describe.skip` likewise. */
export const describeUring = (isUring: boolean): typeof describe => (isUring && URING_REFUSED ? describe.skip : describe);

/** The items, without the io_uring ones where io_uring is refused (inside one test's loop). */
export const whereUring = <T>(items: T[], isUring: (t: T) => boolean): T[] => (URING_REFUSED ? items.filter((t) => !isUring(t)) : items);
