// A lab file written to a folder of the suite's own and run by `lab sweep` as a user runs it
// (the CLI as a process): its run folder and point records. And what the scenario suites read
// from a record.
import { expect } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { PointRecord } from '../../lab/pipeline/record.js';
import { expectAllPass } from './verdicts.js';

const CLI = fileURLToPath(new URL('../../dist/lab/bin.js', import.meta.url));

/** A sweep runner whose files and run folders go in a new temporary folder named after PREFIX. */
export function sweeper(prefix: string): (name: string, text: string) => Promise<{ dir: string; recs: PointRecord[] }> {
  const work = mkdtempSync(join(tmpdir(), `tcplab-${prefix}-`));
  return async (name, text) => {
    const f = join(work, name);
    writeFileSync(f, text);
    const r = await execa(process.execPath, [CLI, 'sweep', f], { reject: false, cwd: work });
    expect(r.exitCode, r.stderr).toBe(0);
    const dir = join(work, r.stdout.trim());
    const recs = readdirSync(join(dir, 'points'))
      .sort()
      .map((x) => JSON.parse(readFileSync(join(dir, 'points', x), 'utf8')) as PointRecord);
    return { dir, recs };
  };
}

export const allPass = (p: PointRecord) => expectAllPass([p]);
export const obs = (p: PointRecord) => p.scenario.observed as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export const delta = (p: PointRecord, host: string, name: string) => p.hosts[host]!.counters.delta[name] ?? 0;
