// The models scenario's full matrix on netns: what each server design does with C keep-alive
// clients (who is served at once, who waits in the accept queue, threads and processes added).
// A file of its own: the fork design starts 20 processes of a ~100 MB Node server, which wants
// the machine to itself, so scripts/test-all.sh runs it after the lanes (with the tracer's and
// the swarm's suites), when nothing else runs.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { PointRecord } from '../../lab/record.js';
import { expectAllPass } from '../helpers/verdicts.js';
import { laneRuntimes } from '../helpers/lanes.js';

const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));
const WORK = mkdtempSync(join(tmpdir(), 'tcplab-models-'));

async function sweep(name: string, text: string): Promise<{ dir: string; recs: PointRecord[] }> {
  const f = join(WORK, name);
  writeFileSync(f, text);
  const r = await execa(process.execPath, [CLI, 'sweep', f], { reject: false, cwd: WORK });
  expect(r.exitCode, r.stderr).toBe(0);
  const dir = join(WORK, r.stdout.trim());
  const recs = readdirSync(join(dir, 'points'))
    .sort()
    .map((x) => JSON.parse(readFileSync(join(dir, 'points', x), 'utf8')) as PointRecord);
  return { dir, recs };
}
const allPass = (p: PointRecord) => expectAllPass([p]);
const obs = (p: PointRecord) => p.scenario.observed as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe.each(laneRuntimes(['netns'] as const))('the models scenario on %s', (rt) => {
  it('models: iterative serves 1 and prethread/prefork N, the rest wait in the accept queue (capped at limit + 1); thread adds a thread per connection, fork a process; the reactors none', async () => {
    const { recs } = await sweep(
      `models-${rt}.yaml`,
      `runtime: ${rt}\nscenario: {name: models, options: {holdMs: 1600, answerMs: 400}}\nserver: {backlog: 8}\nsweep:\n  zip: {server.model: [iterative, prethread, prefork, thread, fork, single, reactor-procs], server.threads: [1, 3, 3, 1, 1, 1, 2]}\n  matrix: {scenario.options.clients: [6, 20]}\n`,
    );
    const got = recs.map((p) => {
      allPass(p);
      const o = obs(p);
      return [p.config.server.model, o['clients'], o['answered'], o['queued'], o['addedThreads'], o['addedProcesses']];
    });
    // [design, clients, served at once, accept queue halfway through the hold, threads added,
    // processes added]; limit = min(8, 4096) = 8.
    expect(got).toEqual([
      ['iterative', 6, 1, 5, 0, 0],
      ['prethread', 6, 3, 3, 0, 0],
      ['prefork', 6, 3, 3, 0, 0],
      ['thread', 6, 6, 0, 6, 0],
      ['fork', 6, 6, 0, 0, 6],
      ['single', 6, 6, 0, 0, 0],
      ['reactor-procs', 6, 6, 0, 0, 0],
      ['iterative', 20, 1, 9, 0, 0],
      ['prethread', 20, 3, 9, 0, 0],
      ['prefork', 20, 3, 9, 0, 0],
      ['thread', 20, 20, 0, 20, 0],
      ['fork', 20, 20, 0, 0, 20],
      ['single', 20, 20, 0, 0, 0],
      ['reactor-procs', 20, 20, 0, 0, 0],
    ]);
  }, 180_000);
});
