// docs/architecture.md's data path of one point agrees with the code: each file it lists
// imports only files listed below it (type-only imports included), so the list reads top-down.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PAGE = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');

/** The files of the numbered list, in order: the first `path.ts` of each item. */
function dataPath(): string[] {
  const section = PAGE.slice(PAGE.indexOf('The data path of one point'), PAGE.indexOf('\nErrors:'));
  return [...section.matchAll(/^\d+\. `([^`]+\.ts)`/gm)].map((m) => m[1]!);
}

/** The project files a source file imports (relative specifiers, `import type` too). */
function importsOf(file: string): string[] {
  const src = readFileSync(join(ROOT, file), 'utf8');
  return [...src.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => normalize(join(dirname(file), m[1]!)).replace(/\.js$/, '.ts'));
}

describe('docs/architecture.md', () => {
  it('the data path of one point: at most 12 files, each importing only files below it in the list', () => {
    const files = dataPath();
    expect(files.length).toBeGreaterThanOrEqual(8);
    expect(files.length).toBeLessThanOrEqual(12);
    const backwards = files.flatMap((f, i) =>
      importsOf(f)
        .filter((t) => files.indexOf(t) >= 0 && files.indexOf(t) <= i)
        .map((t) => `${f} imports ${t}`),
    );
    expect(backwards).toEqual([]);
  });
});
