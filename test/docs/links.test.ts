// The documentation's links: every relative link in README.md, CHANGELOG.md and docs/ names a
// file that is there, and every #anchor a heading of that file (GitHub's heading ids). And the
// test command runs every suite: each test file belongs to a lane of scripts/test-all.sh.
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PAGES = [
  'README.md',
  'CHANGELOG.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** GitHub's heading ids: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function anchors(file: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const m = !fenced && /^#{1,6} (.*)$/.exec(line);
    if (!m) continue;
    const base = m[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}_\- ]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

describe('documentation links', () => {
  it.each(PAGES)('%s: every relative link and anchor resolves', (page) => {
    const file = join(ROOT, page);
    const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
    const broken: string[] = [];
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const dest = path ? resolve(dirname(file), path) : file;
      if (!existsSync(dest)) broken.push(`${target}: no ${relative(ROOT, dest)}`);
      else if (anchor && statSync(dest).isFile() && !anchors(dest).has(anchor)) broken.push(`${target}: no heading #${anchor}`);
    }
    expect(broken).toEqual([]);
  });

  it('the README is a front door: at most 200 lines', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8').trimEnd().split('\n').length).toBeLessThanOrEqual(200);
  });
});

describe('the test command', () => {
  it('runs every test file: each belongs to a lane of scripts/test-all.sh', () => {
    const script = readFileSync(join(ROOT, 'scripts/test-all.sh'), 'utf8');
    const lanes = [...script.matchAll(/^[A-Z0-9_]+=\(([^)]*)\)/gm)].flatMap((m) => m[1]!.split(/\s+/).filter((x) => x.startsWith('test/')));
    const files = readdirSync(join(ROOT, 'test'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => `test/${f}`);
    expect(files.filter((f) => !lanes.some((l) => f === l || f.startsWith(`${l}/`)))).toEqual([]);
  });
});
