// Where the project's files are: the repository (or image) root, found by walking up from
// this module (dist/core/paths.js when built, core/paths.ts under vitest) to tcplab's
// package.json. Hosts run the server, the sampler and autocannon from there.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tcplab') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the tcplab package root above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

export const REPO_ROOT = findRoot();

/** A built script of the project, e.g. dist('server/main.js'). */
export const dist = (rel: string) => join(REPO_ROOT, 'dist', rel);
