// The lab's images: stage the build context (see the Dockerfile's header), derive the tag
// from a hash of everything in it, and build `server` and `loadgen` only when no image
// has that tag. Progress lines go to the caller (stderr).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type Docker from 'dockerode';
import { pack } from 'tar-stream';
import { REPO_ROOT } from '../../core/paths.js';
import { EnvironmentError } from '../../core/errors.js';

export const IMAGE_NAMES = { server: 'tcplab-server', loadgen: 'tcplab-loadgen' } as const;
export type ImageRole = keyof typeof IMAGE_NAMES;

export interface ImageOptions {
  /** FROM for every stage (default debian:bookworm-slim; scripts/build-base-image.sh makes it offline). */
  base: string;
  /** Build wrk2 from upstream (needs internet at build time). */
  wrk2: boolean;
  progress: (line: string) => void;
}

export interface Images {
  server: string;
  loadgen: string;
  hash: string;
  /** Seconds spent building (0 when both were present). */
  builtSec: number;
}

interface Entry {
  name: string;
  path: string;
  mode: number;
}

function walk(dir: string, into: string, out: Entry[], skip: (rel: string) => boolean = () => false): void {
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, d.name);
    const rel = relative(dir, full);
    if (skip(full)) continue;
    if (d.isDirectory()) walk(full, `${into}/${rel}`, out, skip);
    else if (d.isFile()) out.push({ name: `${into}/${d.name}`, path: full, mode: statSync(full).mode & 0o777 });
  }
}

/**
 * The production dependencies' top-level folders (nested node_modules come along inside them):
 * package-lock.json's packages that are not dev-only and are installed. The same list as
 * `npm ls --omit=dev --all`, read in milliseconds instead of a second.
 */
function productionModules(): string[] {
  let lock: { packages?: Record<string, { dev?: boolean }> };
  try {
    lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as typeof lock;
  } catch (err) {
    throw new Error(`package-lock.json: cannot read it (${(err as Error).message}): run \`npm install\` first`);
  }
  const dirs = Object.entries(lock.packages ?? {})
    .filter(([k, v]) => k.startsWith('node_modules/') && !k.slice('node_modules/'.length).includes('/node_modules/') && !v.dev)
    .map(([k]) => k.slice('node_modules/'.length))
    .filter((m) => existsSync(join(REPO_ROOT, 'node_modules', m)));
  if (!dirs.includes('autocannon')) throw new Error('the production dependencies are not installed: run `npm install` first');
  return [...new Set(dirs)].sort();
}

/** Every file of the build context, in a stable order. */
export async function contextEntries(): Promise<Entry[]> {
  const out: Entry[] = [
    { name: 'Dockerfile', path: join(REPO_ROOT, 'Dockerfile'), mode: 0o644 },
    { name: 'node', path: process.execPath, mode: 0o755 },
    { name: 'addon/CMakeLists.txt', path: join(REPO_ROOT, 'CMakeLists.txt'), mode: 0o644 },
  ];
  walk(join(REPO_ROOT, 'native', 'src'), 'addon/native/src', out);
  for (const m of ['node-addon-api', 'node-api-headers']) walk(join(REPO_ROOT, 'node_modules', m), `addon/node_modules/${m}`, out);
  for (const m of productionModules())
    walk(join(REPO_ROOT, 'node_modules', m), `app/modules/${m}`, out, (f) => f.endsWith('.d.ts') || f.endsWith('.map'));
  out.push({ name: 'app/files/package.json', path: join(REPO_ROOT, 'package.json'), mode: 0o644 });
  out.push({ name: 'app/files/lab/in-host/pipeline.lua', path: join(REPO_ROOT, 'lab', 'in-host', 'pipeline.lua'), mode: 0o644 });
  walk(join(REPO_ROOT, 'dist'), 'app/files/dist', out, (f) => f.endsWith('.map') || f.endsWith('.d.ts') || f.endsWith('.tsbuildinfo'));
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function contextHash(entries: Entry[], o: Pick<ImageOptions, 'base' | 'wrk2'>): string {
  const h = createHash('sha256');
  h.update(`base=${o.base}\nwrk2=${o.wrk2}\n`);
  for (const e of entries) {
    h.update(`${e.name}\0${e.mode}\0`);
    h.update(readFileSync(e.path));
  }
  return h.digest('hex').slice(0, 12);
}

function tarOf(entries: Entry[]): ReturnType<typeof pack> {
  const p = pack();
  void (async () => {
    for (const e of entries) {
      const body = readFileSync(e.path);
      await new Promise<void>((resolve, reject) =>
        p.entry({ name: e.name, size: body.length, mode: e.mode, mtime: new Date(0) }, body, (err) => (err ? reject(err) : resolve())),
      );
    }
    p.finalize();
  })().catch((err: Error) => p.destroy(err));
  return p;
}

async function exists(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch {
    return false;
  }
}

async function build(docker: Docker, entries: Entry[], role: ImageRole, tag: string, o: ImageOptions, hash: string): Promise<void> {
  const stream = await docker.buildImage(tarOf(entries) as never, {
    t: tag,
    target: role,
    buildargs: { BASE: o.base, WITH_WRK2: o.wrk2 ? '1' : '0' },
    labels: { 'tcplab.image': role, 'tcplab.hash': hash },
    rm: true,
    forcerm: true,
  });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, out: Array<{ error?: string }>) => {
        const failed = out?.find((x) => x.error);
        if (err || failed) reject(new ImageBuildError(`building ${tag} failed: ${(err?.message ?? failed?.error ?? '').trim()}`));
        else resolve();
      },
      (ev: { stream?: string }) => {
        const line = ev.stream?.trim();
        if (line && /^Step \d+\/\d+ :/.test(line)) o.progress(`image ${role}: ${line}`);
      },
    );
  });
  await docker.getImage(tag).tag({ repo: IMAGE_NAMES[role], tag: 'latest' });
}

export class ImageBuildError extends EnvironmentError {}

/** Both images for the current sources, built if missing. */
export async function ensureImages(docker: Docker, o: ImageOptions): Promise<Images> {
  const entries = await contextEntries();
  const hash = contextHash(entries, o);
  const tags = { server: `${IMAGE_NAMES.server}:${hash}`, loadgen: `${IMAGE_NAMES.loadgen}:${hash}` };
  const start = Date.now();
  let built = false;
  for (const role of ['server', 'loadgen'] as const) {
    if (await exists(docker, tags[role])) continue;
    if (!(await exists(docker, o.base))) {
      throw new ImageBuildError(
        `the base image ${o.base} is missing and no registry is reachable here: run \`bash scripts/build-base-image.sh ${o.base}\``,
      );
    }
    const mb = Math.round(entries.reduce((n, e) => n + statSync(e.path).size, 0) / 1e6);
    o.progress(`image ${role}: building ${tags[role]} (context ${entries.length} files, ${mb} MB)`);
    await build(docker, entries, role, tags[role], o, hash);
    built = true;
  }
  const builtSec = built ? Math.round((Date.now() - start) / 100) / 10 : 0;
  if (built) o.progress(`images built in ${builtSec} s`);
  return { ...tags, hash, builtSec };
}
