// `lab sweep FILE` / `lab sweep --resume DIR`: every point of the lab file's sweep, each
// repetition on fresh hosts: create (sysctls set and read back) → server → samplers →
// scenario → state reports → one point record written atomically (temp + rename) →
// destroy. Finished points stay on disk whatever happens later; resume runs the missing ones.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { EnvironmentError, InputError, isLabError, PointError, SweepError } from '../../core/errors.js';
import { DEFAULT_SUBNET } from '../../core/fields.js';
import { makeDir, readJson, writeAtomic, writeJsonAtomic } from '../../core/files.js';
import { assertKernelHas } from '../../sysctl/apply.js';
import { describeSettings, expandSweep, sysctlSettings, validateLabFile, type LabFile, type Point } from '../plan/labfile.js';
import { recordName, runPoint, seccompFor, type LabHandle } from './point.js';
import { ListenWatchPool } from '../observe/listen-calls.js';
import { loadPoint, type PointRecord } from './record.js';
import { getRuntime } from '../runtime/index.js';
import type { Host, Runtime } from '../runtime/runtime.js';

export interface SweepOptions {
  progress: (line: string) => void;
  /** Points done of the total, the point running, the seconds left (null: not known yet). */
  bar?: { start(total: number, done: number): void; update(done: number, current: string, etaSec: number | null): void; stop(): void };
  handle?: LabHandle;
  /** Leave the last point's lab running (`lab up --keep`). */
  keep?: boolean;
  /** How the progress lines name the command. */
  cmd?: string;
}

export { recordName };

/**
 * Points × repetitions not yet on disk in DIR/points. A record on disk is whole (written temp
 * file + rename) unless something else damaged it: that is one line naming the file.
 */
export function missing(dir: string, lab: LabFile): Array<{ point: Point; rep: number }> {
  const files = existsSync(join(dir, 'points')) ? readdirSync(join(dir, 'points')).filter((f) => f.endsWith('.json')) : [];
  for (const f of files) loadPoint(join(dir, 'points', f));
  const done = new Set(files.map((f) => f.slice(0, -5)));
  return expandSweep(lab)
    .flatMap((point) => Array.from({ length: lab.repetitions }, (_, i) => ({ point, rep: i + 1 })))
    .filter((x) => !done.has(recordName(x.point, x.rep)));
}

/** A new sweep's run id: UTC time and 4 hex digits (YYYYMMDD-HHMMSS-xxxx). */
export function newRunId(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const d = `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}-${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
  return `${d}-${randomBytes(2).toString('hex')}`;
}

/** The runtime's own versions (engine, image tags); the tools' come from a host (hostToolVersions). */
async function runtimeVersions(rt: Runtime): Promise<Record<string, string>> {
  return { 'lab (node)': process.version, ...(await rt.versions()) };
}

const TOOL_VERSION: Array<[string, string[], RegExp]> = [
  ['node', ['node', '-v'], /^v\d/],
  ['ab', ['ab', '-V'], /version/i],
  ['wrk', ['wrk', '-v'], /^wrk \S+/],
  ['hping3', ['hping3', '-v'], /version/i],
  ['nft', ['nft', '--version'], /nftables/i],
  ['ss', ['ss', '-V'], /iproute2/i],
];

/** The versions of the tools as a host runs them (inside the image on Docker). */
export async function hostToolVersions(h: Host): Promise<Record<string, string>> {
  const version = async ([name, argv, re]: (typeof TOOL_VERSION)[number]) => {
    const r = await h.exec(argv, { timeoutMs: 10_000 });
    const line = `${r.stdout}\n${r.stderr}`.split('\n').find((l) => re.test(l.trim()));
    return [name, r.exitCode === 127 ? 'not installed' : (line?.trim().replace(/\s+Copyright.*$/, '') ?? `unknown (exit ${r.exitCode})`)] as const;
  };
  // At once: one at a time is an exec round trip each (on Docker, 2 s for a sweep's first point).
  return Object.fromEntries(await Promise.all(TOOL_VERSION.map(version)));
}

/** Whether the filesystem holding dir has no room left (under 64 KiB: less than a point writes). */
function diskFull(dir: string): boolean {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize < 64 * 1024;
  } catch {
    return false;
  }
}

/**
 * What the machine must have for every point, checked before anything is made: the sysctls'
 * keys in its kernel, a runtime, the user's server images on it (nothing is pulled), the
 * io_uring backend where the server runs this machine's build, the io_uring seccomp profile's
 * base on Docker. Returns the runtime.
 */
export async function preflight(points: Point[], lab: LabFile, o: SweepOptions): Promise<Runtime> {
  for (const { config: c } of points) {
    assertKernelHas('server', sysctlSettings(c.server.sysctls));
    c.loadgens.forEach((l, i) => assertKernelHas(`loadgen-${i + 1}`, sysctlSettings(l.sysctls)));
  }
  const runtime = await getRuntime(lab.runtime, { progress: o.progress });
  const images = points.flatMap((p) => (p.config.server.kind === 'command' && p.config.server.image ? [p.config.server.image] : []));
  const noImage = await runtime.imagesMissing(images);
  if (noImage) throw new InputError(`server.image: ${noImage}`);
  if (runtime.hostBuild) {
    const { ioBackends, NO_URING } = await import('../../native/index.js');
    const uring = points.some((p) => p.config.server.kind === 'tcplab' && p.config.server.io === 'io_uring');
    if (uring && !ioBackends.includes('io_uring'))
      throw new InputError(`server.io must be "epoll" on ${runtime.name} with this build, got "io_uring": ${NO_URING}`);
  }
  for (const p of points) seccompFor(runtime.name, p.config);
  return runtime;
}

/** Starts a new sweep in OUTPUT/<run-id>/ from a lab file, or resumes one. Returns the folder. */
export async function sweep(
  source: { file: string | null; lab: LabFile } | { resume: string },
  o: SweepOptions,
): Promise<{ dir: string; ran: number; failed: number; records: PointRecord[] }> {
  const cmd = o.cmd ?? 'lab sweep';
  let dir: string;
  let lab: LabFile;
  const fresh = !('resume' in source);
  if ('resume' in source) {
    dir = source.resume;
    const f = join(dir, 'lab.json');
    if (!existsSync(f)) throw new SweepError(`${dir}: not a sweep folder (no lab.json)`);
    lab = validateLabFile(readJson(f), f);
  } else {
    lab = source.lab;
    // The engine or namespaces first: a machine that cannot run the lab leaves no folder.
    dir = join(lab.output, newRunId());
  }
  const points = expandSweep(lab);
  const runtime = await preflight(points, lab, o);
  if (fresh && 'lab' in source) {
    makeDir(join(dir, 'points'));
    writeJsonAtomic(join(dir, 'lab.json'), lab);
    // The file as written (flags have none: lab.json is the whole story).
    if (source.file) writeAtomic(join(dir, 'lab.source.yaml'), readFileSync(source.file, 'utf8'));
  }
  makeDir(join(dir, 'points'));
  // A write cut short (SIGKILL, power loss) leaves only its temp file: never a record.
  const stale = readdirSync(join(dir, 'points')).filter((f) => /\.tmp-\d+$/.test(f));
  for (const f of stale) rmSync(join(dir, 'points', f), { force: true });
  if (stale.length) o.progress(`${cmd}: removed ${stale.length} half-written file(s) an interrupted write left in points/`);
  const envFile = join(dir, 'environment.json');
  if (!existsSync(envFile)) {
    writeJsonAtomic(envFile, {
      kernel: release(),
      cpus: cpus().length,
      runtime: runtime.name,
      versions: await runtimeVersions(runtime),
      startedAt: new Date().toISOString(),
    });
  }
  const todo = missing(dir, lab);
  const total = points.length * lab.repetitions;
  o.progress(
    `${cmd}: ${dir}: ${total} point run(s) (${points.length} points × ${lab.repetitions}), ${total - todo.length} on disk, ${todo.length} to run on ${runtime.name}`,
  );
  const sweepId = dir.split('/').filter(Boolean).pop()!;
  const t0 = Date.now();
  let failed = 0;
  const records: PointRecord[] = [];
  o.bar?.start(total, total - todo.length);
  makeDir(join(dir, 'logs'));
  const listenWatches = new ListenWatchPool(join(dir, 'logs'));
  try {
    for (const [i, { point, rep }] of todo.entries()) {
      const name = recordName(point, rep);
      const etaSec = i ? Math.round((((Date.now() - t0) / i) * (todo.length - i)) / 1000) : null;
      o.bar?.update(total - todo.length + i, `${name} ${describeSettings(point.settings)}`, etaSec);
      const runId = `${sweepId}-${name}`;
      o.progress(`[${total - todo.length + i + 1}/${total}] ${name} ${describeSettings(point.settings)}: lab ${runId} …`);
      let rec: PointRecord;
      try {
        rec = await runPoint({
          runtime,
          dir,
          runId,
          point,
          repetition: rep,
          subnetFallback: point.config.subnet === DEFAULT_SUBNET,
          keep: (o.keep ?? false) && i === todo.length - 1,
          handle: o.handle ?? {},
          progress: (l) => o.progress(`${cmd}: ${l}`),
          onHosts: (hosts) => recordToolVersions(envFile, hosts),
          listenWatches,
        });
      } catch (err) {
        const finishedCount = total - todo.length + i;
        // The runtime went away under the point (an engine stopped): say so (exit 2), keep the folder for --resume.
        const lost = await runtime.lost(err);
        if (lost) {
          throw new EnvironmentError(
            `${lost.reason} during point ${name} (${(err as Error).message.split('\n')[0]}); the ${finishedCount} finished point run(s) are on disk: ${lost.fix}, then \`lab down\` and \`lab sweep --resume ${dir}\``,
          );
        }
        // The input or the machine (no engine, a sysctl the kernel refuses, a missing tool):
        // every point would fail alike. A new sweep that has nothing on disk yet leaves nothing.
        if (isLabError(err) && err.exitCode === 2) {
          if (fresh && i === 0) rmSync(dir, { recursive: true, force: true });
          throw err;
        }
        const e = err as NodeJS.ErrnoException;
        const finished = `the ${total - todo.length + i} finished point run(s) are on disk, whole`;
        // A full disk, seen by the lab's own write or by what it killed (a server whose log
        // write failed exits 1 with nothing to say): the folder's filesystem has no room left.
        const full = e.code === 'ENOSPC' || e.code === 'EDQUOT' ? e.code : diskFull(dir) ? 'ENOSPC' : null;
        if (full) {
          throw new EnvironmentError(
            `${dir}: no space left (${full}) while point ${name} ran; ${finished}: lab sweep --resume ${dir} once there is room`,
          );
        }
        // Keep the whole story for whoever debugs it; the user gets one line.
        const log = join(dir, 'logs', name, 'error.txt');
        try {
          mkdirSync(join(dir, 'logs', name), { recursive: true });
          writeFileSync(log, `${e.stack ?? e.message}\n`);
        } catch {
          // The details could not be kept (a full disk): the line below still says what failed.
        }
        const first = e.message.split('\n')[0];
        throw new PointError(
          `point ${name} failed: ${first} (details: ${log}); the ${total - todo.length + i} finished point run(s) are on disk: lab sweep --resume ${dir}`,
        );
      }
      try {
        writeJsonAtomic(join(dir, 'points', `${name}.json`), rec);
      } catch (err) {
        throw new EnvironmentError(
          `${(err as Error).message}; the ${total - todo.length + i} finished point run(s) before it are on disk, whole: lab sweep --resume ${dir}`,
        );
      }
      records.push(rec);
      // A verdict about the server's own behaviour (not the kernel's) is marked as such.
      const v = rec.scenario.verdicts.map((x) => (x.about === 'server' ? `server:${x.verdict}` : x.verdict));
      if (rec.scenario.verdicts.some((x) => x.verdict === 'FAIL')) failed++;
      const left = todo.length - i - 1;
      const eta = left ? `, ETA ${Math.round((((Date.now() - t0) / (i + 1)) * left) / 1000)} s` : '';
      o.progress(`[${total - todo.length + i + 1}/${total}] ${name}: ${v.join(' ')}${eta}`);
    }
    o.bar?.update(total, 'done', 0);
  } finally {
    o.bar?.stop();
    await listenWatches.close();
  }
  return { dir, ran: todo.length, failed, records };
}

/** The tools' versions as the first point's hosts run them (inside the images on Docker). */
export async function recordToolVersions(envFile: string, hosts: Host[]): Promise<void> {
  const env = readJson(envFile) as Record<string, unknown>;
  if (env['tools']) return;
  const tools = Object.fromEntries(await Promise.all(hosts.map(async (h) => [h.name, await hostToolVersions(h)] as const)));
  writeJsonAtomic(envFile, { ...env, tools });
}
