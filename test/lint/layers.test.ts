// The layering `npm run lint` enforces (.dependency-cruiser.cjs): the tree as it is passes, and
// one planted violation of each kind fails, each in a throw-away tree of its own with the
// project's own config and the real dependency-cruiser.
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEPCRUISE = join(ROOT, 'node_modules', '.bin', 'depcruise');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');
const LAYERS = ['core', 'native', 'sysctl', 'server', 'lab'];

/** A tree of the five folders, each with one harmless module, plus `files`; depcruise run on it as lint runs it. */
async function cruise(files: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'tcplab-layers-'));
  const all: Record<string, string> = {
    'tsconfig.json': JSON.stringify({
      compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', strict: true },
      include: LAYERS.map((l) => `${l}/**/*.ts`),
    }),
    ...Object.fromEntries(LAYERS.map((l) => [`${l}/ok.ts`, 'export const ok = 1;\n'])),
    ...files,
  };
  for (const [path, text] of Object.entries(all)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return execa(DEPCRUISE, [...LAYERS, '--config', CONFIG], { cwd: dir, reject: false });
}

describe.concurrent('npm run lint: the layers', () => {
  it('the tree as it is: no violation', async () => {
    const r = await execa(DEPCRUISE, [...LAYERS, '--config', CONFIG], { cwd: ROOT, reject: false });
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.stdout).toContain('no dependency violations found');
  });

  it.each([
    [
      'below-lab',
      'server/ importing lab/ (a type, which eslint does not see)',
      { 'server/bad.ts': "import type { Lab } from '../lab/lab.js';\nexport type X = Lab;\n", 'lab/lab.ts': 'export interface Lab { a: number }\n' },
    ],
    ['below-lab', 'sysctl/ importing lab/', { 'sysctl/bad.ts': "import { ok } from '../lab/ok.js';\nexport const x = ok;\n" }],
    ['core-alone', 'core/ importing sysctl/', { 'core/bad.ts': "import { ok } from '../sysctl/ok.js';\nexport const x = ok;\n" }],
    ['native-sysctl-on-core', 'native/ importing server/', { 'native/bad.ts': "import { ok } from '../server/ok.js';\nexport const x = ok;\n" }],
    [
      'no-cycle',
      'a cycle through type-only imports',
      {
        'lab/a.ts': "import type { B } from './b.js';\nexport interface A { b?: B }\n",
        'lab/b.ts': "import type { A } from './a.js';\nexport interface B { a?: A }\n",
      },
    ],
  ] as const)('%s: %s fails the lint', async (rule, _what, files) => {
    const r = await cruise(files);
    expect(r.exitCode, r.stdout).not.toBe(0);
    expect(r.stdout).toContain(`error ${rule}:`);
  });

  it('the planting tree with nothing planted passes (the failures above are the plants)', async () => {
    const r = await cruise({});
    expect(r.exitCode, r.stdout).toBe(0);
  });
});
