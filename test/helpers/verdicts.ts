// Verdict assertions shared by the suites: where a test means PASS it asserts PASS, so an
// INCONCLUSIVE (a rule that could not be judged) fails it as a FAIL does, with each rule's line.
import { expect } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PointRecord } from '../../lab/pipeline/record.js';

/** One line per verdict: what was predicted, what was seen and why. */
export const verdictLines = (p: PointRecord): string[] =>
  p.scenario.verdicts.map((v) => `${v.verdict}: ${v.rule} (predicted ${v.predicted}, observed ${v.observed}; ${v.reason})`);

/** Every verdict of every point is PASS (and there is at least one). */
export function expectAllPass(recs: PointRecord[]): void {
  expect(recs.length, 'no point records').toBeGreaterThan(0);
  for (const p of recs) {
    expect(p.scenario.verdicts.length, `${p.id}: no verdicts`).toBeGreaterThan(0);
    expect(
      verdictLines(p).filter((v) => !v.startsWith('PASS')),
      `${p.id} ${JSON.stringify(p.settings)}`,
    ).toEqual([]);
  }
}

/** The point records of a run folder, in name order. */
export const readRecords = (dir: string): PointRecord[] =>
  readdirSync(join(dir, 'points'))
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((x) => JSON.parse(readFileSync(join(dir, 'points', x), 'utf8')) as PointRecord);
